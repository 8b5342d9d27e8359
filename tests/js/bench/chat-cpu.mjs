// Benchmark: CPU time per `chat()` call through the chain, in Node, JSON and streamed, against the mock
// LLM on loopback, with a profile of where the client's time goes.
//   node tests/js/bench/chat-cpu.mjs [--calls 2000] [--rounds 5] [--profile out.cpuprofile] [--quick]
//   (or: import { run } from "./chat-cpu.mjs"; quick mode, --quick or BENCH_QUICK=1: 500 x 3)
// The mock runs in a child process, so this process's CPU time (process.cpuUsage(): user + system, all
// threads) is the client's alone: the call, its HTTP exchange through undici and reading the answer.
// Four phases of `calls` calls, 16 in flight, alternating, `rounds` of each, medians:
//   chat()        client.chat() of a one-message request (one target, default policies);
//   chatStream()  client.chatStream() of the same request, iterated to the end (one delta per word);
//   plain JSON    fetch of the same completion + response.json() + choices[0].message.content;
//   plain stream  fetch of the same streamed completion + reading the body as text.
// The differences are what the package costs per call on top of the HTTP exchange itself. After the
// timed rounds, one more chat() and chatStream() phase each runs under the V8 profiler (node:inspector):
// the functions with the most self time are returned (and the profile written with --profile).
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ResilientClient } from "sturdy-llm";

const here = dirname(fileURLToPath(import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const IN_FLIGHT = 16;

/** The mock LLM in a child process (its CPU is not this process's). */
async function startMock() {
  const mock = pathToFileURL(join(here, "../../../www/mock-llm.mjs")).href;
  const code = `const { startMockLlm } = await import(${JSON.stringify(mock)});
    const m = await startMockLlm(); process.stdout.write(m.url + "\\n");`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(out.trim());
    });
    child.on("exit", (status) => reject(new Error(`mock exited with ${status}`)));
  });
  return { url, stop: () => child.kill() };
}

/** CPU µs (user + system) per call of `call` over `count` calls, IN_FLIGHT at a time. */
async function cpuPerCall(call, count) {
  let next = 0;
  const before = process.cpuUsage();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < count) {
      next += 1;
      await call();
    }
  }));
  const spent = process.cpuUsage(before);
  return (spent.user + spent.system) / count;
}

/** The functions with the most self time in a V8 CPU profile (µs), the top `n`. */
function topSelfTime(profile, n) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  const interval = [];
  for (let i = 0; i < profile.samples.length; i++) interval.push(profile.timeDeltas[i] ?? 0);
  const total = interval.reduce((a, b) => a + b, 0);
  profile.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const file = url ? url.replace(/^.*\/node_modules\//, "").replace(/^file:\/\/.*\//, "") : "";
    const name = `${functionName || "(anonymous)"}${file ? ` ${file}:${lineNumber + 1}` : ""}`;
    self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, us]) => ({ name, us, share: us / total }));
}

/** Shares of a profile's self time: the wasm, the package's JS (glue and wrappers), the runtime's JS
 * (fetch, streams, timers), the garbage collector, and the rest (native code, idle). */
function categories(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const out = { wasm: 0, packageJs: 0, runtimeJs: 0, gc: 0, other: 0 };
  let total = 0;
  profile.samples.forEach((id, i) => {
    const { url, functionName } = byId.get(id).callFrame;
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const key = url.startsWith("wasm://") ? "wasm"
      : url.includes("/sturdy-llm/") ? "packageJs"
      : url.startsWith("node:") ? "runtimeJs"
      : functionName === "(garbage collector)" ? "gc" : "other";
    out[key] += dt;
  });
  for (const key of Object.keys(out)) out[key] /= total;
  return out;
}

async function profiled(call, count) {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  await cpuPerCall(call, count);
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  return profile;
}

