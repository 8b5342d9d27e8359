// Cloudflare Workers: breaker and rate-limit state shared by every isolate, on a Durable Object.
//
//   // worker.js
//   import { ResilientClient } from "sturdy-llm";
//   import { ResilienceState, durableObjectStateStore } from "sturdy-llm/workers";
//   export { ResilienceState };                       // the Durable Object class, bound in wrangler.toml
//   export default {
//     async fetch(request, env, ctx) {
//       client ??= new ResilientClient({ sharedState: { store: durableObjectStateStore(env.RESILIENCE) }, ... });
//       ...
//     },
//   };
//
// The Durable Object runs the package's own breaker and token buckets (PolicyBoard) on the settings
// each client sends with its questions: the client's own `breaker` and `rateLimit` options, so one
// source of truth. Clients with the same settings share a breaker (and bucket) per key; a client with
// other settings has its own. `RESILIENCE_OPTIONS` (JSON `{ breaker, rateLimit }`) is only the default
// for a caller that sends no settings (a custom caller of the store). A Durable
// Object is single-threaded, so only one half-open probe is admitted across all isolates and the
// buckets are one global budget. Its state lives in memory: if the object is evicted, breakers start
// closed and buckets full again.
import "./entry-workerd.js";
import { PolicyBoard } from "./sturdy_llm.js";

export class ResilienceState {
  #board;

  constructor(state, env) {
    this.#board = new PolicyBoard(env?.RESILIENCE_OPTIONS ? JSON.parse(env.RESILIENCE_OPTIONS) : {});
  }

  async fetch(request) {
    const { op, key, verdict, permit, tokens, settings } = await request.json();
    const now = Date.now();
    switch (op) {
      case "admit":
        return Response.json(this.#board.admit(String(key), now, settings));
      case "record":
        return Response.json(this.#board.record(String(key), String(verdict), permit, now, settings));
      case "take":
        return Response.json(this.#board.take(String(key), Number(tokens) || 0, now, settings));
      default:
        return new Response(`unknown op ${op}`, { status: 400 });
    }
  }
}

/**
 * A StateStore on the `ResilienceState` Durable Object bound as `namespace` (one object per `name`).
 * A stub is made per call: a client lives across requests, and workerd forbids using I/O objects (a
 * stub) from one request in another.
 */
export function durableObjectStateStore(namespace, { name = "global" } = {}) {
  const call = async (body) => {
    const stub = namespace.get(namespace.idFromName(name));
    const response = await stub.fetch("https://resilience-state/", { method: "POST", body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`ResilienceState answered ${response.status}: ${await response.text()}`);
    return response.json();
  };
  return {
    admit: (key, settings) => call({ op: "admit", key, settings }),
    record: (key, verdict, permit, settings) => call({ op: "record", key, verdict, permit, settings }),
    take: (key, tokens, settings) => call({ op: "take", key, tokens, settings }),
  };
}
