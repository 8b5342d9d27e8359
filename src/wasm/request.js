// A request's URL resolved in one call: from wasm, the address would cross the boundary four times
// (read as a string, passed to `new URL`, read back as `href`, handed to fetch).

/** `input` (a string or URL) against `base`, or else the page's address, as an `href`. Throws if invalid. */
export function resolveUrl(input, base) {
  return new URL(input, base ?? globalThis.location?.href).href;
}
