import type { CacheStore } from "./types.js";

/** A cache store on a Workers KV namespace binding (global, eventually consistent; expiry >= 60 s). */
export declare function kvStore(namespace: {
  get(key: string, type: "arrayBuffer"): Promise<ArrayBuffer | null>;
  put(key: string, value: ArrayBuffer | Uint8Array, options?: { expirationTtl?: number }): Promise<void>;
  delete(key: string): Promise<void>;
}): CacheStore;

/** A cache store on the Workers Cache API (`caches.default` or `await caches.open(name)`). */
export declare function cacheApiStore(cache: Cache, options?: { baseUrl?: string }): CacheStore;
