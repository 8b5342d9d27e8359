// Benchmark: requests/s of client.fetch with every policy on (retry, breaker, rate limit, dedupe,
// timeouts; no cache) versus plain fetch, against the same loopback server in the same run.
//   node tests/js/bench/fetch-overhead.mjs [--requests 4000] [--concurrency 32] [--rounds 5]
// Rounds alternate plain / resilient so drift in the machine's speed hits both; the medians are compared.
import { Worker } from "node:worker_threads";
import { ResilientClient } from "resilient-llm";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const REQUESTS = arg("requests", 4000);
const CONCURRENCY = arg("concurrency", 32);
const ROUNDS = arg("rounds", 5);

// The upstream runs in its own thread so that serving does not compete with the client under test.
const SERVER = `
  import { createServer } from "node:http";
  import { parentPort } from "node:worker_threads";
  const answer = JSON.stringify({ choices: [{ message: { role: "assistant", content: "ok" } }], usage: { prompt_tokens: 9, completion_tokens: 1 } });
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(answer));
  });
  server.keepAliveTimeout = 60000;
  server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));
`;

async function startServer() {
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(SERVER)}`));
  const port = await new Promise((resolve) => worker.once("message", resolve));
  return { url: `http://127.0.0.1:${port}/v1/chat/completions`, stop: () => worker.terminate() };
}

async function measure(fetchImpl, url) {
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < REQUESTS) {
      const i = next++;
      const body = JSON.stringify({ model: "m", temperature: 0.7, messages: [{ role: "user", content: `question ${i}` }] });
      const response = await fetchImpl(url, { method: "POST", headers: { "content-type": "application/json" }, body });
      await response.json();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return REQUESTS / ((performance.now() - started) / 1000);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const server = await startServer();
const client = new ResilientClient({
  timeout: { attemptMs: 10_000, totalMs: 30_000 },
  retry: { maxRetries: 2 },
  breaker: { failureThreshold: 5 },
  rateLimit: { requestsPerMinute: 10_000_000, burst: 100_000 },
  dedupe: true,
});
const plainFetch = (input, init) => fetch(input, init);
// What any fetch with a cancellable timeout costs, in plain JS: the floor for a client with timeouts.
const timeoutFetch = async (input, init) => {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 10_000);
  try {
    return await fetch(input, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
};

await measure(plainFetch, server.url); // warm up connections and JIT
await measure(client.fetcher, server.url);
const plain = [];
const withTimeout = [];
const resilient = [];
for (let round = 0; round < ROUNDS; round++) {
  plain.push(await measure(plainFetch, server.url));
  withTimeout.push(await measure(timeoutFetch, server.url));
  resilient.push(await measure(client.fetcher, server.url));
}
await server.stop();

const p = median(plain);
const t = median(withTimeout);
const r = median(resilient);
console.log(`fetch overhead: ${REQUESTS} POSTs x ${ROUNDS} rounds, concurrency ${CONCURRENCY}, loopback`);
console.log(`  plain fetch           ${p.toFixed(0).padStart(7)} req/s (median)`);
console.log(`  fetch + AbortController timeout (plain JS) ${t.toFixed(0).padStart(7)} req/s, ratio ${(t / p).toFixed(3)}`);
console.log(`  ResilientClient.fetch ${r.toFixed(0).padStart(7)} req/s (median; retry, breaker, rate limit, dedupe, timeouts)`);
console.log(`  ratio                 ${(r / p).toFixed(3)}  (target >= 0.95)`);
const stats = client.stats();
if (stats.requests !== REQUESTS * (ROUNDS + 1) || stats.failures !== 0) {
  console.error("unexpected client stats", stats);
  process.exit(1);
}
