// An OpenAI-compatible proxy on Cloudflare Workers, made resilient by resilient-llm:
//   POST /v1/chat/completions   JSON or `stream: true` (SSE in OpenAI's chunk format, ending in [DONE])
//   GET  /stats                 the caller's own usage in this isolate (the admin token: the client's stats())
// The whole request is forwarded (tools, tool results, images, response_format, stop, seed; other fields
// as OpenAI provider options: see openai-shape.js), so an OpenAI SDK client keeps its tools whichever
// target answers, and tool calls come back, streamed or not, in OpenAI's format.
// Every route needs `Authorization: Bearer <token>`, a token of the CLIENT_TOKENS secret (see auth.js); the
// user id it maps to keys the per-user rate limit (shared by every isolate through the ResilienceState
// Durable Object) and the per-user daily token budget. `max_tokens` is clamped to MAX_TOKENS and the body
// to MAX_REQUEST_BYTES. The fallback chain comes from the TARGETS variable (JSON: [{ name, provider,
// baseUrl, model }]) with each target's key in a secret named <NAME>_API_KEY; deterministic answers
// (temperature 0) are cached in the LLM_CACHE KV namespace. A failure upstream reaches the caller as a
// generic error with a request id (x-request-id); the detail goes to the Worker's log (console.error).
import { ResilientClient } from "sturdy-llm";
import { kvStore } from "sturdy-llm/stores";
import { ResilienceState, durableObjectStateStore } from "sturdy-llm/workers";
import { authenticate } from "./auth.js";
import { chunks, completion, toChatRequest } from "./openai-shape.js";

export { ResilienceState };

/** A positive integer variable, else its default. */
const intVar = (value, fallback) => (Number.isInteger(Number(value)) && Number(value) > 0 ? Number(value) : fallback);

let client; // one per isolate, built on the first request (nothing may run at module scope)

function clientFor(env) {
  client ??= new ResilientClient({
    targets: JSON.parse(env.TARGETS).map((target) => ({
      ...target,
      apiKey: env[`${target.name.toUpperCase().replace(/\W/g, "_")}_API_KEY`] ?? target.apiKey,
    })),
    timeout: { attemptMs: 30_000, firstByteMs: 20_000, idleMs: 15_000 },
    rateLimit: { requestsPerMinute: intVar(env.USER_REQUESTS_PER_MINUTE, 60), maxWaitMs: 0 },
    budget: { perUserDailyTokens: intVar(env.USER_DAILY_TOKENS, 200_000) },
    cache: env.LLM_CACHE ? { store: kvStore(env.LLM_CACHE), ttlMs: 3_600_000 } : false,
    sharedState: env.RESILIENCE ? { store: durableObjectStateStore(env.RESILIENCE) } : undefined,
  });
  return client;
}

/** An error answer in OpenAI's shape; every answer names its request id. */
function errorJson(requestId, status, type, message, headers = {}) {
  return Response.json(
    { error: { message, type, code: null, request_id: requestId } },
    { status, headers: { "x-request-id": requestId, ...headers } },
  );
}

/**
 * The caller's view of a failed call. The caller's own limits (rate, budget) say what happened and when
 * to come back, and a request the client refused says which field; anything else (an upstream status or its text, a timeout, an open breaker) is generic:
 * an upstream's error text can carry the owner's account details. The detail goes to the log.
 */
function failure(requestId, user, error) {
  const retryAfter = error.retryAfterMs ? { "retry-after": String(Math.ceil(error.retryAfterMs / 1000)) } : {};
  if (error.name === "RateLimitError") return errorJson(requestId, 429, "rate_limited", error.message, retryAfter);
  if (error.name === "BudgetExceededError") return errorJson(requestId, 429, "budget_exceeded", `${error.message} It renews at 00:00 UTC.`);
  // The client refuses a malformed request before any call, naming the field: the caller's own input.
  if ((error instanceof TypeError || error instanceof RangeError) && error.message.startsWith("request.")) {
    return errorJson(requestId, 400, "invalid_request_error", error.message);
  }
  console.error(JSON.stringify({ requestId, user, name: error.name, code: error.code, status: error.status, message: error.message }));
  const [status, message] = {
    TimeoutError: [504, "The model service did not answer in time."],
    CircuitOpenError: [503, "The model service is unavailable; try again later."],
  }[error.name] ?? [502, "The model service failed to answer."];
  return errorJson(requestId, status, "upstream_error", `${message} Request id: ${requestId}.`, error.name === "CircuitOpenError" ? retryAfter : {});
}

