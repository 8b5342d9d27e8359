// The package's option, result and event types (hand-written: wasm-bindgen would call them `any`).
export interface ChatStream extends AsyncIterable<ChatDelta> {
  /** The ChatResult, once iteration has consumed the stream (rejects with the stream's error). */
  readonly result: Promise<ChatResult>;
  /** Stops the stream and cancels the request body. */
  cancel(): void;
}
export interface Target {
  /** Names the target's breaker, bucket and cost lines; default `provider:model`. */
  name?: string;
  provider: "openai" | "anthropic";
  /** As the provider's SDK takes it: "https://api.openai.com/v1", "http://127.0.0.1:8080/v1" (requests go to
   * `${baseUrl}/chat/completions`; a URL with no path gets /v1), or "https://api.anthropic.com" (`/v1/messages`). */
  baseUrl: string;
  apiKey?: string;
  model: string;
  /** The model `embed()` asks this target for when the request names none; without it (and on Anthropic,
   * which has no embeddings API) `embed()` passes the target over. Requests go to `${baseUrl}/embeddings`. */
  embeddingModel?: string;
  headers?: Record<string, string>;
  /** US dollars per million tokens. Prompt-cache reads and writes, when not given: on Anthropic 0.1x and 1.25x
   * `inputPerMTok` (its rule for every Claude model), on OpenAI-compatible targets `inputPerMTok` itself (the
   * discount differs by model and server: give `cachedInputPerMTok` to count it). `embeddingPerMTok` prices
   * `embed()`'s input tokens. */
  pricing?: { inputPerMTok: number; outputPerMTok: number; cachedInputPerMTok?: number; cacheWritePerMTok?: number;
              embeddingPerMTok?: number };
  /** [true] adopt the rate limits the provider reports in its answers' headers (OpenAI x-ratelimit-*,
   * Anthropic anthropic-ratelimit-*, Azure x-ms-retry-after-ms): the next call waits for the refill
   * (within rateLimit.maxWaitMs, 5000 without a rateLimit) or moves down the chain at once. */
  learnLimits?: boolean;
  /** The server continues a final assistant message (a prefill), for `fallback.midStream`. Default: true for
   * "anthropic" (false opts an Anthropic-compatible server out), false for "openai": say true for a server that
   * does (llama.cpp, OpenRouter, vLLM with providerOptions.openai `{ continue_final_message: true,
   * add_generation_prompt: false }`); OpenAI's own API does not. */
  prefill?: boolean;
}
/** Text, or an image by URL: https: (fetched by the provider) or a data:image/...;base64, URL. `cache: true`:
 * the provider may cache the prompt up to here (Anthropic `cache_control`; at most 4 marks in a request;
 * dropped for OpenAI-compatible targets, which cache by themselves). */
export type ContentPart = { type: "text"; text: string; cache?: true } | { type: "image"; url: string; cache?: true };
/** A call the model made; `arguments` is the JSON text it wrote. */
export interface ToolCall { id: string; name: string; arguments: string }
/** `cache: true` marks the message's last block for the prompt cache (see ContentPart). */
export type ChatMessage =
  | { role: "system" | "user"; content: string | ContentPart[]; cache?: true }
  | { role: "assistant"; content: string | null; toolCalls?: ToolCall[]; cache?: true }
  | { role: "tool"; toolCallId: string; content: string; cache?: true };
