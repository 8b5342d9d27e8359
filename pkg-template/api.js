// The public surface shared by every entry: the generated classes plus what wasm-bindgen cannot
// express, the pre-bound `fetcher` (`new OpenAI({ fetch: client.fetcher })`).
import { ResilientClient, SseParser } from "./resilient_llm.js";

Object.defineProperty(ResilientClient.prototype, "fetcher", {
  configurable: true,
  get() {
    const fetcher = (input, init) => this.fetch(input, init);
    Object.defineProperty(this, "fetcher", { value: fetcher });
    return fetcher;
  },
});

export { ResilientClient, SseParser };
