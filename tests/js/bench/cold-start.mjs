// Benchmark: cold start, importing the package and constructing a client, in a fresh runtime each time.
//   node tests/js/bench/cold-start.mjs [--runs 15] [--workerd-runs 5] [--no-workerd] [--quick]
//   (or: import { run } from "./cold-start.mjs"; quick mode, --quick or BENCH_QUICK=1: 7 and 3 runs)
// Node: spawns `node --input-type=module -e ...` per run and takes the in-process performance.now() delta
// around `await import("sturdy-llm")` + `new ResilientClient()` (the entry reads the .wasm and compiles
// and instantiates it synchronously at import). Peers, in the same runs, interleaved: the same for
// `eventsource-parser` (+ createParser(), a small pure-JS module) and for an empty ESM file (the floor:
// what any import costs). Medians; the process wall time (spawn to exit) is reported beside.
// workerd (Miniflare): the Worker is bundled as tests/js/workerd.test.mjs bundles it (esbuild, "workerd"
// condition, the .wasm as a CompiledWasm module). Time from `new Miniflare(...)` to the body of the first
// response, for a Worker that imports the package and constructs a client per request, versus the same
// Worker without the package; medians of interleaved runs. The difference is the package's cold-start
// cost in workerd (module load, wasm compile and instantiate), on top of a workerd start of ~1 s.
import { spawn } from "node:child_process";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const testsJs = join(here, "..");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- Node ----

const timed = (importAndUse) => `
  const t0 = performance.now();
  ${importAndUse}
  const t1 = performance.now();
  process.stdout.write(JSON.stringify({ ms: t1 - t0 }));
`;

function nodeOnce(code) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // cwd tests/js: "sturdy-llm" resolves to tests/js/node_modules (the installed tarball).
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], { cwd: testsJs, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (status) => {
      const wallMs = performance.now() - started;
      if (status !== 0) return reject(new Error(`cold-start child exited with ${status}`));
      resolve({ ms: JSON.parse(out).ms, wallMs });
    });
  });
}

async function nodeColdStart(runs) {
  const dir = await mkdtemp(join(tmpdir(), "cold-start-"));
  const noop = join(dir, "noop.mjs");
  await writeFile(noop, "export const noop = 0;\n");
  const variants = {
    package: timed(`const { ResilientClient } = await import("sturdy-llm"); new ResilientClient();`),
    eventsourceParser: timed(`const { createParser } = await import("eventsource-parser"); createParser({ onEvent() {} });`),
    noop: timed(`await import(${JSON.stringify(pathToFileURL(noop).href)});`),
  };
  const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, { ms: [], wallMs: [] }]));
  try {
    await nodeOnce(variants.package); // warm the file system cache
    for (let i = 0; i < runs; i++) {
      for (const [name, code] of Object.entries(variants)) {
        const { ms, wallMs } = await nodeOnce(code);
        samples[name].ms.push(ms);
        samples[name].wallMs.push(wallMs);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return Object.fromEntries(Object.entries(samples).map(([k, s]) => [k, { ms: median(s.ms), wallMs: median(s.wallMs), samples: s.ms }]));
}

// ---- workerd ----

const WITH_PACKAGE = `
  import { ResilientClient } from "sturdy-llm";
  export default {
    async fetch() {
      const client = new ResilientClient();
      return new Response(typeof client.fetch);
    },
  };
`;
const WITHOUT_PACKAGE = `
  export default {
    async fetch() {
      return new Response("function");
    },
  };
`;

async function bundleWorker(source, outDir) {
  const { build } = await import("esbuild");
  await build({
    stdin: { contents: source, resolveDir: testsJs, sourcefile: "worker.mjs", loader: "js" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    external: ["*.wasm"],
    outfile: join(outDir, "worker.mjs"),
    logLevel: "error",
  });
  await copyFile(join(testsJs, "node_modules/sturdy-llm/sturdy_llm_bg.wasm"), join(outDir, "sturdy_llm_bg.wasm"));
  return join(outDir, "worker.mjs");
}

async function workerdOnce(Miniflare, scriptPath) {
  const started = performance.now();
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    modulesRoot: dirname(scriptPath),
    modulesRules: [
      { type: "ESModule", include: ["**/*.mjs", "**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: "2025-09-01",
  });
  try {
    const response = await mf.dispatchFetch("http://worker/");
    const text = await response.text();
    const ms = performance.now() - started;
    if (text !== "function") throw new Error(`unexpected Worker answer: ${text}`);
    return ms;
  } finally {
    await mf.dispose();
  }
}

async function workerdColdStart(runs) {
  const { Miniflare } = await import("miniflare");
  const dir = await mkdtemp(join(tmpdir(), "cold-start-workerd-"));
  try {
    const withPackage = await bundleWorker(WITH_PACKAGE, join(dir, "with"));
    const without = await bundleWorker(WITHOUT_PACKAGE, join(dir, "without"));
    await workerdOnce(Miniflare, without); // warm up: Miniflare's own first start, file system cache
    await workerdOnce(Miniflare, withPackage);
    const samples = { package: [], empty: [] };
    for (let i = 0; i < runs; i++) {
      samples.empty.push(await workerdOnce(Miniflare, without));
      samples.package.push(await workerdOnce(Miniflare, withPackage));
    }
    const packageMs = median(samples.package);
    const emptyMs = median(samples.empty);
    return { runs, packageMs, emptyMs, costMs: packageMs - emptyMs, samples };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Node cold-start medians (package, eventsource-parser, empty module) and workerd with / without the package. */
export async function run({ runs, workerdRuns, workerd = true, quick = process.env.BENCH_QUICK === "1" } = {}) {
  const nodeRuns = runs ?? (quick ? 7 : 15);
  const node = { runs: nodeRuns, ...(await nodeColdStart(nodeRuns)) };
  const result = { node };
  if (workerd) result.workerd = await workerdColdStart(workerdRuns ?? (quick ? 3 : 5));
  return result;
}

function print({ node, workerd }) {
  const f = (ms) => `${ms.toFixed(1).padStart(7)} ms`;
  console.log(`cold start in Node (median of ${node.runs} fresh processes; import + construct, in-process; process wall time)`);
  console.log(`  sturdy-llm          ${f(node.package.ms)}   ${f(node.package.wallMs)}`);
  console.log(`  eventsource-parser  ${f(node.eventsourceParser.ms)}   ${f(node.eventsourceParser.wallMs)}`);
  console.log(`  empty ESM file      ${f(node.noop.ms)}   ${f(node.noop.wallMs)}`);
  if (!workerd) return;
  console.log(`cold start in workerd (Miniflare; new Miniflare() to first response body, median of ${workerd.runs})`);
  console.log(`  Worker with the package     ${f(workerd.packageMs)}`);
  console.log(`  the same Worker without it  ${f(workerd.emptyMs)}`);
  console.log(`  the package's cost          ${f(workerd.costMs)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  print(await run({ runs: arg("runs"), workerdRuns: arg("workerd-runs"), workerd: !process.argv.includes("--no-workerd"),
    quick: process.argv.includes("--quick") || undefined }));
}
