// A Worker whose every request builds a new client, as separate isolates would: the only state they
// share is the ResilienceState Durable Object. Query parameters pick the variant:
//   shared=0          local state only (no sharedState)
//   kept=<name>       a client kept across requests (one isolate's), so its lease outlives a request
//   lease=default     the default leaseMs (1000) instead of 0 (every admission asks the object)
//   board=<name>      the Durable Object instance (durableObjectStateStore's `name`), "global" if unset
//   store=unreachable a namespace whose object cannot be reached (every call rejects)
//   failOpen=0        sharedState.failOpen: false
//   threshold=<n>     the client's breaker.failureThreshold (3 if unset)
//   rpm=<n>           the client's rateLimit: { requestsPerMinute: n, maxWaitMs: 0 } (else 3, burst 3)
//   stats=1           no call: answers the (kept) client's stats().rejected as JSON
//   raw=<json>        no call: a take with these settings straight to the object ("raw"), its answer as is
// A failure answers 599 with the error's name, and its code in `x-error-code`.
import { ResilientClient } from "sturdy-llm";
import { ResilienceState, durableObjectStateStore } from "sturdy-llm/workers";

export { ResilienceState };

const kept = new Map();

/** A namespace whose object never answers, as when the Durable Object is unreachable. */
const unreachable = (namespace) => ({
  idFromName: (name) => namespace.idFromName(name),
  get: () => ({ fetch: () => Promise.reject(new Error("the Durable Object is unreachable")) }),
});

function clientFor(params, env) {
  const namespace = params.get("store") === "unreachable" ? unreachable(env.RESILIENCE) : env.RESILIENCE;
  const sharedState = {
    store: durableObjectStateStore(namespace, { name: params.get("board") ?? "global" }),
    ...(params.get("lease") === "default" ? {} : { leaseMs: 0 }),
    ...(params.get("failOpen") === "0" ? { failOpen: false } : {}),
  };
  return new ResilientClient({
    retry: false,
    rateLimit: params.has("rpm")
      ? { requestsPerMinute: Number(params.get("rpm")), maxWaitMs: 0 }
      : { requestsPerMinute: 3, burst: 3, maxWaitMs: 0 },
    breaker: { failureThreshold: Number(params.get("threshold") ?? 3), resetTimeoutMs: 500 },
    sharedState: params.get("shared") !== "0" ? sharedState : undefined,
  });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const params = url.searchParams;
    if (params.has("raw")) {
      const body = JSON.stringify({ op: "take", key: "raw", tokens: 1, settings: JSON.parse(params.get("raw")) });
      const stub = env.RESILIENCE.get(env.RESILIENCE.idFromName("raw"));
      try {
        const answer = await stub.fetch("https://resilience-state/", { method: "POST", body });
        return new Response(await answer.text(), { status: answer.status });
      } catch (error) {
        return new Response(`${error.name}: ${error.message}`, { status: 500 });
      }
    }
    const name = params.get("kept");
    let client = name ? kept.get(name) : undefined;
    if (!client) {
      client = clientFor(params, env);
      if (name) kept.set(name, client);
    }
    if (params.get("stats")) return Response.json(client.stats().rejected);
    const headers = {};
    if (params.get("fault")) headers["x-mock-fault"] = params.get("fault");
    const user = params.get("user") ?? "anonymous";
    try {
      const response = await client.fetch(`${params.get("mock")}/v1/chat/completions`, {
        method: "POST",
        headers,
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "shared" }] }),
        resilience: { rateLimitKey: user },
      });
      await response.text();
      return new Response(String(response.status));
    } catch (error) {
      return new Response(error.name, { status: 599, headers: { "x-error-code": String(error.code) } });
    }
  },
};
