// A memory-cache hit's two trips to JS, one call each (from Rust, each header costs a crossing).
// Headers cross packed in one string, `name CR value CR` per header (no header can hold a CR).

const KEY_HEADERS = ["cache-control", "authorization", "x-api-key", "api-key"];

/** The headers of `init` (a HeadersInit) that enter a cache key, packed; none if it is invalid. */
export function keyHeaders(init) {
  if (init == null) return "";
  // A plain object naming none of them, the usual case, needs no Headers object.
  const plain = Object.getPrototypeOf(init) === Object.prototype;
  if (plain && !Object.keys(init).some((name) => KEY_HEADERS.includes(name.toLowerCase()))) return "";
  let headers;
  try {
    headers = init instanceof Headers ? init : new Headers(init);
  } catch {
    return "";
  }
  let packed = "";
  for (const name of KEY_HEADERS) {
    const value = headers.get(name);
    if (value !== null) packed += `${name}\r${value}\r`;
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