/** CPU µs per call of chat(), chatStream() and their plain-fetch counterparts (medians), and profiles. */
export async function run({ calls, rounds, profile: profilePath, quick = process.env.BENCH_QUICK === "1" } = {}) {
  calls ??= quick ? 500 : 2000;
  rounds ??= quick ? 3 : 5;
  const mock = await startMock();
  try {
    const headers = { "x-mock-chunk-delay-ms": "0" };
    const client = new ResilientClient({ targets: [{ name: "mock", provider: "openai", baseUrl: mock.url, model: "m", headers }] });
    const messages = [{ role: "user", content: "cpu time per call" }];
    const endpoint = `${mock.url}/v1/chat/completions`;
    const init = (stream) => ({ method: "POST", headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ model: "m", messages, stream }) });
    let expected;
    const phases = {
      chat: async () => {
        const result = await client.chat({ messages });
        if (result.text !== expected) throw new Error(`chat(): unexpected text ${result.text}`);
      },
      chatStream: async () => {
        let text = "";
        for await (const delta of client.chatStream({ messages })) text += delta.text;
        if (text !== expected) throw new Error(`chatStream(): unexpected text ${text}`);
      },
      plainJson: async () => {
        const response = await fetch(endpoint, init(false));
        if ((await response.json()).choices[0].message.content !== expected) throw new Error("plain: unexpected text");
      },
      plainStream: async () => {
        const response = await fetch(endpoint, init(true));
        if (!(await response.text()).includes("[DONE]")) throw new Error("plain stream: no [DONE]");
      },
    };
    expected = (await client.chat({ messages })).text;
    for (const call of Object.values(phases)) await cpuPerCall(call, 300); // warm-up: JIT, connections
    const samples = Object.fromEntries(Object.keys(phases).map((k) => [k, []]));
    for (let round = 0; round < rounds; round++) {
      for (const [name, call] of Object.entries(phases)) samples[name].push(await cpuPerCall(call, calls));
    }
    const us = Object.fromEntries(Object.entries(samples).map(([k, s]) => [k, median(s)]));
    const chatProfile = await profiled(phases.chat, calls);
    const streamProfile = await profiled(phases.chatStream, calls);
    if (profilePath) {
      writeFileSync(profilePath, JSON.stringify(chatProfile));
      writeFileSync(profilePath.replace(/(\.cpuprofile)?$/, "-stream.cpuprofile"), JSON.stringify(streamProfile));
    }
    if (client.stats().failures !== 0) throw new Error(`unexpected failures: ${JSON.stringify(client.stats())}`);
    client.free();
    return {
      calls, rounds, us, samples,
      packageUs: { chat: us.chat - us.plainJson, chatStream: us.chatStream - us.plainStream },
      profile: { chat: topSelfTime(chatProfile, 12), chatStream: topSelfTime(streamProfile, 12) },
      categories: { chat: categories(chatProfile), chatStream: categories(streamProfile) },
    };
  } finally {
    mock.stop();
  }
}

function print(r) {
  const f = (x) => `${Math.round(x).toLocaleString("en-US").padStart(6)} µs`;
  console.log(`CPU per call in Node (process.cpuUsage, median of ${r.rounds} phases of ${r.calls} calls, ${IN_FLIGHT} in flight)`);
  console.log(`  chat()                    ${f(r.us.chat)}   package +${f(r.packageUs.chat)}`);
  console.log(`  plain fetch + json()      ${f(r.us.plainJson)}`);
  console.log(`  chatStream()              ${f(r.us.chatStream)}   package +${f(r.packageUs.chatStream)}`);
  console.log(`  plain fetch + text() SSE  ${f(r.us.plainStream)}`);
  for (const [name, top] of Object.entries(r.profile)) {
    const shares = Object.entries(r.categories[name]).map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`).join(", ");
    console.log(`profile of ${name}, self time: ${shares}`);
    for (const { name: fn, share } of top) console.log(`  ${(share * 100).toFixed(1).padStart(5)}%  ${fn}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  print(await run({ calls: arg("calls") && Number(arg("calls")), rounds: arg("rounds") && Number(arg("rounds")),
    profile: arg("profile"), quick: process.argv.includes("--quick") || undefined }));
}
