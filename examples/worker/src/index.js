// An OpenAI-compatible proxy on Cloudflare Workers, made resilient by resilient-llm:
//   POST /v1/chat/completions   JSON or `stream: true` (SSE in OpenAI's chunk format, ending in [DONE])
//   GET  /stats                 the isolate's ResilientClient.stats()
// The fallback chain comes from the TARGETS variable (JSON: [{ name, provider, baseUrl, model }]) with
// each target's key in a secret named <NAME>_API_KEY; per-user rate limits are keyed by the
// `x-user-id` header and shared by every isolate through the ResilienceState Durable Object;
// deterministic answers (temperature 0) are cached in the LLM_CACHE KV namespace.
import { ResilientClient } from "resilient-llm";
import { kvStore } from "resilient-llm/stores";
import { ResilienceState, durableObjectStateStore } from "resilient-llm/workers";

export { ResilienceState };

let client; // one per isolate, built on the first request (nothing may run at module scope)

function clientFor(env) {
  client ??= new ResilientClient({
    targets: JSON.parse(env.TARGETS).map((target) => ({
      ...target,
      apiKey: env[`${target.name.toUpperCase().replace(/\W/g, "_")}_API_KEY`] ?? target.apiKey,
    })),
    timeout: { attemptMs: 30_000, firstByteMs: 20_000, idleMs: 15_000 },
    rateLimit: { requestsPerMinute: Number(env.USER_REQUESTS_PER_MINUTE ?? 60), maxWaitMs: 0 },
    cache: env.LLM_CACHE ? { store: kvStore(env.LLM_CACHE), ttlMs: 3_600_000 } : false,
    sharedState: env.RESILIENCE ? { store: durableObjectStateStore(env.RESILIENCE) } : undefined,
  });
  return client;
}

const encoder = new TextEncoder();
const sse = (value) => encoder.encode(`data: ${typeof value === "string" ? value : JSON.stringify(value)}\n\n`);

function chunk(id, model, delta, finishReason = null) {
  return { id, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model, choices: [{ index: 0, delta, finish_reason: finishReason }] };
}

function errorResponse(error) {
  const status = { RateLimitError: 429, BudgetExceededError: 429, CircuitOpenError: 503, AllTargetsFailedError: 502, TimeoutError: 504 }[error.name] ?? (error.status || 500);
  const headers = error.retryAfterMs ? { "retry-after": String(Math.ceil(error.retryAfterMs / 1000)) } : {};
  return Response.json({ error: { message: error.message, type: error.name, code: error.code ?? null } }, { status, headers });
}

function streamAnswer(stream, model) {
  const id = `chatcmpl-${crypto.randomUUID()}`;
  const body = new ReadableStream({
    async start(controller) {
      try {
        controller.enqueue(sse(chunk(id, model, { role: "assistant", content: "" })));
        for await (const delta of stream) controller.enqueue(sse(chunk(id, model, { content: delta.text })));
        const result = await stream.result;
        controller.enqueue(sse(chunk(id, result.model, {}, result.finishReason)));
        controller.enqueue(sse("[DONE]"));
      } catch (error) {
        // Headers are gone already: the error travels in-band, as OpenAI does.
        controller.enqueue(sse({ error: { message: error.message, type: error.name, code: error.code ?? null } }));
      }
      controller.close();
    },
    cancel() {
      stream.cancel();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/stats") return Response.json(clientFor(env).stats());
    if (url.pathname !== "/v1/chat/completions" || request.method !== "POST") {
      return Response.json({ error: { message: "POST /v1/chat/completions" } }, { status: 404 });
    }
    let body;
    try {
      body = await request.json();
    } catch {
      return Response.json({ error: { message: "the body must be JSON" } }, { status: 400 });
    }
    const user = request.headers.get("x-user-id") ?? "anonymous";
    const chat = {
      messages: body.messages,
      maxTokens: body.max_tokens,
      temperature: body.temperature,
      user,
      resilience: { rateLimitKey: user, waitUntil: ctx.waitUntil.bind(ctx) },
    };
    try {
      const llm = clientFor(env);
      if (body.stream) return streamAnswer(llm.chatStream(chat), body.model ?? "auto");
      const result = await llm.chat(chat);
      return Response.json(
        {
          id: `chatcmpl-${crypto.randomUUID()}`,
          object: "chat.completion",
          created: Math.floor(Date.now() / 1000),
          model: result.model,
          choices: [{ index: 0, message: { role: "assistant", content: result.text }, finish_reason: result.finishReason }],
          usage: { prompt_tokens: result.usage.inputTokens, completion_tokens: result.usage.outputTokens, total_tokens: result.usage.inputTokens + result.usage.outputTokens },
        },
        { headers: { "x-cache": result.cached ? "HIT" : "MISS", "x-target": result.target } },
      );
    } catch (error) {
      return errorResponse(error);
    }
  },
};
