// Benchmark: embedding 1,000 texts of which 90% are cached (memory store) versus no cache, in Node
// against the mock LLM: median wall time per call and the bytes that crossed to and from the upstream.
// (The mock's vectors are sparse, mostly zeros, so they say nothing of base64 versus JSON numbers.)
// Then the same 90%-cached call in headless Chromium with the IndexedDB store (lookups and writes of
// one call all started at once).
//   node tests/js/bench/embed-cache.mjs [--runs 7] [--dims 1536] [--no-browser]
//   (or: import { run, runChromium } from "./embed-cache.mjs")
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { ResilientClient } from "sturdy-llm";
import { startMockLlm } from "../../../www/mock-llm.mjs";
import { startStaticServer } from "../../../www/static-server.mjs";

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const arg = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};

/** Counts the bytes of every request body sent and every response body received through `fetch`. */
function countingFetch() {
  const original = globalThis.fetch;
  const bytes = { sent: 0, received: 0 };
  globalThis.fetch = async (input, init) => {
    if (typeof init?.body === "string") bytes.sent += Buffer.byteLength(init.body);
    else if (input instanceof Request) bytes.sent += (await input.clone().arrayBuffer()).byteLength;
    const response = await original(input, init);
    bytes.received += (await response.clone().arrayBuffer()).byteLength;
    return response;
  };
  return { bytes, restore: () => (globalThis.fetch = original) };
}

export async function run({ runs = 7, dims = 1536 } = {}) {
  const mock = await startMockLlm();
  const counter = countingFetch();
  const text = (run, i) => `Section ${i} of run ${run}: the quick brown fox ${i % 97} jumps over the lazy dog ${i * 31} times, then rests.`;
  const texts = (run, fresh) => Array.from({ length: 1000 }, (_, i) => (i < 900 ? text("kept", i) : text(fresh, i)));
  const target = () => ({ provider: "openai", baseUrl: `${mock.url}/v1`, apiKey: "sk-bench", model: "m", embeddingModel: "e" });
  const measure = async (client, inputs) => {
    const times = [];
    const before = { ...counter.bytes };
    let result;
    for (let r = 0; r < runs; r++) {
      const started = performance.now();
      result = await client.embed({ input: inputs(r), dimensions: dims });
      times.push(performance.now() - started);
    }
    const per = (key) => Math.round((counter.bytes[key] - before[key]) / runs);
    return { ms: median(times), sent: per("sent"), received: per("received"), cached: result.cached, tokens: result.usage.inputTokens };
  };
  try {
    const plain = new ResilientClient({ retry: false, targets: [target()] });
    await plain.embed({ input: texts("warm", "warm"), dimensions: dims }); // warm the code paths
    const noCache = await measure(plain, (r) => texts(r, `nocache-${r}`));
    const cachedClient = new ResilientClient({ cache: { maxEntries: 100_000, maxBytes: 256 << 20 }, retry: false, targets: [target()] });
    await cachedClient.embed({ input: texts("warm", "warm"), dimensions: dims }); // the 900 kept texts are cached
    const cached = await measure(cachedClient, (r) => texts(r, `cached-${r}`));
    return { runs, dims, noCache, cached };
  } finally {
    counter.restore();
    await mock.close();
  }
}

/** Median ms of embedding 1,000 texts (900 cached in IndexedDB, 100 new) in Chromium, and with no cache. */
export async function runChromium({ runs = 7, dims = 1536 } = {}) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
  const mock = await startMockLlm();
  const site = await startStaticServer({ root, dirs: { "tests/js": [".html", ".mjs", ".js", ".wasm"] } });
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${site.url}/tests/js/browser/index.html`);
    const result = await page.evaluate(
      async ({ mockUrl, runs, dims }) => {
        const { ResilientClient } = await import("sturdy-llm");
        const target = { provider: "openai", baseUrl: `${mockUrl}/v1`, apiKey: "sk-bench", model: "m", embeddingModel: "e" };
        const texts = (fresh) => Array.from({ length: 1000 }, (_, i) => `Section ${i} ${i < 900 ? "kept" : fresh}: the quick brown fox ${i}.`);
        const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
        const time = async (client, tag) => {
          const out = [];
          for (let r = 0; r < runs; r++) {
            const t = performance.now();
            const result = await client.embed({ input: texts(`${tag}-${r}`), dimensions: dims });
            out.push(performance.now() - t);
            if (tag === "idb" && result.cached !== 900) throw new Error(`cached ${result.cached}`);
          }
          return median(out);
        };
        const idb = new ResilientClient({ cache: { store: "indexeddb", namespace: `embed-bench-${Date.now()}` }, retry: false, targets: [target] });
        await idb.embed({ input: texts("warm"), dimensions: dims });
        const plain = new ResilientClient({ retry: false, targets: [target] });
        const hits = [];
        for (let r = 0; r < runs; r++) {
          const t = performance.now();
          await idb.embed({ input: texts("warm"), dimensions: dims });
          hits.push(performance.now() - t);
        }
        return { idbMs: await time(idb, "idb"), noCacheMs: await time(plain, "plain"), allCachedMs: median(hits) };
      },
      { mockUrl: mock.url, runs, dims },
    );
    return { version: browser.version(), ...result };
  } finally {
    await browser.close();
    await site.close();
    await mock.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { runs, dims, noCache, cached } = await run({ runs: arg("runs", 7), dims: arg("dims", 1536) });
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  console.log(`embed 1,000 texts (${dims} dims), median of ${runs} calls, mock LLM on loopback:`);
  console.log("| case | time | sent upstream | received | inputs cached | tokens billed |");
  console.log("|---|---|---|---|---|---|");
  for (const [name, row] of [["no cache", noCache], ["90% cached (memory store)", cached]]) {
    console.log(`| ${name} | ${row.ms.toFixed(1)} ms | ${kb(row.sent)} | ${kb(row.received)} | ${row.cached} | ${row.tokens} |`);
  }
  console.log(`90% cached vs no cache: ${(noCache.ms / cached.ms).toFixed(1)}x faster, ${(noCache.received / Math.max(cached.received, 1)).toFixed(1)}x fewer bytes received`);
  if (!process.argv.includes("--no-browser")) {
    const c = await runChromium({ runs: arg("runs", 7), dims: arg("dims", 1536) });
    console.log(`Chromium ${c.version}, IndexedDB store: no cache ${c.noCacheMs.toFixed(1)} ms, 90% cached ${c.idbMs.toFixed(1)} ms, all 1,000 cached ${c.allCachedMs.toFixed(1)} ms`);
  }
}
