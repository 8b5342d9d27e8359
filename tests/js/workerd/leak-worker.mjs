// One long-lived Worker (one isolate, one client at module scope) serving many mixed requests: cache
// hits and misses, aborts, timeouts, streams cancelled mid-way, chat calls. `/run` does a batch and
// answers with the client's stats, so a test can watch memory across batches.
import { ResilientClient } from "resilient-llm";

let client;

async function one(i, mock, only) {
  const url = `${mock}/v1/chat/completions`;
  const body = (extra) => JSON.stringify({ model: "m", messages: [{ role: "user", content: `leak ${i % 300}` }], ...extra });
  switch (only ?? i % 6) {
    case 0: // cached (temperature 0): hits once the entry is stored, misses while the cache turns over
      return (await client.fetch(url, { method: "POST", body: body({ temperature: 0 }) })).text();
    case 1: // sampled, never cached
      return (await client.fetch(url, { method: "POST", body: body({ temperature: 0.5 }) })).text();
    case 2: { // aborted before the answer
      const controller = new AbortController();
      const pending = client.fetch(url, { method: "POST", body: body({}), headers: { "x-mock-fault": "delay=50" }, signal: controller.signal });
      setTimeout(() => controller.abort(), 5);
      return pending.catch(() => {});
    }
    case 3: // times out
      return client.fetch(url, { method: "POST", body: body({}), headers: { "x-mock-fault": "delay=100" }, resilience: { timeout: { attemptMs: 10 }, retry: false } }).catch(() => {});
    case 4: { // a stream cancelled mid-way
      let n = 0;
      for await (const _ of client.events(url, { method: "POST", body: body({ stream: true }) })) if (++n === 3) break;
      return;
    }
    default:
      return client.chat({ messages: [{ role: "user", content: `chat ${i % 50}` }] });
  }
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    const mock = url.searchParams.get("mock");
    client ??= new ResilientClient({
      cache: { maxEntries: 100 },
      targets: [{ name: "mock", provider: "openai", baseUrl: mock, model: "m" }],
    });
    const count = Number(url.searchParams.get("count") ?? 300);
    const start = Number(url.searchParams.get("start") ?? 0);
    const only = url.searchParams.has("kind") ? Number(url.searchParams.get("kind")) : undefined;
    for (let i = start; i < start + count; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, k) => one(i + k, mock, only)));
    }
    return Response.json(client.stats());
  },
};
