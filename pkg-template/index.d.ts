export { ResilientClient } from "./resilient_llm.js";
export type {
  ClientOptions, LimitOptions, TimeoutOptions, RetryOptions, BreakerOptions, RateLimitOptions, RequestPolicy, ResilientInit,
  ClientStats, ClientEventType, ClientEvent, SseEvent, EventStream, CacheOptions, CacheStore, CachedEntry,
  ChatStream, ChatRequest, ChatResult, ChatDelta, ChatMessage, Target, BudgetOptions,
} from "./resilient_llm.js";
import type { SseEvent } from "./resilient_llm.js";

/** An exact, incremental WHATWG event-stream parser: bytes in, complete events out. */
export declare class SseParser {
  /** `maxEventBytes` [1 MiB]: a longer line or event's data makes feed() throw code "RESPONSE_TOO_LARGE". */
  constructor(options?: { maxEventBytes?: number });
  /** Feeds a chunk of bytes (boundaries may fall anywhere); returns the events it completed. */
  feed(chunk: Uint8Array): SseEvent[];
  /** End of stream: an unterminated event is discarded (spec). */
  end(): SseEvent[];
  /** The last event ID (persists across events). */
  readonly lastEventId: string;
  /** The last valid `retry:` field, in milliseconds. */
  readonly retry: number | undefined;
  /** Releases the parser's wasm memory now. */
  free(): void;
}
