// Benchmark: requests/s of client.fetch with every policy on (retry, breaker, rate limit, dedupe,
// timeouts; no cache) versus plain fetch, against the same loopback server in the same run.
//   node tests/js/bench/fetch-overhead.mjs [--requests 4000] [--concurrency 32] [--rounds 5] [--quick]
//   (or: import { run } from "./fetch-overhead.mjs"; quick mode, --quick or BENCH_QUICK=1: 1500 x 3 rounds)
// Rounds alternate plain / resilient so drift in the machine's speed hits both; the medians are compared.
import { Worker } from "node:worker_threads";
import { pathToFileURL } from "node:url";
import { ResilientClient } from "sturdy-llm";

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

async function measure(fetchImpl, url, REQUESTS, CONCURRENCY) {
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

/** What any fetch with a cancellable timeout costs, in plain JS: the floor for a client with timeouts. */
export async function timeoutFetch(input, init) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 10_000);
  try {
    return await fetch(input, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Requests/s (medians over rounds) of plain fetch, fetch + an AbortController timeout, and client.fetch. */
export async function run({ requests, concurrency = 32, rounds, quick = process.env.BENCH_QUICK === "1" } = {}) {
  const REQUESTS = requests ?? (quick ? 1500 : 4000);
  const ROUNDS = rounds ?? (quick ? 3 : 5);
  const CONCURRENCY = concurrency;
  const server = await startServer();
  const client = new ResilientClient({
    timeout: { attemptMs: 10_000, totalMs: 30_000 },
    retry: { maxRetries: 2 },
    breaker: { failureThreshold: 5 },
    rateLimit: { requestsPerMinute: 10_000_000, burst: 100_000 },
    dedupe: true,
  });
  const plainFetch = (input, init) => fetch(input, init);

  await measure(plainFetch, server.url, REQUESTS, CONCURRENCY); // warm up connections and JIT
  await measure(client.fetcher, server.url, REQUESTS, CONCURRENCY);
  const plain = [];
  const withTimeout = [];
  const resilient = [];
  for (let round = 0; round < ROUNDS; round++) {
    plain.push(await measure(plainFetch, server.url, REQUESTS, CONCURRENCY));
    withTimeout.push(await measure(timeoutFetch, server.url, REQUESTS, CONCURRENCY));
    resilient.push(await measure(client.fetcher, server.url, REQUESTS, CONCURRENCY));
  }
  await server.stop();

  const stats = client.stats();
  if (stats.requests !== REQUESTS * (ROUNDS + 1) || stats.failures !== 0) {
    throw new Error(`unexpected client stats: ${JSON.stringify(stats)}`);
  }
  const p = median(plain);
  const t = median(withTimeout);
  const r = median(resilient);
  return {
    requests: REQUESTS, rounds: ROUNDS, concurrency: CONCURRENCY,
    plain: p, timeout: t, resilient: r, timeoutRatio: t / p, ratio: r / p,
    samples: { plain, timeout: withTimeout, resilient },
  };
}

function print({ requests, rounds, concurrency, plain: p, timeout: t, resilient: r }) {
  console.log(`fetch overhead: ${requests} POSTs x ${rounds} rounds, concurrency ${concurrency}, loopback`);
  console.log(`  plain fetch           ${p.toFixed(0).padStart(7)} req/s (median)`);
  console.log(`  fetch + AbortController timeout (plain JS) ${t.toFixed(0).padStart(7)} req/s, ratio ${(t / p).toFixed(3)}`);
  console.log(`  ResilientClient.fetch ${r.toFixed(0).padStart(7)} req/s (median; retry, breaker, rate limit, dedupe, timeouts)`);
  console.log(`  ratio                 ${(r / p).toFixed(3)}  (target >= 0.95)`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  print(await run({ requests: arg("requests"), concurrency: arg("concurrency"), rounds: arg("rounds"),
    quick: process.argv.includes("--quick") || undefined }));
}
