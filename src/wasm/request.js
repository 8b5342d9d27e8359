// A request's URL resolved in one call (from Rust, the address would cross the boundary four times).

/** `input` (a string or URL) against `base`, or else the page's address, as an href; throws if invalid. */
export function resolveUrl(input, base) {
  return new URL(input, base ?? globalThis.location?.href).href;
}
