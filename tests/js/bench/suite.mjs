// The benchmark suite: runs every benchmark in its own Node process (one after another, so they do not
// compete with each other) and prints two markdown tables: every measurement (benchmark | ours | peer
// (same run) | ratio | target | met?), then the targets of issue 20, one row each, against the floor or
// peer measured in the same run, met or missed.
//   node tests/js/bench/suite.mjs [--quick] [--only sse,fetch,cache,cold,cpu,concurrency,semantic,size] (cpu: the Worker's and chat()'s) [--json out.json]
//   (tests/bench builds and installs the package first when needed, then runs this)
// Quick mode (--quick or BENCH_QUICK=1) passes quick: true to every benchmark (fewer iterations).
// The ratio column is always "how many times faster / smaller ours is": ours / peer for throughputs,
// peer / ours for times and sizes; > 1 means ours is ahead.
import { execFileSync, spawn } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { KB, packageSizes } from "./size.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../../..");
const MARK = "@@bench-result@@";

// ---- child mode: `node suite.mjs --child <module> <options json>` runs one benchmark's run() ----

if (process.argv[2] === "--child") {
  const module = await import(pathToFileURL(join(here, process.argv[3])).href);
  const result = await module.run(JSON.parse(process.argv[4]));
  process.stdout.write(`\n${MARK}${JSON.stringify(result)}\n`);
  process.exit(0);
}

const argv = process.argv.slice(2);
const QUICK = argv.includes("--quick") || process.env.BENCH_QUICK === "1";
const onlyArg = argv.indexOf("--only");
const ONLY = onlyArg >= 0 ? new Set(argv[onlyArg + 1].split(",")) : null;
const jsonArg = argv.indexOf("--json");
const JSON_OUT = jsonArg >= 0 ? argv[jsonArg + 1] : null;
const wanted = (key) => !ONLY || ONLY.has(key);

