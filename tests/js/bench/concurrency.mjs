// Benchmark: 10,000 requests in flight at once. 10,000 client.fetch calls are started together against a
// loopback server that answers each after ~200 ms; total wall time (first call to last body read) and the
// JS heap held while all of them are in flight, versus plain fetch in the same run.
//   node --expose-gc tests/js/bench/concurrency.mjs [--requests 10000] [--rounds 3] [--quick]
//   (or: import { run } from "./concurrency.mjs"; quick mode, --quick or BENCH_QUICK=1: 1 round)
// The client: new ResilientClient({ rateLimit: false, dedupe: false }), every URL distinct, so all the
// calls really go out (the breaker, retry and timeouts stay on, as by default).
// The server runs in a child process, not a worker thread: 10,000 client sockets plus 10,000 server
// sockets in one process would exceed this machine's open-file limit (20,000, hard). It tells us when it
// has received every request of a run, the moment all of them are in flight.
// Connections: undici (Node's fetch) keeps up to one connection per request in flight; a first,
// unmeasured plain run opens the 10,000 keep-alive connections that every later run reuses, so the runs
// measure request handling, not a storm of TCP connects (the accept queue is 4,096 here).
// Wall time: alternating plain / client rounds, medians. Heap: separate runs, one per side, with a full
// GC before the calls and another at the moment the server holds all of them; the difference of
// process.memoryUsage().heapUsed is the live JS heap per 10,000 in-flight calls. The wasm linear memory is
// not in the JS heap; it is reported beside (it only grows: its size after construction and at the end).
import { spawn } from "node:child_process";
import { pathToFileURL } from "node:url";
import { ResilientClient } from "sturdy-llm";

const SERVER = `
  import { createServer } from "node:http";
  const answer = JSON.stringify({ choices: [{ message: { role: "assistant", content: "ok" } }], usage: { prompt_tokens: 9, completion_tokens: 1 } });
  let expected = Infinity;
  let received = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      if (++received === expected) process.send({ allInFlight: true });
      setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end(answer), 200);
    });
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.maxRequestsPerSocket = 0;
  process.on("message", (m) => {
    if (m.expect) {
      expected = m.expect;
      received = 0;
      process.send({ ready: true });
    }
  });
  server.listen({ port: 0, host: "127.0.0.1", backlog: 65535 }, () => process.send({ port: server.address().port }));
`;

function startServer() {
  const child = spawn(process.execPath, ["--input-type=module", "-e", SERVER], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const next = (key) =>
    new Promise((resolve, reject) => {
      const onMessage = (m) => {
        if (key in m) {
          child.off("message", onMessage);
          child.off("exit", onExit);
          resolve(m);
        }
      };
      const onExit = (code) => reject(new Error(`server exited with ${code}`));
      child.on("message", onMessage);
      child.once("exit", onExit);
    });
  return next("port").then(({ port }) => ({
    url: `http://127.0.0.1:${port}/v1/chat/completions`,
    async expect(count) {
      const ready = next("ready");
      child.send({ expect: count });
      await ready;
      return { allInFlight: next("allInFlight") }; // wrapped: an async function would wait for it
    },
    stop: () => new Promise((resolve) => {
      child.once("exit", resolve);
      child.kill();
    }),
  }));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gc = () => globalThis.gc?.();
const body = JSON.stringify({ model: "m", temperature: 0.7, messages: [{ role: "user", content: "in flight" }] });
const init = { method: "POST", headers: { "content-type": "application/json" }, body };

// One run: `requests` calls started in one go; resolves with the wall time and, when asked, the heap delta.
async function once(server, fetchImpl, requests, { heap = false } = {}) {
  const { allInFlight } = await server.expect(requests);
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  let inFlightHeap;
  const started = performance.now();
  const calls = [];
  for (let i = 0; i < requests; i++) {
    calls.push(fetchImpl(`${server.url}?i=${i}`, init).then(async (response) => {
      if (response.status !== 200) throw new Error(`status ${response.status}`);
      await response.text();
    }));
  }
  if (heap) {
    await allInFlight;
    gc();
    inFlightHeap = process.memoryUsage().heapUsed;
  }
  await Promise.all(calls);
  const ms = performance.now() - started;
  return { ms, heapDelta: heap ? inFlightHeap - before : undefined };
}

/** Wall time and in-flight JS heap of `requests` concurrent calls, plain fetch versus client.fetch. */
export async function run({ requests = 10_000, rounds, quick = process.env.BENCH_QUICK === "1" } = {}) {
  const ROUNDS = rounds ?? (quick ? 1 : 3);
  const server = await startServer();
  const client = new ResilientClient({ rateLimit: false, dedupe: false });
  const memory = await wasmMemory();
  const wasmBefore = memory.buffer.byteLength;
  const plainFetch = (input, init) => fetch(input, init);
  try {
    await once(server, plainFetch, requests); // opens the keep-alive connections, warms the JIT
    await once(server, client.fetcher, requests);
    const plain = [];
    const resilient = [];
    for (let round = 0; round < ROUNDS; round++) {
      plain.push((await once(server, plainFetch, requests)).ms);
      resilient.push((await once(server, client.fetcher, requests)).ms);
    }
    const plainHeap = (await once(server, plainFetch, requests, { heap: true })).heapDelta;
    const resilientHeap = (await once(server, client.fetcher, requests, { heap: true })).heapDelta;
    const stats = client.stats();
    const expected = requests * (ROUNDS + 2);
    if (stats.requests !== expected || stats.successes !== expected) {
      throw new Error(`unexpected client stats: ${JSON.stringify({ requests: stats.requests, successes: stats.successes, failures: stats.failures })}`);
    }
    return {
      requests, rounds: ROUNDS, gc: typeof globalThis.gc === "function",
      plain: { ms: median(plain), heapDelta: plainHeap, samples: plain },
      resilient: { ms: median(resilient), heapDelta: resilientHeap, samples: resilient },
      ratio: median(plain) / median(resilient),
      wasmMemory: { before: wasmBefore, highWater: memory.buffer.byteLength },
    };
  } finally {
    await server.stop();
  }
}

// The package's wasm memory: the generated glue's initSync() returns the instance's exports once the entry
// has initialized it (the same module instance, reached by file URL past the package's "exports" map).
async function wasmMemory() {
  const glue = new URL("./sturdy_llm.js", import.meta.resolve("sturdy-llm"));
  const { initSync } = await import(glue.href);
  return initSync().memory;
}

function print(r) {
  const f = (ms) => `${ms.toFixed(0).padStart(6)} ms`;
  const mb = (b) => `${(b / 1e6).toFixed(1).padStart(6)} MB`;
  console.log(`${r.requests.toLocaleString("en-US")} concurrent requests, server answers after 200 ms (median of ${r.rounds}; heap with all in flight${r.gc ? "" : ", no --expose-gc: heap figures include garbage"})`);
  console.log(`  plain fetch            ${f(r.plain.ms)}   heap +${mb(r.plain.heapDelta)}`);
  console.log(`  ResilientClient.fetch  ${f(r.resilient.ms)}   heap +${mb(r.resilient.heapDelta)}`);
  console.log(`  time ratio (plain / client) ${r.ratio.toFixed(3)}`);
  console.log(`  wasm linear memory: ${mb(r.wasmMemory.before)} after construction, high-water ${mb(r.wasmMemory.highWater)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  print(await run({ requests: arg("requests"), rounds: arg("rounds"), quick: process.argv.includes("--quick") || undefined }));
}
