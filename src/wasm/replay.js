// The Response replaying a cached entry, built in one call from wasm: its headers cross as one string,
// `name CR value CR` per header (no header can hold a CR), because building a Headers object from
// Rust costs a boundary crossing per header, which on a memory-cache hit is most of the time spent
// outside `new Response` itself. A header the platform rejects is dropped, as a stored entry never
// fails a request.

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
