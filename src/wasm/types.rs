//! Hand-written TypeScript types for the options, stats and events (wasm-bindgen would call them `any`).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
export interface ResilientClient {
  /** `fetch` pre-bound to this client: `new OpenAI({ fetch: client.fetcher })`. */
  readonly fetcher: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  /** Server-Sent Events through the pipeline: retried until the first event, never replayed after. */
  events(input: string | URL | Request, init?: ResilientInit): EventStream;
}
export interface EventStream extends AsyncIterable<SseEvent> {
  /** The response, once its first event arrived (or the call failed). */
  readonly response: Promise<Response>;
  /** Stops the stream and cancels the request body. */
  cancel(): void;
}
export interface TimeoutOptions { attemptMs?: number; totalMs?: number; firstByteMs?: number; idleMs?: number }
export interface RetryOptions {
  maxRetries?: number; baseDelayMs?: number; maxDelayMs?: number;
  jitter?: "full" | "equal" | "decorrelated" | "none";
  retryOn?: number[]; maxRetryAfterMs?: number; budgetRatio?: number;
}
export interface BreakerOptions {
  failureThreshold?: number; errorThresholdPercentage?: number; volumeThreshold?: number; windowMs?: number;
  resetTimeoutMs?: number; halfOpenMaxCalls?: number; successThreshold?: number; scope?: "origin" | "client";
}
export interface RateLimitOptions {
  requestsPerMinute?: number; burst?: number; tokensPerMinute?: number; maxWaitMs?: number; scope?: "client" | "origin";
}
export interface ClientOptions {
  baseUrl?: string;
  headers?: Record<string, string>;
  timeout?: TimeoutOptions;
  retry?: false | RetryOptions;
  breaker?: false | BreakerOptions;
  rateLimit?: false | RateLimitOptions;
  dedupe?: boolean;
}
export interface RequestPolicy {
  cache?: "default" | "bypass" | "force" | "only-if-cached";
  rateLimitKey?: string;
  retry?: false | RetryOptions;
  timeout?: TimeoutOptions;
  idempotencyKey?: string;
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
  latencyMs: { p50: number; p95: number; p99: number };
  usage: { inputTokens: number; outputTokens: number; costUsd: number };
}
export type ClientEventType = "request" | "response" | "retry" | "breaker" | "cache" | "rateLimited" | "fallback" | "budget" | "error";
export interface SseEvent { event: string; data: string; id: string }
export interface ClientEvent { type: ClientEventType; [field: string]: unknown }
"#;
