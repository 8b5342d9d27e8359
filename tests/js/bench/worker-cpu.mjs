// Benchmark: CPU time per request in a Worker (workerd, Miniflare), the README's "a fraction of a
// millisecond for the pipeline itself".
//   node tests/js/bench/worker-cpu.mjs [--requests 2000] [--rounds 5] [--quick]
//   (or: import { run } from "./worker-cpu.mjs"; quick mode, --quick or BENCH_QUICK=1: 500 x 3)
// One Worker (bundled as the tests bundle it) answers `/client` with `client.chat()` (a client built on
// the first request, all default policies) and `/plain` with `fetch` + `response.json()` of the same
// completion from the mock LLM, which runs in this Node process (its CPU is not counted). The CPU time
// is the workerd process's own (user + system, /proc/<pid>/stat, 10 ms ticks) across a phase of
// `requests` requests, 16 in flight; phases alternate, `rounds` of each, medians. Everything that is
// not the handler (Miniflare's dispatch, HTTP parsing, the event loop) is in both phases, so the
// difference is what the package costs per request. Linux only (/proc).
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startWorker } from "../workerd/harness.mjs";
import { startMockLlm } from "../../../www/mock-llm.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const TICK_MS = 10; // USER_HZ = 100 on Linux

/** The pids of workerd processes started by this process (Miniflare's child). */
function workerdPids() {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (stat.includes("(workerd)") && Number(fields[1]) === process.pid) pids.push(Number(entry));
    } catch {} // gone meanwhile
  }
  return pids;
}

/** CPU time (ms) the processes `pids` used so far. */
function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
  }
  return ticks * TICK_MS;
}

export async function run({ requests, rounds, quick = process.env.BENCH_QUICK === "1" } = {}) {
  requests ??= quick ? 500 : 2000;
  rounds ??= quick ? 3 : 5;
  const mock = await startMockLlm();
  const mf = await startWorker(join(here, "worker-cpu-worker.mjs"), "worker-cpu", { bindings: { MOCK_URL: mock.url } });
  try {
    const pids = workerdPids();
    if (pids.length === 0) throw new Error("no workerd process found among this process's children");
    const phase = async (path, count) => {
      let next = 0;
      const before = cpuMs(pids);
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (next < count) {
          next += 1;
          const response = await mf.dispatchFetch(`http://worker${path}`);
          if (response.status !== 200) throw new Error(`${path}: ${response.status} ${await response.text()}`);
          await response.arrayBuffer();
        }
      }));
      return (cpuMs(pids) - before) / count;
    };
    await phase("/client", 200); // warm-up: the client, the JIT, the connections
    await phase("/plain", 200);
    const samples = { client: [], plain: [] };
    for (let round = 0; round < rounds; round++) {
      samples.client.push(await phase("/client", requests));
      samples.plain.push(await phase("/plain", requests));
    }
    const client = median(samples.client);
    const plain = median(samples.plain);
    return { requests, rounds, clientMs: client, plainMs: plain, packageMs: client - plain, samples };
  } finally {
    await mf.dispose();
    await mock.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const r = await run({ requests: arg("requests"), rounds: arg("rounds"), quick: process.argv.includes("--quick") || undefined });
  console.log(`CPU time per request in workerd (whole process, median of ${r.rounds} phases of ${r.requests} requests)`);
  console.log(`  client.chat()           ${r.clientMs.toFixed(3)} ms`);
  console.log(`  fetch + json() (plain)  ${r.plainMs.toFixed(3)} ms`);
  console.log(`  the package's cost      ${r.packageMs.toFixed(3)} ms`);
}