/** A function the model may call; `parameters` is its JSON Schema; `cache: true` caches the tools up to this one. */
export interface Tool { name: string; description?: string; parameters: object; cache?: true }
/** Tokens of a call. `inputTokens` counts every prompt token, cache reads and writes included, in both dialects. */
export interface Usage { inputTokens: number; outputTokens: number; cachedInputTokens: number; cacheWriteTokens: number }
/** Tokens, cost and what the prompt cache saved (negative while writes cost more than reads saved). */
export interface Spend extends Usage { costUsd: number; cacheSavedUsd: number }
export interface ChatRequest {
  messages: ChatMessage[];
  tools?: Tool[];
  toolChoice?: "auto" | "none" | "required" | { name: string };
  /** JSON output. Anthropic targets get it by a forced tool call; the answer's `text` is the JSON either way. */
  responseFormat?: { type: "json" } | { type: "json_schema"; name: string; schema: object; strict?: boolean };
  maxTokens?: number; temperature?: number; topP?: number; stop?: string[];
  /** OpenAI only (Anthropic has no seed). */
  seed?: number;
  /** Budgets are per user ("anonymous" when absent). */
  user?: string; signal?: AbortSignal; resilience?: RequestPolicy;
  /** Members merged as is into that provider's request body (they win): e.g. { openai: { reasoning_effort: "low" } }.
   * `model`, `messages`, `stream` and `stream_options` are refused with a TypeError naming the key. */
  providerOptions?: { openai?: Record<string, unknown>; anthropic?: Record<string, unknown> };
  /** This call's hedging, instead of the client's `hedge`; `false`: never hedge it. */
  hedge?: false | HedgeOptions;
}
export interface ChatResult {
  text: string; toolCalls: ToolCall[]; target: string; provider: string; model: string;
  finishReason: "stop" | "length" | "tool_calls" | "content_filter" | (string & {});
  usage: Usage; costUsd: number; attempts: number;
  /** true: the response cache answered (same request); "semantic": the semantic cache answered with its
   * entry for a similar question (`cache.semantic`), from the target and model named here, costing nothing. */
  cached: boolean | "semantic";
  /** With cached "semantic": the cosine similarity of this question to the cached one (threshold..1). */
  similarity?: number;
  /** Who wrote `text.slice(start, end)` (UTF-16 offsets, as slice counts) and what that part cost: one part,
   * unless a mid-stream fallback (`fallback.midStream`) continued the answer on other targets, in order.
   * `target`, `provider` and `model` above are then the last writer's; `costUsd` and `usage` the sum. */
  parts: ChatPart[];
}
/** One target's part of an answer (see `ChatResult.parts`). */
export interface ChatPart { target: string; model: string; start: number; end: number; costUsd: number }
export interface EmbedRequest {
  /** One text or many; identical texts are embedded once, and each text is cached on its own. */
  input: string | string[];
  /** Overrides each target's `embeddingModel`. */
  model?: string;
  dimensions?: number;
  /** Budgets are per user ("anonymous" when absent). */
  user?: string; signal?: AbortSignal; resilience?: RequestPolicy;
}
export interface EmbedResult {
  /** One vector per input, in input order. */
  embeddings: Float32Array[];
  target: string; model: string;
  /** Input tokens billed: 0 when every text came from the cache. */
  usage: { inputTokens: number };
  costUsd: number;
  /** How many inputs came from the cache. */
  cached: number;
}
/** Tool-call pieces follow OpenAI's chunk shape whichever provider answers. */
export interface ChatDelta { text: string; toolCalls?: { index: number; id?: string; name?: string; argumentsDelta: string }[] }
export interface BudgetOptions { perRequestTokens?: number; perUserDailyTokens?: number; perUserMonthlyTokens?: number; dailyCostUsd?: number }
export interface EventStream extends AsyncIterable<SseEvent> {
  /** The response, once its first event arrived (or the call failed). */
  readonly response: Promise<Response>;
  /** Stops the stream and cancels the request body. */
  cancel(): void;
}
/** Byte limits on what an upstream sends; past one, the call fails with code "RESPONSE_TOO_LARGE". */
export interface LimitOptions {
  /** [8 MiB] A buffered answer: a chat() body, a stream's generated text, a body read to cache or for usage. */
  maxResponseBytes?: number;
  /** [1 MiB] One line, and one event's data, of an event stream. */
  maxEventBytes?: number;
}
export interface TimeoutOptions { attemptMs?: number; totalMs?: number; firstByteMs?: number; idleMs?: number }
export interface RetryOptions {
  maxRetries?: number; baseDelayMs?: number; maxDelayMs?: number;
  jitter?: "full" | "equal" | "decorrelated" | "none";
  retryOn?: number[]; maxRetryAfterMs?: number; budgetRatio?: number;
  /** chatStream(): resume a stream cut after its first delta (see the README). Default true. */
  resumeStreams?: boolean;
}
export interface BreakerOptions {
  failureThreshold?: number; errorThresholdPercentage?: number; volumeThreshold?: number; windowMs?: number;
  resetTimeoutMs?: number; halfOpenMaxCalls?: number; successThreshold?: number; scope?: "origin" | "client";
}
export interface RateLimitOptions {
  requestsPerMinute?: number; burst?: number; tokensPerMinute?: number; maxWaitMs?: number; scope?: "client" | "origin";
}
/** A stored answer. Times are milliseconds since the epoch; headers never include credentials. */
export interface CachedEntry {
  status: number; headers: [string, string][]; body: Uint8Array;
  storedAt: number; freshUntil: number; staleUntil: number;
}
/** Where cached answers live: Workers KV, the Cache API, Redis over HTTP... (see "sturdy-llm/stores").
 * Calls are given up after `cache.timeoutMs`; a failure, a timeout or an entry that could not have been
 * stored (status outside 200..=599, times out of order, a malformed field) is a miss and an `error` event. */
