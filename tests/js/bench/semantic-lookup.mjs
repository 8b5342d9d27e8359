// Benchmark: the semantic cache's lookup cost (one exact cosine scan) at 1,000 and 10,000 entries.
//   node tests/js/bench/semantic-lookup.mjs [--quick] [--no-wasm]
//   (or: import { run } from "./semantic-lookup.mjs"; quick mode, --quick or BENCH_QUICK=1: fewer lookups)
// Two measures:
// - native: benches/semantic_lookup.rs (cargo bench), the index alone, at 384, 1,536 and 3,072 dimensions;
// - wasm: the package in Node, a chat() call answered from the semantic cache once the target's breaker is open
//   (no upstream call: the question's vector comes from the embedding cache), with 1,536-dimension vectors,
//   at 1, 1,000 and 10,000 entries; the lookup cost is the difference to 1 entry.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { Worker } from "node:worker_threads";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ResilientClient } from "sturdy-llm";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const DIMS = 1536;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// The upstream in its own thread: /v1/embeddings answers each text with a pseudo-random vector seeded by the
// text ("probe <i>" gets the vector of "q<i>"); /v1/chat/completions answers until told to fail (503).
const SERVER = `
  import { createServer } from "node:http";
  import { parentPort } from "node:worker_threads";
  let down = false;
  parentPort.on("message", (m) => { down = m === "down"; parentPort.postMessage("ok"); });
  const vector = (text) => {
    let h = 2166136261;
    for (const c of text.replace(/^probe /, "q")) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
    const v = new Float32Array(${DIMS});
    for (let i = 0; i < v.length; i++) { h ^= h << 13; h ^= h >>> 17; h ^= h << 5; v[i] = (h >>> 8) / 8388608 - 1; }
    return v;
  };
  const answer = JSON.stringify({ choices: [{ message: { role: "assistant", content: "An answer worth keeping." }, finish_reason: "stop" }],
    usage: { prompt_tokens: 4, completion_tokens: 5 } });
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      if (req.url.endsWith("/embeddings")) {
        const { input } = JSON.parse(body);
        const data = [input].flat().map((text, index) => ({ object: "embedding", index,
          embedding: Buffer.from(vector(text).buffer).toString("base64") }));
        return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data, usage: { prompt_tokens: 1 } }));
      }
      if (down) return res.writeHead(503, { "content-type": "application/json" }).end('{"error":{"message":"down"}}');
      res.writeHead(200, { "content-type": "application/json" }).end(answer);
    });
  });
  server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));
`;

/** Median ms of a chat() answered from the semantic cache holding `entries` entries. */
async function wasmLookup(entries, lookups) {
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(SERVER)}`));
  const port = await new Promise((r) => worker.once("message", r));
  const tell = (m) => new Promise((r) => { worker.once("message", r); worker.postMessage(m); });
  const client = new ResilientClient({
    retry: false,
    breaker: { failureThreshold: 1, resetTimeoutMs: 3_600_000 },
    targets: [{ provider: "openai", baseUrl: `http://127.0.0.1:${port}/v1`, model: "m", embeddingModel: "e" }],
    cache: { maxEntries: entries + 100, maxBytes: 1 << 30,
      semantic: { threshold: 0.99, maxEntries: entries, maxBytes: 1 << 30 } },
  });
  const ask = (content) => client.chat({ messages: [{ role: "user", content }] });
  for (let i = 0; i < entries; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, entries - i) }, (_, j) => ask(`q${i + j}`)));
  }
  await tell("down");
  const probe = `probe ${Math.floor(entries / 2)}`;
  // The first failure opens the breaker (the probe's vector is embedded meanwhile and cached).
  for (let i = 0; i < 5; i++) await ask(probe).catch(() => {});
  const times = [];
  for (let i = 0; i < lookups; i++) {
    const started = performance.now();
    const result = await ask(probe);
    times.push(performance.now() - started);
    if (result.cached !== "semantic") throw new Error(`expected a semantic answer, got ${JSON.stringify(result)}`);
  }
  client.free();
  await worker.terminate();
  return median(times);
}

/** { native: rows of { entries, dims, medianUs, minUs, hit }, wasm?: { dims, rows: [{ entries, callMs, lookupMs }] } }. */
export async function run({ quick = process.env.BENCH_QUICK === "1", wasm = true } = {}) {
  const args = ["bench", "--quiet", "--bench", "semantic_lookup", "--", "--json", ...(quick ? ["--quick"] : [])];
  const out = execFileSync("cargo", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const native = JSON.parse(out.trim().split("\n").pop());
  if (!wasm) return { native };
  const lookups = quick ? 30 : 100;
  const base = await wasmLookup(1, lookups);
  const rows = [];
  for (const entries of [1_000, 10_000]) {
    const callMs = await wasmLookup(entries, lookups);
    rows.push({ entries, callMs, lookupMs: callMs - base });
  }
  return { native, wasm: { dims: DIMS, baseMs: base, rows } };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await run({ quick: process.argv.includes("--quick") || undefined, wasm: !process.argv.includes("--no-wasm") });
  console.log(JSON.stringify(result, null, 2));
}
