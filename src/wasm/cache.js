// A memory-cache hit's two trips to JS, one call each (from Rust, each header costs a crossing).
// Headers cross packed in one string, `name CR value CR` per header (no valid header holds a CR); which
// of them enter the key is the core's decision (src/core/cache/key.rs).

/** Every header of `init` (a HeadersInit), packed; `null` if it is invalid (the request is then
 * neither cached nor shared, and fetch rejects it). A plain object, the usual case, is read as is
 * (the core lowercases and trims): building a Headers from it would cost more than the whole key. */
export function keyHeaders(init) {
  if (init == null) return "";
  let packed = "";
  try {
    if (Object.getPrototypeOf(init) === Object.prototype) {
      for (const name of Object.keys(init)) {
        const value = `${init[name]}`;
        if (name.includes("\r") || value.includes("\r")) return null;
        packed += `${name}\r${value}\r`;
      }
    } else {
      for (const [name, value] of init instanceof Headers ? init : new Headers(init)) packed += `${name}\r${value}\r`;
    }
  } catch {
    return null;
  }
  return packed;
}

/** A stored entry's Response; a header the platform rejects is dropped. */
export function replay(status, packed, body, label, age) {
  const headers = new Headers();
  for (let at = 0; at < packed.length; ) {
    const a = packed.indexOf("\r", at);
    const b = packed.indexOf("\r", a + 1);
    try {
      headers.append(packed.slice(at, a), packed.slice(a + 1, b));
    } catch {}
    at = b + 1;
  }
  headers.set("x-cache", label);
  headers.set("age", age);
  // A copy: a view into wasm memory may be read lazily (workerd does), after the entry is gone.
  return new Response(body.slice(), { status, headers });
}
