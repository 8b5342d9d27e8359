// Cache stores for Cloudflare Workers, ready to pass as `cache: { store }`:
//   import { kvStore, cacheApiStore } from "sturdy-llm/stores";
//   new ResilientClient({ cache: { store: kvStore(env.LLM_CACHE) } })          // Workers KV: global, eventually consistent
//   new ResilientClient({ cache: { store: cacheApiStore(await caches.open("llm")) } })   // the Cache API: per data centre
// Both implement the CacheStore interface: get(key), put(key, entry, ttlMs), delete(key). An entry is
// { status, headers: [name, value][], body: Uint8Array, storedAt, freshUntil, staleUntil } (ms since the
// epoch); keys are SHA-256 hex strings and headers never include credentials.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One buffer: 4-byte length, the entry's metadata as JSON, then the body. */
function frame(entry) {
  const { body, ...meta } = entry;
  const head = encoder.encode(JSON.stringify(meta));
  const out = new Uint8Array(4 + head.length + body.length);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(body, 4 + head.length);
  return out;
}

function unframe(buffer) {
  const bytes = new Uint8Array(buffer);
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  const meta = JSON.parse(decoder.decode(bytes.subarray(4, 4 + length)));
  return { ...meta, body: bytes.slice(4 + length) };
}

/** Workers KV (`env.MY_KV`). KV's shortest expiry is 60 s; entries also carry their own times. */
export function kvStore(namespace) {
  return {
    async get(key) {
      const value = await namespace.get(key, "arrayBuffer");
      return value === null ? undefined : unframe(value);
    },
    async put(key, entry, ttlMs) {
      await namespace.put(key, frame(entry), { expirationTtl: Math.max(60, Math.ceil(ttlMs / 1000)) });
    },
    async delete(key) {
      await namespace.delete(key);
    },
  };
}

/** The Workers Cache API (`caches.default` or `await caches.open(name)`), keyed by a synthetic URL. */
export function cacheApiStore(cache, { baseUrl = "https://resilient-llm.cache/" } = {}) {
  const url = (key) => new URL(key, baseUrl).href;
  return {
    async get(key) {
      const response = await cache.match(url(key));
      return response ? unframe(await response.arrayBuffer()) : undefined;
    },
    async put(key, entry, ttlMs) {
      const headers = { "cache-control": `max-age=${Math.max(1, Math.ceil(ttlMs / 1000))}` };
      await cache.put(url(key), new Response(frame(entry), { headers }));
    },
    async delete(key) {
      await cache.delete(url(key));
    },
  };
}
