export { ResilientClient, SseParser } from "./resilient_llm.js";
export type {
  ClientOptions, TimeoutOptions, RetryOptions, BreakerOptions, RateLimitOptions, RequestPolicy, ResilientInit,
  ClientStats, ClientEventType, ClientEvent, SseEvent, EventStream,
} from "./resilient_llm.js";
