// A client built at module scope in workerd (every other Worker test builds it lazily): the script
// loads (construction sets no timer and draws no random number, which workerd forbids there), and
// the one client serves many requests, each using state another request made.
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
  // startWorker awaits mf.ready: it rejects if the module's top level did something forbidden.
  mf = await startWorker(join(here, "workerd/module-scope-worker.mjs"), "module-scope-worker", { bindings: { MOCK_URL: mock.url } });
});
after(async () => {
  await mf?.dispose();
  await mock?.close();
});

async function get(path, params = {}) {
  const url = new URL(`http://worker${path}`);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  const response = await mf.dispatchFetch(url);
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return body;
}

test("workerd, client at module scope: a chat, then the same chat from the cache in a later request", async () => {
  const prompt = `module scope cache ${Date.now()}`;
  const first = await get("/chat", { prompt });
  assert.equal(first.cached, false);
  assert.ok(first.text.startsWith(`You said: "${prompt}"`), first.text);
  const seen = mock.stats().total;
  let second;
  for (let i = 0; i < 20 && !second?.cached; i++) {
    if (i) await new Promise((r) => setTimeout(r, 50)); // the cache write runs in waitUntil
    second = await get("/chat", { prompt });
  }
  assert.equal(second.cached, true, "answered from the entry an earlier request stored");
  assert.equal(second.text, first.text);
  assert.equal(mock.stats().total, seen, "the upstream was not asked");
});

test("workerd, client at module scope: streams, jittered retries and rate-limit waits across requests", async () => {
  const streamed = await get("/stream", { prompt: "module scope stream" });
  assert.equal(streamed.text, streamed.result);
  assert.ok(streamed.text.startsWith('You said: "module scope stream"'));
  const retried = await get("/fetch", { fault: `status=503;times=2;key=module-${Date.now()}` });
  assert.equal(retried.status, 200, "two 503s retried with full jitter, then the answer");
  // burst 2 at 600 a minute: of four requests at once, the last two wait for the bucket (timers set
  // in other requests' contexts than the bucket was made in).
  const started = performance.now();
  const all = await Promise.all(Array.from({ length: 4 }, (_, i) => get("/fetch", { prompt: `bucket ${i}` })));
  assert.deepEqual(all.map((r) => r.status), [200, 200, 200, 200]);
  assert.ok(performance.now() - started >= 100, "the bucket made the later requests wait (100 ms a token)");
  const stats = await get("/stats");
  assert.equal(stats.retries, 2);
});

// A client that outlives requests must not make one request wait on another's call: workerd cancels
// a request whose promise another request's I/O resolves ("a promise was resolved or rejected from a
// different request context") as hung. So in workerd `dedupe` is off unless the options turn it on;
// each request makes its own call (the cache still answers the ones that come after).
test("workerd, client at module scope: identical calls from two requests at once each get their answer", async () => {
  const prompt = `module scope shared ${Date.now()}`;
  const before = mock.stats().total;
  const [a, b] = await Promise.all([get("/chat", { prompt }), get("/chat", { prompt })]);
  assert.equal(a.text, b.text);
  assert.ok(a.text.startsWith(`You said: "${prompt}"`), a.text);
  assert.equal(mock.stats().total - before, 2, "one upstream call per request");
});
