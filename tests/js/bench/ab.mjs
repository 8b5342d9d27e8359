// A/B of two or more builds of the package in one Node process, interleaved: what one change buys,
// measured with the machine's drift hitting every side alike (tables of separate runs move by more
// than most changes do).
//   node tests/js/bench/ab.mjs hit   DIR_A DIR_B ...   memory-cache hits, and the Response floor
//   node tests/js/bench/ab.mjs fetch DIR_A DIR_B ...   client.fetch, all policies on, 32 in flight,
//                                                      and the fetch + AbortController floor
// Each DIR is a built package (a copy of pkg/ after pkg-template/build). Rounds alternate the sides;
// medians of the rounds after two warm-up rounds (ROUNDS, default 10 for hit and 5 for fetch).
import { Worker } from "node:worker_threads";
import { timeoutFetch } from "./fetch-overhead.mjs";

const [mode, ...dirs] = process.argv.slice(2);
if (!["hit", "fetch"].includes(mode) || dirs.length === 0) {
  console.error("usage: node tests/js/bench/ab.mjs hit|fetch DIR_A [DIR_B ...]");
  process.exit(2);
}
const packages = await Promise.all(dirs.map((dir) => import(new URL(`file://${dir.startsWith("/") ? "" : `${process.cwd()}/`}${dir}/entry-node.js`).href)));
const name = (i) => dirs[i].split("/").filter(Boolean).pop();
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

// The upstream in its own thread, so serving costs the measured process nothing.
const SERVER = `
  import { createServer } from "node:http"; import { parentPort } from "node:worker_threads";
  const answer = JSON.stringify({ choices: [{ message: { role: "assistant", content: "You said: benchmark me. ".repeat(8) } }], usage: { prompt_tokens: 4, completion_tokens: 40 } });
  const server = createServer((req, res) => { req.resume(); req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(answer)); });
  server.keepAliveTimeout = 60000; server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));`;
const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(SERVER)}`));
const url = `http://127.0.0.1:${await new Promise((r) => worker.once("message", r))}/v1/chat/completions`;
const post = (content) => ({ method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: "m", temperature: 0, messages: [{ role: "user", content }] }) });

/** [side name, one measurement: µs per call] */
async function sides() {
  if (mode === "hit") {
    const init = post("benchmark me");
    const clients = [];
    for (const { ResilientClient } of packages) {
      const client = new ResilientClient({ cache: true });
      await (await client.fetch(url, init)).text();
      clients.push(client);
    }
    await new Promise((r) => setTimeout(r, 50)); // stored in the background
    const sample = await clients[0].fetch(url, init);
    const headers = [...sample.headers];
    const bytes = new Uint8Array(await sample.arrayBuffer());
    const timed = (call) => async () => {
      const started = performance.now();
      for (let i = 0; i < 2000; i++) await call();
      return ((performance.now() - started) / 2000) * 1000;
    };
    return [
      ...clients.map((client, i) => [name(i), timed(async () => {
        const response = await client.fetch(url, init);
        if (response.headers.get("x-cache") !== "HIT") throw new Error("expected a cache hit");
        await response.text();
      })]),
      ["floor", timed(() => new Response(bytes.slice(), { status: 200, headers }).text())],
    ];
  }
  const timed = (send) => async () => {
    let next = 0;
    const started = performance.now();
    const lane = async () => {
      while (next < 3000) await (await send(url, post(`question ${next++}`))).json();
    };
    await Promise.all(Array.from({ length: 32 }, lane));
    return ((performance.now() - started) / 3000) * 1000;
  };
  const options = { timeout: { attemptMs: 10_000, totalMs: 30_000 }, retry: { maxRetries: 2 }, breaker: { failureThreshold: 5 },
    rateLimit: { requestsPerMinute: 10_000_000, burst: 100_000 }, dedupe: true };
  return [
    ["floor", timed(timeoutFetch)],
    ...packages.map(({ ResilientClient }, i) => [name(i), timed(new ResilientClient(options).fetcher)]),
  ];
}

const measured = await sides();
const samples = new Map(measured.map(([side]) => [side, []]));
const rounds = Number(process.env.ROUNDS ?? (mode === "hit" ? 10 : 5)) + 2;
for (let round = 0; round < rounds; round++) {
  for (const [side, measure] of measured) {
    const us = await measure();
    if (round >= 2) samples.get(side).push(us);
  }
}
const floor = median(samples.get("floor"));
for (const [side, xs] of samples) {
  const us = median(xs);
  const vs = mode === "hit" ? `${(us / floor).toFixed(2)}x the floor` : `${(floor / us).toFixed(3)} of the floor's rate`;
  console.log(`${side.padEnd(16)} ${us.toFixed(1).padStart(7)} µs per call   ${vs}`);
}
await worker.terminate();
