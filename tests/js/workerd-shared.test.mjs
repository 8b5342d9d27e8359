// Shared state across isolates in workerd: clients that share nothing but the ResilienceState
// Durable Object see one breaker (opened once for all, one half-open probe) and one bucket per user.
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
  mf = await startWorker(join(here, "workerd/shared-worker.mjs"), "shared-worker", {
    durableObjects: { RESILIENCE: "ResilienceState" },
    bindings: {
      RESILIENCE_OPTIONS: JSON.stringify({
        breaker: { failureThreshold: 3, resetTimeoutMs: 500 },
        rateLimit: { requestsPerMinute: 3, burst: 3, maxWaitMs: 0 },
      }),
    },
  });
});
after(async () => {
  await mf?.dispose();
  await mock?.close();
});

async function call(params) {
  const url = new URL("http://worker/");
  url.searchParams.set("mock", mock.url);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  const response = await mf.dispatchFetch(url);
  return response.text();
}

test("workerd: isolates share one breaker: it opens once for all and admits one probe", async () => {
  for (let i = 0; i < 3; i++) assert.equal(await call({ fault: "status=503", user: `b${i}` }), "503");
  const seen = mock.stats().total;
  assert.equal(await call({ user: "b9" }), "CircuitOpenError", "a fresh client sees the shared breaker open");
  assert.equal(mock.stats().total, seen, "nothing reached the upstream");
  await new Promise((r) => setTimeout(r, 550));
  const probes = await Promise.all(Array.from({ length: 6 }, (_, i) => call({ fault: "delay=300", user: `p${i}` })));
  assert.equal(probes.filter((r) => r === "200").length, 1, `one probe across all clients: ${probes}`);
  assert.equal(probes.filter((r) => r === "CircuitOpenError").length, 5);
  assert.equal(mock.stats().total, seen + 1);
  assert.equal(await call({ user: "after" }), "200", "closed again after the probe");
});

test("workerd: per-user limits hold across isolates", async () => {
  const alice = [];
  for (let i = 0; i < 5; i++) alice.push(await call({ user: "alice" }));
  assert.deepEqual(alice, ["200", "200", "200", "RateLimitError", "RateLimitError"]);
  assert.equal(await call({ user: "bob" }), "200", "another user has their own bucket");
});

test("workerd: added latency of the shared-state path versus local state", async (t) => {
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const time = async (shared) => {
    const out = [];
    for (let i = 0; i < 40; i++) {
      const started = performance.now();
      assert.equal(await call({ shared: shared ? "1" : "0", user: `lat-${shared}-${i}` }), "200");
      out.push(performance.now() - started);
    }
    return median(out);
  };
  const local = await time(false);
  const shared = await time(true);
  t.diagnostic(`median request through the Worker: local state ${local.toFixed(2)} ms, shared state ${shared.toFixed(2)} ms (+${(shared - local).toFixed(2)} ms: admit + take round trips to the Durable Object, no lease)`);
  assert.ok(shared < local + 50, "the shared path adds milliseconds, not more");
});