export interface CacheStore {
  /** The entry put under `key`, or undefined. Its body may also be an ArrayBuffer or a string (UTF-8). */
  get(key: string): Promise<(Omit<CachedEntry, "body"> & { body: Uint8Array | ArrayBuffer | string }) | undefined>;
  put(key: string, entry: CachedEntry, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  clear?(): Promise<void>;
}
export interface CacheOptions {
  /** ["memory"] LRU in this client; "indexeddb" in browsers (survives reloads); or your CacheStore. */
  store?: "memory" | "indexeddb" | CacheStore;
  ttlMs?: number; maxEntries?: number; maxBytes?: number; staleIfErrorMs?: number; namespace?: string;
  /** [1000] the longest wait for a store call (custom stores, IndexedDB); a lookup also takes at most half
   * of what is left of `timeout.totalMs`. */
  timeoutMs?: number;
  /** Off unless given: chat answers reused for similar questions (see SemanticCacheOptions). */
  semantic?: SemanticCacheOptions;
}
/** The semantic cache: each complete chat answer is kept with the embedding of the conversation's last user
 * turn; a later call whose last turn is similar (cosine >= threshold) and whose everything else is identical
 * (system prompt, other messages, tools, response format, options, user, targets and credentials) may be
 * answered with it. In memory in this client, exact search. */
export interface SemanticCacheOptions {
  /** Least cosine similarity for a hit, 0..1 (0.9 and up for paraphrases only; depends on the embedding model). */
  threshold: number;
  /** The target (by name) whose embeddings API embeds questions; default: the first target that has one. */
  embeddingTarget?: string;
  /** ["fallback"] answer from it only when the whole chain failed (outages, open breakers, rate limits);
   * "first": before asking any target. */
  as?: "fallback" | "first";
  /** [1000] entries kept; the least recently used go first. */
  maxEntries?: number;
  /** [33554432] bytes kept (vectors, answers). */
  maxBytes?: number;
}
/** Breaker and rate-limit state shared across isolates (see "sturdy-llm/workers"). Each question carries
 * the client's own settings, `{ breaker }` or `{ rateLimit }` as in `ClientOptions`, as JSON (the same settings
 * give the same string), which the store applies. */
export interface StateStore {
  admit(key: string, settings?: string): Promise<{ ok: boolean; state: "closed" | "open" | "half-open"; probe?: boolean; permit?: number; retryAfterMs?: number }>;
  record(key: string, verdict: "success" | "failure" | "ignored", permit?: number, settings?: string): Promise<unknown>;
  take(key: string, tokens: number, settings?: string): Promise<{ ok: boolean; waitMs?: number; retryAfterMs?: number }>;
}
export interface SharedStateOptions {
  store: StateStore;
  /** [true] carry on with no breaker/limit when the store is unreachable; false refuses the call. */
  failOpen?: boolean;
  /** [1000] while the shared breaker is closed, admit calls locally for this long before asking again. */
  leaseMs?: number;
}
export interface ClientOptions {
  baseUrl?: string;
  headers?: Record<string, string>;
  timeout?: TimeoutOptions;
  retry?: false | RetryOptions;
  breaker?: false | BreakerOptions;
  rateLimit?: false | RateLimitOptions;
  /** Off unless given: caches deterministic answers (GET, temperature 0, or resilience.cache "force"). */
  cache?: boolean | CacheOptions;
  dedupe?: boolean;
  /** The fallback chain for chat() and chatStream(), in order (at most 5 are tried per call). */
  targets?: Target[];
  budget?: BudgetOptions;
  /** Shared breaker and rate-limit state (the store plays them instead of this client's own). */
  sharedState?: SharedStateOptions;
  limits?: LimitOptions;
  fallback?: FallbackOptions;
  /** [off] chat() and chatStream(): start the next target of the chain too when the first token is late; the
   * first to produce one wins, the other is cancelled (no failure for its breaker). Per call: `ChatRequest.hedge`. */
  hedge?: false | HedgeOptions;
}
export interface HedgeOptions {
  /** How late is late: ms without a first token (chatStream(): the first delta; chat(): the response
   * headers), from 0 to 86400000; or "p95": the target's own 95th percentile time to first token, over
   * its last 100 (no hedge until it has produced 20). */
  afterMs: number | "p95";
}
export interface FallbackOptions {
  /** When every target of a chat call is out (breaker open, rate-limited) and each said when it is back, wait
   * at most this long in all for the first one back, within timeout.totalMs, then try it; 0 never waits
   * [the rate limiter's maxWaitMs: 5000 without a rateLimit]. */
  maxWaitMs?: number;
  /** [false] A chatStream() cut after its first delta that cannot be resumed on its own target continues on the
   * next target in the chain that can prefill (`Target.prefill`; not an Anthropic one for a responseFormat) and
   * is not out: it gets the same request plus the text already delivered as a final assistant message, and only
   * what it writes next is handed out (no prompt text is added). Not after a tool-call delta. A `fallback`
   * event marks the move; `result.parts` says who wrote what, each part charged to its target. */
  midStream?: boolean;
}
export interface RequestPolicy {
  cache?: "default" | "bypass" | "force" | "only-if-cached";
  rateLimitKey?: string;
  retry?: false | RetryOptions;
  timeout?: TimeoutOptions;
  idempotencyKey?: string;
  /** GET event streams: reconnect after a cut with Last-Event-ID (true = up to 3 times). */
  reconnect?: boolean | { maxAttempts?: number };
  /** Keeps background work (cache writes) alive after the response: pass ctx.waitUntil.bind(ctx) in a Worker. */
  waitUntil?: (promise: Promise<unknown>) => void;
  limits?: LimitOptions;
}
export type ResilientInit = RequestInit & { resilience?: RequestPolicy };
export interface ClientStats {
  requests: number; successes: number; failures: number; retries: number;
  /** Calls answered by sharing an identical call in flight. */
  deduplicated: number;
  rejected: { breaker: number; rateLimit: number; budget: number };
  cache: { hits: number; misses: number; entries: number; hitRate: number };
  breakers: { key: string; state: "closed" | "open" | "half-open"; failures: number }[];
  rateLimit: { tokens: number; capacity: number } | null;
  /** What each chat target's provider said is left (refilled since; null when not reported or whole again),
   * and in how long the learned limit holds no call back. */
  learnedLimits: { key: string; remainingRequests: number | null; remainingTokens: number | null; resetInMs: number }[];
  latencyMs: { p50: number; p95: number; p99: number };
  usage: Spend;
  /** Hedges started (a first token was late and the next target was asked too), and won by that target. */
  hedges: { started: number; won: number };
  /** The wasm module's memory (it only grows: the high-water mark of what was held at once). */
  memory: { wasmBytes: number };
  /** Chat usage, cost and prompt-cache savings per model and per user. */
  costs: {
    byModel: (Spend & { model: string })[];
    byUser: (Spend & { user: string })[];
  };
}
export interface SseEvent { event: string; data: string; id: string }
/** What each event type carries; `on(type, listener)` hands the listener that type's event. */
export interface ClientEventMap {
  /** An attempt is sent. */
  request: { type: "request"; url: string; attempt: number };
  /** An attempt answered (any status). */
  response: { type: "response"; url: string; status: number; attempt: number; elapsedMs: number };
  /** A retry is scheduled after `delayMs`; `status` for a retried status, `fromServer` when the delay came from Retry-After. */
  retry: { type: "retry"; url: string; attempt: number; delayMs: number; fromServer: boolean;
           reason: "status" | "timeout" | "network" | "cut"; status?: number };
  /** A circuit breaker changed state. */
  breaker: { type: "breaker"; key: string; from: BreakerState; to: BreakerState };
  /** A call waits for rate-limit capacity, or is rejected (`rejected: true`). */
  rateLimited: { type: "rateLimited"; key: string; waitMs: number; rejected: boolean };
  /** A cache lookup or write. */
  /** A cache lookup or write; "semantic": the semantic cache answered a chat call (url: the stored answer's target). */
  cache: { type: "cache"; url: string; result: "hit" | "miss" | "stale" | "semantic" | (string & {}) };
  /** chat() or chatStream() moves to the next target; `reason` is the failure's code or name. */
  fallback: { type: "fallback"; from: string; to: string; reason: string };
  /** A hedged call's race was decided: `from` was `afterMs` late, `to` was asked too; `winner` produced its
   * first token first (null when both failed). */
  hedge: { type: "hedge"; from: string; to: string; afterMs: number; winner: string | null };
  /** A user's budget crossed 80% (`used: 0.8`) or 100% of the cap `cap`. */
  budget: { type: "budget"; user: string; cap: BudgetCap; used: number };
  /** A call failed (with the error it rejects with), or a cache store failed (CacheStoreError). */
  error: { type: "error"; url: string; error: Error };
}
export type ClientEventType = keyof ClientEventMap;
/** A discriminated union on `type`. */
export type ClientEvent = ClientEventMap[ClientEventType];
export type BreakerState = "closed" | "open" | "half-open";
export type BudgetCap = "perRequestTokens" | "perUserDailyTokens" | "perUserMonthlyTokens" | "dailyCostUsd";
