// The built package in workerd (Miniflare): the Worker is bundled the way wrangler bundles (esbuild
// with the "workerd" export condition, the .wasm kept as a separate CompiledWasm module).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWorker } from "./workerd/harness.mjs";
import { startMockLlm } from "../../www/mock-llm.mjs";
import { scenarios } from "./scenarios.mjs";

const here = dirname(fileURLToPath(import.meta.url));

let mock;
let mf;
before(async () => {
  mock = await startMockLlm();
  mf = await startWorker(join(here, "workerd/worker.mjs"), "worker", { kvNamespaces: ["LLM_CACHE"] });
});
after(async () => {
  await mf?.dispose();
  await mock?.close();
});

for (const name of Object.keys(scenarios)) {
  test(`workerd: ${name}`, async () => {
    const url = new URL("http://worker/");
    url.searchParams.set("scenario", name);
    url.searchParams.set("mock", mock.url);
    const response = await mf.dispatchFetch(url);
    const text = await response.text();
    assert.equal(response.status, 200, text);
  });
}

for (const [store, path] of [["Workers KV", "/kv-cache"], ["the Cache API (cacheApiStore)", "/cache-api-cache"]]) {
  test(`workerd: a cache in ${store} answers a second request (another client) without the upstream`, async () => {
    const url = new URL(`http://worker${path}`);
    url.searchParams.set("mock", mock.url);
    url.searchParams.set("body", JSON.stringify({ model: "m", temperature: 0, messages: [{ role: "user", content: `${path} ${Date.now()}` }] }));
    const first = await mf.dispatchFetch(url);
    const firstText = await first.text();
    assert.equal(first.headers.get("x-cache"), "MISS", firstText);
    const upstream = mock.stats().total;
    let second;
    for (let i = 0; i < 20; i++) {
      second = await mf.dispatchFetch(url);
      if (second.headers.get("x-cache") === "HIT") break;
      await second.text();
      await new Promise((r) => setTimeout(r, 50)); // the store's write runs in waitUntil
    }
    assert.equal(second.headers.get("x-cache"), "HIT");
    assert.equal(await second.text(), firstText);
    assert.equal(mock.stats().total, upstream, `answered from ${store}`);
  });
}
