// The example Worker (examples/worker) in workerd, with its KV and Durable Object bindings, against
// the mock LLM: JSON and streamed answers in OpenAI's format, fallback, a cache hit served from KV,
// per-user limits shared through the Durable Object, and /stats.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWorker } from "./workerd/harness.mjs";
import { startMockLlm } from "../../www/mock-llm.mjs";

const here = dirname(fileURLToPath(import.meta.url));
let mock;
let mf;

before(async () => {
  mock = await startMockLlm();
  const targets = ["primary", "backup"].map((name) => ({ name, provider: "openai", baseUrl: `${mock.url}/t/${name}`, model: "mock-1" }));
  mf = await startWorker(join(here, "../../examples/worker/src/index.js"), "example-worker", {
    kvNamespaces: ["LLM_CACHE"],
    durableObjects: { RESILIENCE: "ResilienceState" },
    bindings: {
      TARGETS: JSON.stringify(targets),
      PRIMARY_API_KEY: "sk-primary",
      USER_REQUESTS_PER_MINUTE: "3",
      RESILIENCE_OPTIONS: JSON.stringify({ rateLimit: { requestsPerMinute: 3, maxWaitMs: 0 } }),
    },
  });
});
after(async () => {
  await mf?.dispose();
  await mock?.close();
});

let users = 0;
function ask(body, user = `user-${users++}`) {
  return mf.dispatchFetch("http://proxy/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", "x-user-id": user },
    body: JSON.stringify({ model: "auto", messages: [{ role: "user", content: "hello proxy" }], ...body }),
  });
}

test("example worker: a JSON answer in OpenAI's format", async () => {
  const response = await ask({});
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.ok(body.choices[0].message.content.startsWith('You said: "hello proxy"'));
  assert.equal(response.headers.get("x-target"), "primary");
});

test("example worker: a streamed answer passes through intact", async () => {
  const json = await (await ask({})).json();
  const response = await ask({ stream: true });
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  const events = (await response.text()).split("\n\n").filter(Boolean).map((e) => e.replace(/^data: /, ""));
  assert.equal(events.at(-1), "[DONE]");
  const text = events.slice(0, -1).map((e) => JSON.parse(e).choices[0].delta.content ?? "").join("");
  assert.equal(text, json.choices[0].message.content);
});

test("example worker: falls back to the backup during an outage", async () => {
  mock.setFaults({ target: "primary", outage: true });
  try {
    const response = await ask({});
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-target"), "backup");
  } finally {
    mock.setFaults({ target: "primary" });
  }
});

test("example worker: a deterministic answer is served from KV the second time", async () => {
  const body = { temperature: 0, messages: [{ role: "user", content: `cache me ${Date.now()}` }] };
  // The same user: `user` is part of the request, so of its cache key.
  const first = await ask(body, "erin");
  assert.equal(first.headers.get("x-cache"), "MISS");
  const text = (await first.json()).choices[0].message.content;
  const seen = mock.stats().total;
  let second;
  for (let i = 0; i < 20; i++) {
    second = await ask(body, "erin");
    if (second.headers.get("x-cache") === "HIT") break;
    await second.text();
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(second.headers.get("x-cache"), "HIT");
  assert.equal((await second.json()).choices[0].message.content, text);
  assert.equal(mock.stats().total, seen, "the upstream was not asked");
});

test("example worker: per-user limits, shared through the Durable Object", async () => {
  const statuses = [];
  for (let i = 0; i < 4; i++) {
    const response = await ask({}, "carol");
    statuses.push(response.status);
    await response.text();
  }
  assert.deepEqual(statuses, [200, 200, 200, 429]);
  assert.equal((await ask({}, "dave")).status, 200);
  // The statuses alone would pass without the Durable Object (the isolate's own bucket has the same
  // 3 a minute): the object's own bucket for carol must be the one spent.
  const namespace = await mf.getDurableObjectNamespace("RESILIENCE");
  const board = namespace.get(namespace.idFromName("global"));
  const take = async (key) => (await board.fetch("https://resilience-state/", { method: "POST", body: JSON.stringify({ op: "take", key, tokens: 0 }) })).json();
  const carol = await take("client|carol");
  assert.equal(carol.ok, false, `carol's shared bucket is empty: ${JSON.stringify(carol)}`);
  assert.ok(carol.retryAfterMs > 0 && carol.retryAfterMs <= 20_000, `one request back in 60 s / 3: ${carol.retryAfterMs} ms`);
  assert.equal((await take("client|erin-never-asked")).ok, true, "a key nobody used has its full bucket");
});

test("example worker: /stats", async () => {
  const stats = await (await mf.dispatchFetch("http://proxy/stats")).json();
  assert.ok(stats.requests > 0);
  assert.ok(Array.isArray(stats.breakers));
});