/** The body as JSON, or an error answer: at most `limit` bytes are read. */
async function readJson(request, limit, requestId) {
  const tooLarge = () => errorJson(requestId, 413, "invalid_request_error", `The body is over ${limit} bytes.`);
  if (Number(request.headers.get("content-length")) > limit) return { error: tooLarge() };
  const chunks = [];
  let size = 0;
  const reader = request.body?.getReader();
  for (let part; reader && !(part = await reader.read()).done; ) {
    size += part.value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return { error: tooLarge() };
    }
    chunks.push(part.value);
  }
  try {
    return { body: JSON.parse(new TextDecoder().decode(await new Blob(chunks).arrayBuffer())) };
  } catch {
    return { error: errorJson(requestId, 400, "invalid_request_error", "The body must be JSON.") };
  }
}

const encoder = new TextEncoder();
const sse = (value) => encoder.encode(`data: ${typeof value === "string" ? value : JSON.stringify(value)}\n\n`);

function streamAnswer(stream, model, requestId, user, includeUsage) {
  const shape = chunks(`chatcmpl-${requestId}`, model);
  const body = new ReadableStream({
    async start(controller) {
      try {
        controller.enqueue(sse(shape.start()));
        for await (const delta of stream) {
          const chunk = shape.delta(delta);
          if (chunk) controller.enqueue(sse(chunk));
        }
        const result = await stream.result;
        controller.enqueue(sse(shape.finish(result)));
        if (includeUsage) controller.enqueue(sse(shape.usage(result)));
        controller.enqueue(sse("[DONE]"));
      } catch (error) {
        // Headers are gone already: the error travels in-band, as OpenAI does.
        controller.enqueue(sse(await failure(requestId, user, error).json()));
      }
      controller.close();
    },
    cancel() {
      stream.cancel();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "x-request-id": requestId } });
}

async function chat(request, env, ctx, user, requestId) {
  const read = await readJson(request, intVar(env.MAX_REQUEST_BYTES, 256 * 1024), requestId);
  if (read.error) return read.error;
  const { chat, problem } = toChatRequest(read.body, intVar(env.MAX_TOKENS, 1024));
  if (problem) return errorJson(requestId, 400, "invalid_request_error", problem);
  chat.user = user;
  chat.resilience = { rateLimitKey: user, waitUntil: ctx.waitUntil.bind(ctx) };
  try {
    const llm = clientFor(env);
    if (read.body.stream === true) {
      const includeUsage = read.body.stream_options?.include_usage === true;
      return streamAnswer(llm.chatStream(chat), String(read.body.model ?? "auto"), requestId, user, includeUsage);
    }
    const result = await llm.chat(chat);
    return Response.json(completion(`chatcmpl-${requestId}`, result), {
      headers: { "x-cache": result.cached ? "HIT" : "MISS", "x-target": result.target, "x-request-id": requestId },
    });
  } catch (error) {
    return failure(requestId, user, error);
  }
}

/** The admin's view is the client's whole stats(); a user's, their own usage row. */
function stats(env, { user, admin }, requestId) {
  const all = clientFor(env).stats();
  const own = all.costs.byUser.find((row) => row.user === user) ?? { user, inputTokens: 0, outputTokens: 0, costUsd: 0 };
  return Response.json(admin ? all : own, { headers: { "x-request-id": requestId, "cache-control": "no-store" } });
}

export default {
  async fetch(request, env, ctx) {
    const requestId = crypto.randomUUID();
    let identity;
    try {
      identity = await authenticate(request, env);
    } catch (error) {
      console.error(JSON.stringify({ requestId, configuration: error.message }));
      return errorJson(requestId, 500, "server_error", `The proxy is misconfigured. Request id: ${requestId}.`);
    }
    if (!identity) {
      return errorJson(requestId, 401, "invalid_request_error", "Authorization: Bearer <token> is missing or unknown.", { "www-authenticate": "Bearer" });
    }
    const { pathname } = new URL(request.url);
    if (pathname === "/stats" && request.method === "GET") return stats(env, identity, requestId);
    if (pathname === "/v1/chat/completions" && request.method === "POST") return chat(request, env, ctx, identity.user, requestId);
    return errorJson(requestId, 404, "invalid_request_error", "POST /v1/chat/completions or GET /stats");
  },
};
