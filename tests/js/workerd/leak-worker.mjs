// One long-lived Worker (one isolate, one client at module scope) serving many mixed requests: cache
// hits and misses, aborts, timeouts, streams cancelled mid-way, chat calls. `/run` does a batch and
// answers with the client's stats and each kind's outcomes, so a test can watch memory across batches
// and check that every kind still ends as it should.
import { ResilientClient } from "sturdy-llm";

let client;

const KINDS = ["cached", "sampled", "aborted", "timeout", "events-break", "chat"];

/** One request of kind `i % 6` (or `only`); resolves with its outcome, a failure's `name/code` included. */
async function one(i, mock, only) {
  const url = `${mock}/v1/chat/completions`;
  const body = (extra) => JSON.stringify({ model: "m", messages: [{ role: "user", content: `leak ${i % 300}` }], ...extra });
  const answer = async (response) => `HTTP ${response.status}${response.headers.get("x-cache") ? ` ${response.headers.get("x-cache")}` : ""}${(await response.text()) ? "" : " (empty)"}`;
  try {
    switch (only ?? i % 6) {
      case 0: // cached (temperature 0): 50 prompts, a miss the first time each is asked, then hits
        return await answer(await client.fetch(url, { method: "POST", body: body({ temperature: 0 }) }));
      case 1: // sampled, never cached
        return await answer(await client.fetch(url, { method: "POST", body: body({ temperature: 0.5 }) }));
      // The answer comes 1 s late, so that the abort (5 ms) and the timeout (10 ms) always win, even
      // when a loaded machine stalls the event loop (with 100 ms, one timeout in 800 lost the race).
      case 2: { // aborted before the answer
        const controller = new AbortController();
        const pending = client.fetch(url, { method: "POST", body: body({}), headers: { "x-mock-fault": "delay=1000" }, signal: controller.signal });
        setTimeout(() => controller.abort(), 5);
        return await answer(await pending);
      }
      case 3: // times out
        return await answer(await client.fetch(url, { method: "POST", body: body({}), headers: { "x-mock-fault": "delay=1000" }, resilience: { timeout: { attemptMs: 10 }, retry: false } }));
      case 4: { // a stream cancelled mid-way
        let n = 0;
        for await (const _ of client.events(url, { method: "POST", body: body({ stream: true }) })) if (++n === 3) return "broke off";
        return `ended after ${n} events`;
      }
      default:
        return (await client.chat({ messages: [{ role: "user", content: `chat ${i % 50}` }] })).text.startsWith("You said") ? "ok" : "wrong text";
    }
  } catch (error) {
    return `${error?.name}/${error?.code}`;
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
    // Outcomes per kind, so the test can see that the mix did not decay into instant errors.
    const outcomes = {};
    for (let i = start; i < start + count; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, (_, k) => one(i + k, mock, only)));
      batch.forEach((outcome, k) => {
        const kind = (outcomes[KINDS[only ?? (i + k) % 6]] ??= {});
        kind[outcome] = (kind[outcome] ?? 0) + 1;
      });
    }
    return Response.json({ stats: client.stats(), outcomes });
  },
};
