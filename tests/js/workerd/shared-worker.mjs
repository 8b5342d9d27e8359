// A Worker whose every request builds a new client, as separate isolates would: the only state they
// share is the ResilienceState Durable Object.
import { ResilientClient } from "resilient-llm";
import { ResilienceState, durableObjectStateStore } from "resilient-llm/workers";

export { ResilienceState };

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const shared = url.searchParams.get("shared") !== "0";
    const client = new ResilientClient({
      retry: false,
      rateLimit: { requestsPerMinute: 3, burst: 3, maxWaitMs: 0 },
      breaker: { failureThreshold: 3, resetTimeoutMs: 500 },
      sharedState: shared ? { store: durableObjectStateStore(env.RESILIENCE), leaseMs: 0 } : undefined,
    });
    const headers = {};
    if (url.searchParams.get("fault")) headers["x-mock-fault"] = url.searchParams.get("fault");
    const user = url.searchParams.get("user") ?? "anonymous";
    try {
      const response = await client.fetch(`${url.searchParams.get("mock")}/v1/chat/completions`, {
        method: "POST",
        headers,
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "shared" }] }),
        resilience: { rateLimitKey: user },
      });
      await response.text();
      return new Response(String(response.status));
    } catch (error) {
      return new Response(error.name, { status: 599 });
    }
  },
};
