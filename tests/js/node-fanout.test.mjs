// Node only, at a scale the browser and workerd suites would take minutes over: thousands of identical
// calls in flight sharing one upstream call, and thousands of long caller-chosen keys.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ResilientClient } from "sturdy-llm";
import { startMockLlm } from "../../www/mock-llm.mjs";

const CALLERS = 10_000;
/** At most this many callers share one upstream call (MAX_CALLERS in src/core/dedupe.rs). */
const PER_CALL = 1_000;

let mock;
before(async () => {
  mock = await startMockLlm();
});
after(() => mock.close());

/** Upstream requests so far (asked again if a pooled connection the mock closed fails the first try). */
async function upstream() {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await (await fetch(`${mock.url}/control/stats`)).json()).total;
    } catch (error) {
      if (attempt === 2) throw error;
    }
  }
}

// Regression: rate-limit keys and user ids were held whole (20k keys of 16 KB: +332 MB; 6k user ids
// of 16 KB: a 94 MB stats() report). First in the file: wasm memory only grows, so a test after the
// fan-out ones would measure nothing.
test("node: 20,000 rate-limit keys and 2,000 user ids of 16 KB leave stats() and wasm memory small", async (t) => {
  const client = new ResilientClient({
    dedupe: false, // every call reaches the limiter and the ledger
    rateLimit: { requestsPerMinute: 1_000_000, scope: "client" },
    targets: [{ name: "mock", provider: "openai", baseUrl: mock.url, apiKey: "sk-test", model: "mock-1", pricing: { inputPerMTok: 1, outputPerMTok: 1 } }],
  });
  const long = (i) => `${i}-${"k".repeat(16 * 1024)}`;
  const url = `${mock.url}/health`;
  await client.fetch(url, { resilience: { rateLimitKey: long(-1) } });
  const start = client.stats().memory.wasmBytes;
  // 100 calls in flight at a time: each holds its 16 KB key a while (measured at HEAD: +416 MB).
  for (let i = 0; i < 20_000; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => client.fetch(url, { resilience: { rateLimitKey: long(i + j) } }).then((r) => r.text())));
  }
  for (let i = 0; i < 2_000; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => client.chat({ messages: [{ role: "user", content: "hi" }], user: long(i + j) })));
  }
  const stats = client.stats();
  const grown = stats.memory.wasmBytes - start;
  t.diagnostic(`wasm memory grew ${(grown / 1048576).toFixed(1)} MB; stats() is ${JSON.stringify(stats).length} bytes`);
  const users = stats.costs.byUser;
  assert.equal(users.length, 2_000, "one row per user");
  assert.ok(users.every((row) => row.user.length <= 138), "user ids shown as a prefix and a hash");
  assert.ok(JSON.stringify(stats).length < 1_000_000, `stats() is ${JSON.stringify(stats).length} bytes`);
  assert.ok(grown < 16 * 1048576, `wasm memory grew ${(grown / 1048576).toFixed(1)} MB`);
});

// Regression: each follower's copy was a clone of the one response, a chain of tees as long as
// the number of callers: 1,600 identical GETs overflowed the stack, 3,000 never settled, 5,000 read
// with arrayBuffer() ended the process.
test(`node: ${CALLERS} identical GETs in flight all read the one answer`, async () => {
  const client = new ResilientClient();
  const url = `${mock.url}/v1/events?count=3&run=${Math.random()}`;
  // The answer waits until every caller has joined; its body arrives at once.
  const init = { headers: { "x-mock-fault": "delay=2000", "x-mock-chunk-delay-ms": "0" } };
  const before = await upstream();
  const bodies = await Promise.all(
    Array.from({ length: CALLERS }, async () => new TextDecoder().decode(await (await client.fetch(url, init)).arrayBuffer())),
  );
  assert.equal(new Set(bodies).size, 1, "every caller read the same body");
  assert.match(bodies[0], /data: tick 3/);
  assert.equal((await upstream()) - before, CALLERS / PER_CALL, "one upstream call per 1,000 callers");
  assert.equal(client.stats().deduplicated, CALLERS - CALLERS / PER_CALL);
});

test(`node: ${CALLERS} identical chat({ temperature: 0 }) calls all settle`, async () => {
  const client = new ResilientClient({
    targets: [{ name: "mock", provider: "openai", baseUrl: mock.url, apiKey: "sk-test", model: "mock-1" }],
  });
  const before = await upstream();
  const content = `fan out ${Math.random()}`;
  const answers = await Promise.all(
    Array.from({ length: CALLERS }, () => client.chat({ messages: [{ role: "user", content }], temperature: 0 })),
  );
  assert.equal(new Set(answers.map((a) => a.text)).size, 1);
  assert.ok(answers[0].text.includes("You said"));
  assert.ok((await upstream()) - before <= CALLERS / PER_CALL + 1, "at most one upstream call per 1,000 callers");
});
