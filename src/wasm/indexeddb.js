// The IndexedDB cache store (browsers), behind the same CacheStore interface as user stores:
// get(key) -> entry | undefined, put(key, entry, ttlMs), delete(key), clear(). One object store keyed by
// the cache key, with an index on `staleUntil` so expired entries are swept in one range scan. A full
// quota never fails a request: the oldest entries are evicted and the write retried once, then skipped.
// Keys are SHA-256 hashes and stored headers exclude credentials, so nothing secret is written in clear.

const STORE = "entries";
const EXPIRY = "staleUntil";

const done = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

const finished = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new DOMException("transaction aborted", "AbortError"));
  });

export class IndexedDbStore {
  #db;
  #name;

  constructor(name) {
    this.#name = name;
  }

  #open() {
    if (typeof indexedDB === "undefined") {
      return Promise.reject(new Error("IndexedDB is not available here (cache.store: \"indexeddb\" is for browsers)"));
    }
    this.#db ??= (async () => {
      const request = indexedDB.open(this.#name, 1);
      request.onupgradeneeded = () => {
        request.result.createObjectStore(STORE, { keyPath: "key" }).createIndex(EXPIRY, EXPIRY);
      };
      const db = await done(request);
      await this.#sweep(db, Date.now());
      return db;
    })();
    return this.#db;
  }

  /** Deletes entries whose stale window has passed, or the `limit` oldest when `limit` is given. */
  async #sweep(db, before, limit = Infinity) {
    const tx = db.transaction(STORE, "readwrite");
    const range = Number.isFinite(limit) ? null : IDBKeyRange.upperBound(before);
    let removed = 0;
    const cursors = tx.objectStore(STORE).index(EXPIRY).openCursor(range);
    cursors.onsuccess = () => {
      const cursor = cursors.result;
      if (!cursor || removed >= limit) return;
      cursor.delete();
      removed += 1;
      cursor.continue();
    };
    await finished(tx);
    return removed;
  }

  async get(key) {
    const db = await this.#open();
    const record = await done(db.transaction(STORE).objectStore(STORE).get(key));
    if (!record) return undefined;
    if (record.staleUntil <= Date.now()) {
      await this.delete(key);
      return undefined;
    }
    const { key: _, ...entry } = record;
    return entry;
  }

  async put(key, entry) {
    const db = await this.#open();
    const write = async () => {
      const tx = db.transaction(STORE, "readwrite");
      tx.objectStore(STORE).put({ key, ...entry });
      await finished(tx);
    };
    try {
      await write();
    } catch (error) {
      if (error?.name !== "QuotaExceededError") throw error;
      await this.#sweep(db, Date.now(), 32);
      try {
        await write();
      } catch {
        // Still full: skip this entry rather than fail the request.
      }
    }
  }

  async delete(key) {
    const db = await this.#open();
    const tx = db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).delete(key);
    await finished(tx);
  }

  async clear() {
    const db = await this.#open();
    const tx = db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).clear();
    await finished(tx);
  }
}
