// The public surface, hand-written so it shows what users call and nothing of the wasm binding (and so
// it compiles under --strict without skipLibCheck or a `lib` the user did not ask for).
import type {
  ChatDelta, ChatRequest, ChatResult, ChatStream, ClientEventMap, ClientEventType, ClientOptions, ClientStats,
  EmbedRequest, EmbedResult, EventStream, ResilientInit, SseEvent, BudgetCap,
} from "./types.js";
export type * from "./types.js";

/** A `Response`, with `retryAfterMs` set when the server asked for a longer wait than `retry.maxRetryAfterMs`
 * (the call returned at once instead of sleeping). */
export type ResilientResponse = Response & { readonly retryAfterMs?: number };

export declare class ResilientClient {
  /** Bad options throw a `TypeError` or `RangeError` naming the field path. */
  constructor(options?: ClientOptions);
  /** `fetch` through the pipeline: resolves with the last Response after retries, rejects like fetch or with a typed error. */
  fetch(input: string | URL | Request, init?: ResilientInit): Promise<ResilientResponse>;
  /** `fetch` pre-bound to this client: `new OpenAI({ fetch: client.fetcher })`. */
  readonly fetcher: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  /** Server-Sent Events through the pipeline: retried until the first event, never replayed after. */
  events(input: string | URL | Request, init?: ResilientInit): EventStream;
  /** One call across the fallback chain of `targets`, inside the budgets, with its cost. */
  chat(request: ChatRequest): Promise<ChatResult>;
  /** Embeddings across the fallback chain: each text cached on its own (when the cache is on), only the misses
   * sent upstream in batches, the answer in input order. */
  embed(request: EmbedRequest): Promise<EmbedResult>;
  /** A streamed chat across the fallback chain: falls back only before the first delta. An invalid request
   * (its messages, options or `resilience`) throws at once, as `chat()` rejects with the same error. */
  chatStream(request: ChatRequest): ChatStream;
  stats(): ClientStats;
  /** Prometheus text exposition format. */
  metrics(): string;
  /** Calls `listener` for each event of `type`; returns the function that unsubscribes it. */
  on<K extends ClientEventType>(type: K, listener: (event: ClientEventMap[K]) => void): () => void;
  clearCache(): Promise<void>;
  /** Releases the client's wasm memory now; its methods then throw (or reject with) a TypeError, code "FREED". */
  free(): void;
}

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

/** The base of every error the package rejects with (network failures stay `TypeError`s, and an abort
 * rejects with the signal's `reason`, as fetch does). */
export declare class ResilientError extends Error {
  /** A stable code: "TIMEOUT", "CIRCUIT_OPEN", "RATE_LIMITED", "BUDGET_EXCEEDED", "INCOMPLETE_STREAM",
   * "RESPONSE_TOO_LARGE", "ALL_TARGETS_FAILED", an upstream error class in capitals ("RATE_LIMIT", "AUTH"...)... */
  readonly code: string;
  /** True for an instance of this class made by any copy of the package (where `instanceof` cannot see it). */
  static isInstance(value: unknown): value is ResilientError;
}
/** The breaker for `key` is open: no call is sent until a probe is allowed in `retryAfterMs`. Also code
 * "SHARED_STATE_UNAVAILABLE" when a shared state store is unreachable and `failOpen` is false. */
export declare class CircuitOpenError extends ResilientError {
  readonly name: "CircuitOpenError";
  readonly retryAfterMs: number;
  readonly key: string;
  static isInstance(value: unknown): value is CircuitOpenError;
}
/** The rate limit `key` would have made the call wait longer than `rateLimit.maxWaitMs`. */
export declare class RateLimitError extends ResilientError {
  readonly name: "RateLimitError";
  readonly retryAfterMs: number;
  readonly key: string;
  /** The chat target it was raised for. */
  readonly target?: string;
  static isInstance(value: unknown): value is RateLimitError;
}
/** A deadline ran out: `option` names it ("timeout.totalMs", "timeout.idleMs"...), `timeoutMs` is its value. */
export declare class TimeoutError extends ResilientError {
  readonly name: "TimeoutError";
  readonly timeoutMs: number;
  readonly option: string;
  readonly attempts?: number;
  readonly target?: string;
  static isInstance(value: unknown): value is TimeoutError;
}
/** The call could use more than what remains of `user`'s budget `cap`; figures in tokens, or USD for "dailyCostUsd". */
export declare class BudgetExceededError extends ResilientError {
  readonly name: "BudgetExceededError";
  readonly cap: BudgetCap;
  readonly limit: number;
  readonly remaining: number;
  readonly needed: number;
  readonly user: string;
  static isInstance(value: unknown): value is BudgetExceededError;
}
/** A stream was cut after its first event (nothing is replayed); `partialText` is the LLM text received. */
export declare class IncompleteStreamError extends ResilientError {
  readonly name: "IncompleteStreamError";
  readonly partialText?: string;
  readonly target?: string;
  static isInstance(value: unknown): value is IncompleteStreamError;
}
/** The upstream failed: an error status (`status`, classified as `kind`), an in-band stream error, an unreadable
 * answer, or an answer past a byte limit (code "RESPONSE_TOO_LARGE", with `limit` and the `option` that raises it). */
export declare class UpstreamError extends ResilientError {
  readonly name: "UpstreamError";
  readonly status?: number;
  readonly kind?: string;
  readonly attempts?: number;
  /** The chat target that failed. */
  readonly target?: string;
  readonly limit?: number;
  readonly option?: string;
  /** events(): the response with the error status. */
  readonly response?: Response;
  readonly partialText?: string;
  static isInstance(value: unknown): value is UpstreamError;
}
/** Every target of a chain of two or more failed; `errors[i]` is the i-th tried target's error. */
export declare class AllTargetsFailedError extends ResilientError {
  readonly name: "AllTargetsFailedError";
  readonly errors: Error[];
  /** When every target said when it is back (an open breaker, a rate limit): the first of them, in ms. */
  readonly retryAfterMs?: number;
  static isInstance(value: unknown): value is AllTargetsFailedError;
}
/** A cache store call failed or timed out (reported in an `error` event; the call went on as a miss). */
export declare class CacheStoreError extends ResilientError {
  readonly name: "CacheStoreError";
  static isInstance(value: unknown): value is CacheStoreError;
}