function child(module, options, nodeFlags = []) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const proc = spawn(process.execPath, [...nodeFlags, fileURLToPath(import.meta.url), "--child", module, JSON.stringify(options)], {
      cwd: join(root, "tests/js"),
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    proc.stdout.on("data", (d) => (out += d));
    proc.on("error", reject);
    proc.on("exit", (code) => {
      const at = out.lastIndexOf(MARK);
      if (code !== 0 || at < 0) return reject(new Error(`${module} failed (exit ${code})\n${out}`));
      const before = out.slice(0, at).trim();
      if (before) process.stderr.write(`${before}\n`);
      process.stderr.write(`  ${module} done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
      resolve(JSON.parse(out.slice(at + MARK.length)));
    });
  });
}

// ---- formatting ----

const int = (x) => Math.round(x).toLocaleString("en-US");
const ms = (x) => `${x.toFixed(x < 10 ? 2 : 1)} ms`;
const us = (xMs) => `${int(xMs * 1000)} µs`;
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
const kb = (bytes) => `${(bytes / KB).toFixed(1)} KB`;
const x = (ratio, digits = 2) => `${ratio.toFixed(digits)}x`;
const verdict = (ok) => (ok ? "yes" : "**no**");

const rows = [];
const row = (benchmark, ours, peer, ratio, target = "—", met = "—") => rows.push({ benchmark, ours, peer, ratio, target, met });
// The targets of issue 20: one row per target, the figure it is judged on, met or missed.
const goals = [];
const goal = (name, measured, target, met) => goals.push({ name, measured, target, met: met === undefined ? "reported" : verdict(met) });

function table() {
  const header = ["benchmark", "ours", "peer (same run)", "ratio", "target", "met?"];
  const lines = [`| ${header.join(" | ")} |`, "|---|--:|--:|--:|--:|:-:|"];
  for (const r of rows) lines.push(`| ${[r.benchmark, r.ours, r.peer, r.ratio, r.target, r.met].join(" | ")} |`);
  return lines.join("\n");
}

function goalTable() {
  const lines = ["| target (issue 20) | measured (same run) | target | met? |", "|---|--:|--:|:-:|"];
  const order = ["`client.fetch`", "memory-cache", "cold start, Node", "cold start, workerd", "SSE (a)", "SSE (b)", "wasm + glue", "CPU"];
  const rank = (g) => order.findIndex((prefix) => g.name.startsWith(prefix));
  for (const g of [...goals].sort((p, q) => rank(p) - rank(q))) lines.push(`| ${[g.name, g.measured, g.target, g.met].join(" | ")} |`);
  return lines.join("\n");
}

function budgetNumbers() {
  const script = readFileSync(join(root, "tests/size"), "utf8");
  const target = Number(/^TARGET_KB=(\d+)/m.exec(script)?.[1]);
  const ceiling = Number(/^CEILING_KB=(\d+)/m.exec(script)?.[1]);
  return { target, ceiling };
}

function environment() {
  let chromium = "not found";
  try {
    chromium = execFileSync("chromium", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {}
  let commit = "";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    if (execFileSync("git", ["status", "--porcelain", "--", "src", "crates", "pkg-template", "Cargo.toml"], { cwd: root, encoding: "utf8" }).trim()) commit += " (+ uncommitted source changes)";
  } catch {}
  const pkg = JSON.parse(readFileSync(join(root, "tests/js/node_modules/sturdy-llm/package.json"), "utf8"));
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    node: process.version,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? "?"}`,
    chromium,
    package: `sturdy-llm ${pkg.version}`,
    commit,
    load: loadavg().map((l) => l.toFixed(2)).join(" "),
  };
}

// ---- the runs ----

const env = environment();
const results = {};
process.stderr.write(`bench suite (${QUICK ? "quick" : "full"} mode); load average at start: ${env.load}\n`);
const opts = { quick: QUICK };

if (wanted("sse")) {
  const r = (results.sse = await child("sse-parse.mjs", opts));
  for (const input of r.inputs) {
    const target = input.key === "a" ? 1.1 : undefined;
    row(`SSE parse ${input.name}`,
      `${int(input.ours.mbPerSecond)} MB/s (${int(input.ours.eventsPerSecond)} ev/s)`,
      `eventsource-parser ${int(input.peer.mbPerSecond)} MB/s`,
      x(input.ratio),
      target === undefined ? "—" : `>= ${target.toFixed(1)}x`,
      target === undefined ? "—" : verdict(input.ratio >= target));
  }
  const b = r.inputs.find((input) => input.key === "b");
  const ofFloor = b.ours.mbPerSecond / r.floor.mbPerSecond;
  row("floor of (b): TextDecoder over the whole 48 MB (strings, no parsing)", `SseParser ${int(b.ours.mbPerSecond)} MB/s`,
    `${int(r.floor.mbPerSecond)} MB/s`, `${ofFloor.toFixed(2)} of floor`, ">= 0.8 of floor", verdict(ofFloor >= 0.8));
  const a = r.inputs.find((input) => input.key === "a");
  goal("SSE (a) OpenAI-shaped, 1 KiB chunks, vs eventsource-parser",
    `${x(a.ratio)} (${int(a.ours.mbPerSecond)} vs ${int(a.peer.mbPerSecond)} MB/s)`, ">= 1.1x", a.ratio >= 1.1);
  goal("SSE (b) multi-MB events vs TextDecoder over the whole input",
    `${ofFloor.toFixed(2)} of floor (${int(b.ours.mbPerSecond)} vs ${int(r.floor.mbPerSecond)} MB/s)`, ">= 0.8 of floor", ofFloor >= 0.8);
}

if (wanted("fetch")) {
  const r = (results.fetch = await child("fetch-overhead.mjs", opts));
  const ofFloor = r.resilient / r.timeout;
  row(`\`client.fetch\`, all policies on (${int(r.requests)} POSTs x ${r.rounds} rounds, ${r.concurrency} in flight, loopback)`,
    `${int(r.resilient)} req/s`, `plain fetch ${int(r.plain)} req/s`, x(r.ratio, 3), "—", "—");
  row("floor: fetch + AbortController timeout (plain JS)",
    `${int(r.timeout)} req/s`, `plain fetch ${int(r.plain)} req/s`, x(r.timeoutRatio, 3), "—", "—");
  goal("`client.fetch`, all policies on, vs the floor (fetch + AbortController timeout)",
    `${ofFloor.toFixed(3)} of floor (${x(r.ratio, 3)} / ${x(r.timeoutRatio, 3)} of plain fetch)`, ">= 0.95 of floor", ofFloor >= 0.95);
}

if (wanted("cache")) {
  const r = (results.cache = await child("cache-hit.mjs", opts));
  row(`memory-cache hit vs loopback fetch, Node (median of ${int(r.node.calls)})`,
    us(r.node.hitMs), `loopback fetch ${us(r.node.loopbackMs)}`, x(r.node.ratio, 1), "—", "—");
  row("floor: `new Response(bytes, { headers }).text()`, the hit's bytes and headers",
    `hit ${us(r.node.hitMs)}`, `${(r.node.floorMs * 1000).toFixed(1)} µs`, `${x(r.node.ofFloor)} the floor`, "<= 1.4x", verdict(r.node.ofFloor <= 1.4));
  goal("memory-cache hit vs the floor (`new Response(bytes,{headers}).text()`)",
    `${x(r.node.ofFloor)} (${(r.node.hitMs * 1000).toFixed(1)} vs ${(r.node.floorMs * 1000).toFixed(1)} µs)`, "<= 1.4x the floor", r.node.ofFloor <= 1.4);
  row(`IndexedDB cache hit, Chromium ${r.chromium.version} (median of ${r.chromium.calls})`,
    us(r.chromium.idbMs), `loopback fetch in the page ${us(r.chromium.loopbackMs)}`, x(r.chromium.ratio, 1), "—", "—");
}

if (wanted("cold")) {
  const r = (results.cold = await child("cold-start.mjs", opts));
  const n = r.node;
  row(`cold start, Node: \`import\` + \`new ResilientClient()\` (median of ${n.runs} processes)`,
    `${ms(n.package.ms)} (+${ms(n.package.ms - n.noop.ms)} over an empty module)`,
    `eventsource-parser ${ms(n.eventsourceParser.ms)}; empty module ${ms(n.noop.ms)}`,
    x(n.eventsourceParser.ms / n.package.ms), "—", "—");
  const times = n.package.ms / n.eventsourceParser.ms;
  goal("cold start, Node: import + construct, vs importing eventsource-parser",
    `${x(times)} (${ms(n.package.ms)} vs ${ms(n.eventsourceParser.ms)})`, "<= 2.0x", times <= 2.0);
  const w = r.workerd;
  row(`cold start, workerd: \`new Miniflare()\` to first response (median of ${w.runs})`,
    `${ms(w.packageMs)} (package cost +${ms(w.costMs)})`, `same Worker without the package ${ms(w.emptyMs)}`,
    x(w.emptyMs / w.packageMs), ">= 0.9x", verdict(w.emptyMs / w.packageMs >= 0.9));
  goal("cold start, workerd: same Worker without / with the package, to first response",
    `${x(w.emptyMs / w.packageMs)} (+${ms(w.costMs)})`, ">= 0.9x", w.emptyMs / w.packageMs >= 0.9);
}

if (wanted("cpu")) {
  const r = (results.cpu = await child("worker-cpu.mjs", opts));
  row(`CPU time per request in a Worker (workerd process, \`client.chat()\`, median of ${r.rounds} x ${int(r.requests)})`,
    `${ms(r.clientMs)} (package cost +${ms(r.packageMs)})`, `plain fetch + json() ${ms(r.plainMs)}`,
    x(r.plainMs / r.clientMs), "—", "—");
  const c = (results.chatCpu = await child("chat-cpu.mjs", opts));
  const cpu = (v) => `${int(v)} µs`;
  row(`CPU per \`chat()\` call through the chain, Node, loopback (median of ${c.rounds} x ${int(c.calls)})`,
    `${cpu(c.us.chat)} (package +${cpu(c.packageUs.chat)})`, `plain fetch + json() ${cpu(c.us.plainJson)}`, x(c.us.plainJson / c.us.chat), "—", "—");
  row("CPU per `chatStream()` call, iterated to the end (30 deltas)",
    `${cpu(c.us.chatStream)} (package +${cpu(c.packageUs.chatStream)})`, `plain fetch + text() ${cpu(c.us.plainStream)}`, x(c.us.plainStream / c.us.chatStream), "—", "—");
  const shares = (k) => Object.entries(c.categories[k]).map(([name, v]) => `${name} ${(v * 100).toFixed(0)}%`).join(", ");
  goal("CPU per `chat()` call through the chain (JSON; streamed)",
    `${cpu(c.us.chat)}; ${cpu(c.us.chatStream)} (self time of chat(): ${shares("chat")})`, "reported, with a profile");
}

if (wanted("concurrency")) {
  const r = (results.concurrency = await child("concurrency.mjs", opts, ["--expose-gc"]));
  row(`${int(r.requests)} concurrent requests, server answers after 200 ms: wall time (median of ${r.rounds})`,
    ms(r.resilient.ms), `plain fetch ${ms(r.plain.ms)}`, x(r.ratio), "—", "—");
  row(`${int(r.requests)} concurrent requests: JS heap with all in flight`,
    `+${mb(r.resilient.heapDelta)} (wasm memory ${mb(r.wasmMemory.before)} → ${mb(r.wasmMemory.highWater)})`,
    `plain fetch +${mb(r.plain.heapDelta)}`, x(r.plain.heapDelta / r.resilient.heapDelta), "—", "—");
}

if (wanted("semantic")) {
  const r = (results.semantic = await child("semantic-lookup.mjs", opts));
  for (const { entries, dims, medianUs } of r.native.filter((row) => row.dims === 1536)) {
    const wasm = r.wasm.rows.find((row) => row.entries === entries);
    row(`semantic-cache lookup, ${int(entries)} entries of ${int(dims)} dimensions (exact cosine scan)`,
      `${ms(wasm.lookupMs)} in wasm (Node)`, `native ${ms(medianUs / 1000)}`, "—", "—", "—");
  }
}

if (wanted("size")) {
  const s = (results.size = packageSizes(join(root, "pkg")));
  const { target, ceiling } = budgetNumbers();
  results.size.budget = { targetKb: target, ceilingKb: ceiling };
  row("wasm size: `pkg/sturdy_llm_bg.wasm`",
    `${int(s.wasmRaw)} B raw; ${kb(s.wasmGzip)} gzip -9; ${kb(s.wasmBrotli)} brotli`, "—", "—", "—", "—");
  row(`wasm + JS glue (${s.glueFiles} files, ${kb(s.glueGzip)} gzip -9), gzip -9`,
    kb(s.totalGzip), "—", "—", `<= ${target} KB`,
    s.totalGzip <= target * KB ? "yes" : `**no** (+${kb(s.totalGzip - target * KB)}; ceiling ${ceiling} KB ${s.totalGzip <= ceiling * KB ? "ok" : "EXCEEDED"})`);
  goal("wasm + glue, gzip -9", kb(s.totalGzip), `<= ${target} KB`, s.totalGzip <= target * KB);
}

results.environment = { ...env, loadAtEnd: loadavg().map((l) => l.toFixed(2)).join(" "), quick: QUICK };
console.log(`## Benchmarks (${QUICK ? "quick" : "full"} run, ${env.date})\n`);
console.log(`${env.package} at ${env.commit}; Node ${env.node}; ${env.chromium}; ${env.cpus}; ` +
  `load average ${env.load} at start, ${results.environment.loadAtEnd} at end.\n`);
console.log(table());
console.log("\nratio: ours / peer for throughputs, peer / ours for times and sizes (> 1: ours ahead). KB = 1024 B.");
if (goals.length) console.log(`\n### Targets of issue 20\n\n${goalTable()}`);
if (JSON_OUT) writeFileSync(JSON_OUT, `${JSON.stringify(results, null, 2)}\n`);
