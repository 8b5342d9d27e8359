// A long-lived Worker's memory plateaus: one isolate, one client, batches of mixed requests (cache
// hits and misses, aborts, timeouts, cancelled streams, chats). The wasm memory is a high-water mark
// (it never shrinks), so after a warm-up in which the cache fills to its bound it must stop growing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWorker } from "./workerd/harness.mjs";
import { startMockLlm } from "../../www/mock-llm.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const BATCH = 600;
const BATCHES = 8;
let mock;
let mf;

before(async () => {
  mock = await startMockLlm();
  mf = await startWorker(join(here, "workerd/leak-worker.mjs"), "leak-worker");
});
after(async () => {
  await mf?.dispose();
  await mock?.close();
});

test(`workerd: a long-lived Worker's wasm memory plateaus over ${BATCH * BATCHES} mixed requests`, async (t) => {
  const samples = [];
  const outcomes = {};
  for (let batch = 0; batch < BATCHES; batch++) {
    const url = new URL("http://worker/run");
    url.searchParams.set("mock", mock.url);
    url.searchParams.set("start", String(batch * BATCH));
    url.searchParams.set("count", String(BATCH));
    const { stats, outcomes: seen } = await (await mf.dispatchFetch(url)).json();
    samples.push({ requests: (batch + 1) * BATCH, wasmBytes: stats.memory.wasmBytes, entries: stats.cache.entries });
    for (const [kind, counts] of Object.entries(seen)) {
      for (const [outcome, n] of Object.entries(counts)) (outcomes[kind] ??= {})[outcome] = (outcomes[kind][outcome] ?? 0) + n;
    }
  }
  t.diagnostic(`outcomes: ${JSON.stringify(outcomes)}`);
  // Each kind ends as it should (a mix decayed into instant errors would plateau too): the 50 cached
  // prompts miss once each, then hit.
  const each = BATCH * BATCHES / 6;
  assert.deepEqual(outcomes, {
    cached: { "HTTP 200 MISS": 50, "HTTP 200 HIT": each - 50 },
    sampled: { "HTTP 200": each },
    aborted: { "AbortError/20": each },
    timeout: { "TimeoutError/TIMEOUT": each },
    "events-break": { "broke off": each },
    chat: { ok: each },
  });
  t.diagnostic(samples.map((s) => `${s.requests} requests: wasm ${(s.wasmBytes / 1048576).toFixed(2)} MB, cache ${s.entries}`).join("; "));
  const warm = samples[2].wasmBytes;
  const last = samples.at(-1).wasmBytes;
  assert.ok(samples.every((s) => s.entries <= 100), "the cache stays bounded");
  assert.ok(last <= warm + 2 * 65536, `wasm memory grew from ${warm} to ${last} bytes after the warm-up`);
});
