// The JS half of a memory-cache hit: reading the request headers the key needs, and building the
// Response that replays an entry. Each is one call across the wasm boundary, where doing it from Rust
// costs a crossing per header; on a hit that was most of the time spent outside `new Response`
// itself. Headers cross as one string, `name CR value CR` per header (no header can hold a CR).

/** The headers that enter a cache key: its Cache-Control, then the credentials. */
const KEY_HEADERS = ["cache-control", "authorization", "x-api-key", "api-key"];

/** The key headers present in `init` (any HeadersInit), packed; none if `init` is not valid. */
export function keyHeaders(init) {
  if (init == null) return "";
  // A plain object naming none of them, the common case, needs no Headers object.
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

/** A Response with the packed headers, `x-cache` and `age`; a header the platform rejects is dropped. */
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
  // A copy owned by JS: a view into wasm memory may be read lazily (workerd does), after the entry
  // it borrowed from is gone.
  return new Response(body.slice(), { status, headers });
}
