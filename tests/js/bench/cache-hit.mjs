// Benchmark: latency of a memory-cache hit through ResilientClient.fetch versus a loopback fetch of the
// same answer and versus the floor any hit returning a Response pays, `new Response(bytes, { headers })`
// + `.text()` with the hit's own body and headers (target: hit <= 1.4x the floor), in the same run;
// then an IndexedDB hit in headless Chromium.
//   node tests/js/bench/cache-hit.mjs [--calls 2000] [--no-browser] [--quick]
//   (or: import { run } from "./cache-hit.mjs"; quick mode, --quick or BENCH_QUICK=1: 500 calls)
import { Worker } from "node:worker_threads";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { ResilientClient } from "sturdy-llm";
import { startMockLlm } from "../../../www/mock-llm.mjs";
import { startStaticServer } from "../../../www/static-server.mjs";

const body = JSON.stringify({ model: "m", temperature: 0, messages: [{ role: "user", content: "benchmark me" }] });
const init = { method: "POST", headers: { "content-type": "application/json" }, body };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function latencies(call, CALLS) {
  // Warm up until both sides run optimised code (the hit path settles after about a thousand calls).
  for (let i = 0; i < 1000; i++) await call();
  const out = [];
  for (let i = 0; i < CALLS; i++) {
    const started = performance.now();
    await call();
    out.push(performance.now() - started);
  }
  return median(out);
}

// The upstream in its own thread, answering like the mock (same JSON), so serving costs no client time.
const SERVER = `
  import { createServer } from "node:http";
  import { parentPort } from "node:worker_threads";
  const answer = ${JSON.stringify(JSON.stringify({ choices: [{ message: { role: "assistant", content: "You said: benchmark me. ".repeat(8) } }], usage: { prompt_tokens: 4, completion_tokens: 40 } }))};
  const server = createServer((req, res) => { req.resume(); req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(answer)); });
  server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));
`;
/** Median latencies (ms) of a loopback fetch and a memory-cache hit in Node, then of both in Chromium. */
export async function run({ calls, browser: inBrowser = true, quick = process.env.BENCH_QUICK === "1" } = {}) {
  const CALLS = calls ?? (quick ? 500 : 2000);
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(SERVER)}`));
  const url = `http://127.0.0.1:${await new Promise((r) => worker.once("message", r))}/v1/chat/completions`;

  const client = new ResilientClient({ cache: true });
  await (await client.fetch(url, init)).text();
  await new Promise((r) => setTimeout(r, 50)); // the entry is stored in the background
  const loopback = await latencies(async () => (await fetch(url, init)).text(), CALLS);
  const hit = await latencies(async () => {
    const response = await client.fetch(url, init);
    if (response.headers.get("x-cache") !== "HIT") throw new Error("expected a cache hit");
    return response.text();
  }, CALLS);
  // The floor: a Response of the same bytes and headers as a hit, and its body read.
  const sample = await client.fetch(url, init);
  const headers = [...sample.headers];
  const bytes = new Uint8Array(await sample.arrayBuffer());
  const floor = await latencies(async () => new Response(bytes.slice(), { status: 200, headers }).text(), CALLS);
  await worker.terminate();
  const node = { calls: CALLS, loopbackMs: loopback, hitMs: hit, ratio: loopback / hit, floorMs: floor, ofFloor: hit / floor };
  if (!inBrowser) return { node };

  // IndexedDB in Chromium: the same call answered from the browser's IndexedDB store.
  const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
  const mock = await startMockLlm();
  const site = await startStaticServer({ root, dirs: { "tests/js": [".html", ".mjs", ".js", ".wasm"] } });
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"],
  });
  const page = await browser.newPage();
  await page.goto(`${site.url}/tests/js/browser/index.html`);
  const browserResult = await page.evaluate(
    async ({ mockUrl, body, calls }) => {
      const { ResilientClient } = await import("sturdy-llm");
      const client = new ResilientClient({ cache: { store: "indexeddb", namespace: `bench-${Date.now()}` } });
      const memory = new ResilientClient({ cache: true });
      const init = { method: "POST", body };
      const url = `${mockUrl}/v1/chat/completions`;
      const stored = new Promise((resolve) => client.on("cache", (e) => e.result === "store" && resolve()));
      await (await client.fetch(url, init)).text();
      await stored;
      await (await memory.fetch(url, init)).text();
      const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      const time = async (call) => {
        const out = [];
        for (let i = 0; i < calls; i++) {
          const t = performance.now();
          await call();
          out.push(performance.now() - t);
        }
        return median(out);
      };
      const idb = await time(async () => (await client.fetch(url, init)).text());
      const loopback = await time(async () => (await fetch(url, init)).text());
      return { idb, loopback };
    },
    { mockUrl: mock.url, body, calls: Math.min(CALLS, 300) },
  );
  const version = browser.version();
  await browser.close();
  await site.close();
  await mock.close();
  const chromiumResult = { version, calls: Math.min(CALLS, 300), loopbackMs: browserResult.loopback, idbMs: browserResult.idb,
    ratio: browserResult.loopback / browserResult.idb };
  return { node, chromium: chromiumResult };
}

function print({ node, chromium: c }) {
  console.log(`cache hit latency (median of ${node.calls} sequential calls, body read):`);
  console.log(`  loopback fetch          ${(node.loopbackMs * 1000).toFixed(0).padStart(6)} µs`);
  console.log(`  memory cache hit        ${(node.hitMs * 1000).toFixed(0).padStart(6)} µs   ${node.ratio.toFixed(1)}x faster`);
  console.log(`  floor: new Response(bytes, { headers }).text() ${(node.floorMs * 1000).toFixed(1)} µs; hit ${node.ofFloor.toFixed(2)}x the floor (target <= 1.4x)`);
  if (!c) return;
  console.log(`Chromium ${c.version} (median of ${c.calls} calls):`);
  console.log(`  loopback fetch (mock)   ${(c.loopbackMs * 1000).toFixed(0).padStart(6)} µs`);
  console.log(`  IndexedDB cache hit     ${(c.idbMs * 1000).toFixed(0).padStart(6)} µs   ${c.ratio.toFixed(1)}x faster`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf("--calls");
  print(await run({ calls: i > 0 ? Number(process.argv[i + 1]) : undefined, browser: !process.argv.includes("--no-browser"),
    quick: process.argv.includes("--quick") || undefined }));
}
