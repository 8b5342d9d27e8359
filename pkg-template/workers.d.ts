import type { StateStore } from "./types.js";

/** The Durable Object holding shared breaker and rate-limit state; export it from your Worker. It applies each
 * client's own `breaker` and `rateLimit` settings, sent with every question. */
export declare class ResilienceState {
  /** `RESILIENCE_OPTIONS`: JSON `{ breaker, rateLimit }`, only the default for a caller that sends no settings. */
  constructor(state: unknown, env: { RESILIENCE_OPTIONS?: string });
  fetch(request: Request): Promise<Response>;
}

/** A StateStore on a `ResilienceState` Durable Object namespace binding. */
export declare function durableObjectStateStore(
  namespace: { idFromName(name: string): unknown; get(id: unknown): { fetch(input: string, init?: RequestInit): Promise<Response> } },
  options?: { name?: string },
): StateStore;
