// A memory-cache hit's two trips to JS, one call each (from Rust, each header costs a crossing).
// Headers cross packed in one string, `name CR value CR` per header (no valid header holds a CR); which
// of them enter the key is the core's decision (src/core/cache/key.rs).

/** Every header of `init` (a HeadersInit), packed; `null` if it is invalid (the request is then
 * neither cached nor shared, and fetch rejects it). A plain object, the usual case, is read as is
 * (the core lowercases and trims): building a Headers from it would cost more than the whole key.
 * One with a `Symbol.iterator` is not: fetch reads it as a list of pairs, so must the key. */
export function keyHeaders(init) {
  if (init == null) return "";
  let packed = "";
  try {
    if (Object.getPrototypeOf(init) === Object.prototype && init[Symbol.iterator] == null) {
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

/** A CacheStoreError; its message quotes at most 200 characters of what the store said. */
function storeError(message, cause) {
  try {
    if (cause !== undefined) message += `: ${String(cause?.message ?? cause).slice(0, 200)}`;
  } catch {}
  return Object.assign(new Error(message), { name: "CacheStoreError", code: "CACHE_STORE" });
}

/** A promise that `start(settle)` settles, or the time running out (`timedOut(settle)`) after `ms`, or
 * `signal` aborting (rejecting with its reason), whichever comes first. `settle(done, value)` settles it
 * once with `done` (resolve or reject) and stops listening. */
function bounded(ms, signal, timedOut, start) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const settle = (done, value) => {
      clearTimeout(timer);
      // A caller's signal may have its methods replaced: one that throws here must not keep the
      // promise from settling (nor become an unhandled rejection).
      try {
        signal?.removeEventListener("abort", aborted);
      } catch {}
      done === "resolve" ? resolve(value) : reject(value);
    };
    const aborted = () => settle("reject", signal.reason);
    const timer = setTimeout(() => timedOut(settle), ms);
    signal?.addEventListener("abort", aborted);
    start(settle);
  });
}

/** `store[method](...args)` as a promise that settles within `ms`, or when `signal` aborts (rejecting
 * with its reason): a throw, a rejection or the time running out rejects with a CacheStoreError. A store
 * promise that never settles is left behind, not awaited (nothing but it holds on to its callbacks). */
export function callStore(store, method, args, ms, signal) {
  const failed = (settle, error) => settle("reject", storeError(`cache.store.${method}() failed`, error));
  return bounded(ms, signal, (settle) => settle("reject", storeError(`cache.store.${method}() did not settle within ${ms} ms`)), (settle) => {
    try {
      Promise.resolve(store[method](...args)).then((value) => settle("resolve", value), (error) => failed(settle, error));
    } catch (error) {
      failed(settle, error);
    }
  });
}

const encoder = new TextEncoder();

/** A stored entry as `[status, packed headers, body bytes, storedAt, freshUntil, staleUntil]`, numbers
 * unchecked (the core checks them); a message saying what is wrong if it does not have the documented
 * shape (headers `[name, value][]` of strings, body bytes or a string, `maxBytes` at most). */
export function readEntry(value, maxBytes) {
  const invalid = (what) => `cache.store.get() gave an invalid entry: ${what}`;
  const tooLarge = invalid(`larger than cache.maxBytes (${maxBytes})`);
  try {
    const { status, headers, body, storedAt, freshUntil, staleUntil } = value;
    let packed = "";
    if (!Array.isArray(headers)) return invalid("headers is not an array");
    for (const pair of headers) {
      const [name, text] = Array.isArray(pair) && pair.length === 2 ? pair : [];
      if (typeof name !== "string" || typeof text !== "string" || `${name}${text}`.includes("\r")) {
        return invalid("headers is not a list of [name, value] strings");
      }
      packed += `${name}\r${text}\r`;
      if (packed.length > maxBytes) return tooLarge;
    }
    const bytes =
      typeof body === "string" ? encoder.encode(body)
      : body instanceof ArrayBuffer ? new Uint8Array(body)
      : ArrayBuffer.isView(body) ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
      : null;
    if (bytes === null) return invalid("body is neither bytes nor a string");
    if (bytes.byteLength + packed.length > maxBytes) return tooLarge;
    const number = (n) => (typeof n === "number" ? n : NaN);
    return [number(status), packed, bytes, number(storedAt), number(freshUntil), number(staleUntil)];
  } catch (error) {
    return storeError(invalid("reading it failed"), error).message;
  }
}

// Statuses whose Response cannot have a body (the constructor throws if given one, even an empty one,
// which is what Chromium's fetch hands back for a 204).
const NULL_BODY = [204, 205, 304];

/** A stored entry's Response; a header the platform rejects is dropped. The headers are added to
 * the Response's own (a Headers or a list handed to the constructor is converted and copied again:
 * ~1.4 µs more per hit in Node). */
export function replay(status, packed, body, label, age) {
  // A copy: a view into wasm memory may be read lazily (workerd does), after the entry is gone.
  const response = new Response(NULL_BODY.includes(status) ? null : body.slice(), { status });
  const headers = response.headers;
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
  return response;
}

/** The same response marked `x-cache: MISS` (fetched headers are immutable, so it is re-wrapped around
 * the same body stream). With `stored` (a memory-cache write of its copy), the body's end is held until
 * that write settles: a caller that has the whole body finds the entry there on its next call. */
export function markMiss(response, stored) {
  const headers = new Headers(response.headers);
  headers.set("x-cache", "MISS");
  const { status, statusText } = response;
  let body = NULL_BODY.includes(status) ? null : response.body;
  if (body && stored) body = body.pipeThrough(new TransformStream({ flush: () => stored.catch(() => {}) }));
  return new Response(body, { status, statusText, headers });
}

/** Notes `done` in `writes` (a Map) as the write of `key` under way, until it settles (it never rejects). */
export function beginWrite(writes, key, done) {
  writes.set(key, done);
  done.then(() => writes.get(key) === done && writes.delete(key));
}

/** The wait for the write of `key` under way, if any: it settles when the write does or after `ms`,
 * whichever is first, and rejects with the signal's reason if it aborts before (as `callStore` bounds
 * a store's answer). */
export function joinWrite(writes, key, ms, signal) {
  const write = writes.get(key);
  if (!write) return undefined;
  return bounded(ms, signal, (settle) => settle("resolve"), (settle) => write.then(() => settle("resolve")));
}
