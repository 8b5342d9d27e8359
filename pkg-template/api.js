// The public surface shared by every entry: the generated classes plus what wasm-bindgen cannot
// express: the pre-bound `fetcher` (`new OpenAI({ fetch: client.fetcher })`), async iteration over SSE
// streams and chat streams, and the unpacking of parsed events. Events cross from wasm as one string per chunk,
// `event CR data CR id CR` per event (no field can hold a CR), because building each event object
// from Rust costs far more than the parsing.
import { ResilientClient, SseParserRaw } from "./sturdy_llm.js";
export * from "./errors.js";

/** Splits packed events into `{ event, data, id }` objects (an id of "\0" is the previous record's). */
function unpack(packed, events = []) {
  if (packed == null) return events;
  let id = "";
  for (let at = 0; at < packed.length; ) {
    const a = packed.indexOf("\r", at);
    const b = packed.indexOf("\r", a + 1);
    // Most records keep the previous id ("\0" CR): read without a search or a slice (a quarter of
    // the unpacking, measured on chat streams).
    let c = b + 2;
    if (packed.charCodeAt(b + 1) !== 0 || packed.charCodeAt(c) !== 13) {
      c = packed.indexOf("\r", b + 1);
      id = packed.slice(b + 1, c);
    }
    events.push({ event: a === at ? "" : packed.slice(at, a), data: packed.slice(a + 1, b), id });
    at = c + 1;
  }
  return events;
}

/** The error for using an object after its `free()` (the wasm would be handed a null pointer). */
function freedError(what) {
  const error = new TypeError(`This ${what} was freed (free() was called); create a new one.`);
  error.code = "FREED";
  return error;
}

/** Most bytes of a chunk copied into wasm memory at once: the parser's bound is checked per slice. */
const SLICE_BYTES = 64 * 1024;

/** An exact, incremental WHATWG event-stream parser: bytes in, complete events out. */
export class SseParser {
  #raw;
  /** `options.maxEventBytes` [1 MiB]: a longer line or event's data makes feed() throw RESPONSE_TOO_LARGE. */
  constructor(options) {
    this.#raw = new SseParserRaw(options);
  }
  #live() {
    if (!this.#raw) throw freedError("SseParser");
    return this.#raw;
  }
  /** Feeds a chunk (boundaries anywhere); returns the events it completed. */
  feed(chunk) {
    const raw = this.#live();
    if (!(chunk instanceof Uint8Array) || chunk.byteLength <= SLICE_BYTES) return unpack(raw.feed(chunk));
    const events = [];
    for (let at = 0; at < chunk.byteLength; at += SLICE_BYTES) {
      unpack(raw.feed(chunk.subarray(at, at + SLICE_BYTES)), events);
    }
    return events;
  }
  /** End of stream: an unterminated event is discarded, as the spec says. */
  end() {
    return unpack(this.#live().end());
  }
  get lastEventId() {
    return this.#live().lastEventId;
  }
  get retry() {
    return this.#live().retry;
  }
  /** Releases the parser's wasm memory now (it is also reclaimed when the parser is collected). */
  free() {
    this.#raw?.free();
    this.#raw = undefined;
  }
}

// A freed client's methods throw (or, for those returning a promise, reject with) a FREED TypeError
// instead of passing a null pointer into the wasm; free() twice is a no-op.
{
  const freed = new WeakSet();
  const proto = ResilientClient.prototype;
  const asynchronous = new Set(["fetch", "chat", "embed", "clearCache"]);
  for (const name of Object.getOwnPropertyNames(proto)) {
    const method = Object.getOwnPropertyDescriptor(proto, name).value;
    if (name === "constructor" || name.startsWith("__") || typeof method !== "function") continue;
    proto[name] =
      name === "free"
        ? function free() {
            if (freed.has(this)) return;
            try {
              method.call(this);
            } finally {
              freed.add(this);
            }
          }
        : {
            [name](...args) {
              if (!freed.has(this)) return method.apply(this, args);
              if (asynchronous.has(name)) return Promise.reject(freedError("ResilientClient"));
              throw freedError("ResilientClient");
            },
          }[name];
  }
  if (Symbol.dispose) proto[Symbol.dispose] = proto.free;
}

Object.defineProperty(ResilientClient.prototype, "fetcher", {
  configurable: true,
  get() {
    const fetcher = (input, init) => this.fetch(input, init);
    Object.defineProperty(this, "fetcher", { value: fetcher });
    return fetcher;
  },
});

/**
 * A stream pulled from wasm one batch per network chunk. Iterating to the end, stopping early
 * (`break`) or `cancel()` cancels the request body and frees the stream's wasm side at once (not
 * whenever the garbage collector gets to it: a long-lived Worker may not collect for a long time).
 */
class PulledStream {
  #inner;
  #expand;
  constructor(inner, expand) {
    this.#inner = inner;
    this.#expand = expand;
  }

  async *[Symbol.asyncIterator]() {
    try {
      for (let batch; this.#inner && (batch = await this.#inner.nextBatch()) !== null; ) yield* this.#expand(batch);
    } finally {
      this.cancel();
    }
  }

  /** Stops the stream and cancels the request body. */
  cancel() {
    if (!this.#inner) return;
    this.#inner.cancel();
    this.#inner.free();
    this.#inner = undefined;
  }
}

/** An SSE stream: async iterable of `{ event, data, id }`. */
class EventStream extends PulledStream {
  constructor(inner) {
    super(inner, unpack);
    // Failures surface through iteration; `response` is for callers who want the headers.
    this.response = inner.response;
    this.response.catch(() => {});
  }
}

ResilientClient.prototype.events = function events(input, init) {
  return new EventStream(this.openEvents(input, init));
};

/**
 * A streamed chat answer: async iterable of `{ text, toolCalls? }` deltas; `result` settles with the
 * ChatResult once the iteration has consumed the stream.
 */
class ChatStream extends PulledStream {
  constructor(inner) {
    super(inner, (delta) => [delta]);
    this.result = inner.result;
    this.result.catch(() => {});
  }
}

ResilientClient.prototype.chatStream = function chatStream(request) {
  return new ChatStream(this.openChat(request));
};

export { ResilientClient };
