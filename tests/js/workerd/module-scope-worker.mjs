// A client built at module scope, once per isolate, before any request (the README allows it).
// workerd refuses a script whose top level sets a timer or draws random numbers ("Disallowed
// operation called within global scope"), so if construction did either, this Worker would not load.
// The routes then use that one client from many requests: state made in one request (a cache entry,
// a bucket, an in-flight call) serves the next.
import { env } from "cloudflare:workers";
import { ResilientClient } from "sturdy-llm";

const client = new ResilientClient({
  targets: [{ name: "mock", provider: "openai", baseUrl: env.MOCK_URL, model: "m" }],
  retry: { maxRetries: 2, baseDelayMs: 10, maxDelayMs: 20, jitter: "full" },
  breaker: { failureThreshold: 5 },
  rateLimit: { requestsPerMinute: 600, burst: 2, maxWaitMs: 2000 },
  cache: { ttlMs: 60_000 },
  budget: { perUserDailyTokens: 1_000_000 },
  timeout: { attemptMs: 5000, idleMs: 2000 },
});

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const prompt = url.searchParams.get("prompt") ?? "module scope";
    const messages = [{ role: "user", content: prompt }];
    try {
      switch (url.pathname) {
        case "/chat": {
          const result = await client.chat({ messages, temperature: 0, resilience: { waitUntil: ctx.waitUntil.bind(ctx) } });
          return Response.json({ text: result.text, cached: result.cached });
        }
        case "/stream": {
          let text = "";
          const stream = client.chatStream({ messages });
          for await (const delta of stream) text += delta.text;
          return Response.json({ text, result: (await stream.result).text });
        }
        case "/fetch": {
          const response = await client.fetch(`${env.MOCK_URL}/v1/chat/completions`, {
            method: "POST",
            headers: url.searchParams.has("fault") ? { "x-mock-fault": url.searchParams.get("fault") } : {},
            body: JSON.stringify({ model: "m", messages }),
          });
          return Response.json({ status: response.status, text: (await response.json()).choices?.[0]?.message?.content });
        }
        case "/stats":
          return Response.json(client.stats());
        default:
          return new Response("not found", { status: 404 });
      }
    } catch (error) {
      return Response.json({ error: `${error.name}/${error.code}: ${error.message}` }, { status: 599 });
    }
  },
};
