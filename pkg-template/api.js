// The public surface shared by every entry: the generated classes plus what wasm-bindgen cannot
// express: the pre-bound `fetcher` (`new OpenAI({ fetch: client.fetcher })`) and async iteration
// over SSE streams (`for await (const event of client.events(url, init))`).
import { ResilientClient, SseParser } from "./resilient_llm.js";

Object.defineProperty(ResilientClient.prototype, "fetcher", {
  configurable: true,
  get() {
    const fetcher = (input, init) => this.fetch(input, init);
    Object.defineProperty(this, "fetcher", { value: fetcher });
    return fetcher;
  },
});

/** An SSE stream: async iterable of `{ event, data, id }`, events arriving one batch per chunk. */
class EventStream {
  #inner;
  constructor(inner) {
    this.#inner = inner;
    // Failures surface through iteration; `response` is for callers who want the headers.
    this.response = inner.response;
    this.response.catch(() => {});
  }

  async *[Symbol.asyncIterator]() {
    try {
      for (let batch; (batch = await this.#inner.nextBatch()) !== null; ) yield* batch;
    } finally {
      this.#inner.cancel();
    }
  }

  /** Stops the stream and cancels the request body. */
  cancel() {
    this.#inner.cancel();
  }
}

ResilientClient.prototype.events = function events(input, init) {
  return new EventStream(this.openEvents(input, init));
};

export { ResilientClient, SseParser };
