#!/usr/bin/env node
/**
 * Leak check: many requests of every kind through one ResilientClient in Node, with the JS heap, the
 * wasm linear memory and the wasm-bindgen handle table sampled along the way; the samples must
 * plateau once the warm-up is over.
 *
 *   node --expose-gc tests/js/soak/leak.mjs [--requests 100000] [--sample-every 10000]
 *        [--warmup 20000] [--concurrency 32] [--no-signals] [--json]
 *
 *   import { runLeak } from "./soak/leak.mjs";   // needs --expose-gc
 *
 * The mock LLM runs in a child process (`node www/mock-llm.mjs --port 0`), so its sockets and
 * buffers are not in the heap measured here; faults are per request (`x-mock-fault`), streams use
 * `x-mock-chunk-delay-ms: 0`. The mix cycles through fifteen kinds: cache hits and misses (chat()
 * and fetch(), temperature 0, `cache: { maxEntries: 200 }` so the cache reaches its bound early),
 * aborted requests, attempt timeouts, SSE streams left with `break` after a few events, chatStreams
 * left with `break` (with a caller signal that is never aborted, as a UI's stop button), complete
 * chat() and chatStream() calls (cached and not), streams cut by the server (IncompleteStreamError),
 * fetches with a signal that is never aborted (as the OpenAI SDK sends every request), 503s
 * retried once, pairs of identical streams sharing one upstream stream (one reader leaving
 * early), and chatStreams hedged at once on a second target (with a never-aborted signal). The
 * breaker is off (the fault kinds share one origin with the rest).
 *
 * Every `sampleEvery` requests, once every call has settled: `global.gc()` (several passes, so the
 * FinalizationRegistry callbacks that free wasm objects have run), then heapUsed, arrayBuffers, rss,
 * the wasm memory's `buffer.byteLength`, the externref table's length and its live slots (non-null
 * entries above the reserved ones: the JS values the wasm holds), and the cache's entry count.
 *
 * The wasm memory is reached through the generated glue: the entry (entry-node.js) initialises
 * `sturdy_llm.js`; importing that same file (same URL, so the same module instance) and calling
 * `initSync()` again returns the already initialised exports ({ memory, __wbindgen_externrefs, ... })
 * instead of instantiating a second module (checked: a second instance would have no clients).
 *
 * Outcomes: every kind must end as EXPECTED says (hits hit, cuts cut, aborts abort...), or the
 * memory figures would be those of a mix that decayed into instant errors.
 *
 * Plateau (against the sample at the end of the warm-up): heapUsed at most +15%, live handles (the
 * exact leak signal: counted once every call has settled) at most +64; the wasm memory (+25%) and the
 * table's length (x2, at least +4096) only grow as high-water marks of what was live at once, so they get some room
 * for timing (a leak of 1 handle per 100 requests already breaks the live-handle check in the 20k run).
 */
import { ResilientClient } from "sturdy-llm";
import { spawn } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { untypedIn } from "./typed.mjs";

export const LEAK_DEFAULTS = {
  requests: 100_000,
  sampleEvery: undefined, // requests / 10
  warmup: undefined, // requests / 5
  concurrency: 32,
  heapGrowthMax: 0.15,
  wasmGrowthMax: 0.25,
  tableGrowthMax: 2,
  liveHandleSlack: 64,
  /** false: the two kinds that carry a never-aborted signal go without (a control run). */
  signals: true,
  quiet: false,
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const MOCK_PATH = fileURLToPath(new URL("../../../www/mock-llm.mjs", import.meta.url));

/** The mock in a child process; resolves with `{ url, stop() }`. */
function startMockProcess() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MOCK_PATH, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const onData = (chunk) => {
      out += chunk;
      const match = /listening on (\S+)/.exec(out);
      if (!match) return;
      child.stdout.off("data", onData);
      child.stdout.resume();
      resolve({
        url: match[1],
        pid: child.pid,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once("exit", () => done());
            child.kill("SIGTERM");
          }),
      });
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", onData);
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`mock-llm exited with ${code} before listening: ${out}`)));
  });
}

/** The wasm exports of the instance the package entry initialised (see the top comment). */
async function wasmExports() {
  const entry = import.meta.resolve("sturdy-llm");
  const glue = await import(new URL("./sturdy_llm.js", entry).href);
  return glue.initSync(); // returns the existing exports: the module is already initialised
}

function liveHandles(table) {
  // Slots 0..1027 are wasm-bindgen's reserved region (borrowed-ref stack and the undefined/null/true/
  // false constants); a freed slot holds null/undefined.
  let live = 0;
  for (let i = 1028; i < table.length; i += 1) if (table.get(i) != null) live += 1;
  return live;
}

function handleTypes(table) {
  const types = {};
  for (let i = 1028; i < table.length; i += 1) {
    const v = table.get(i);
    if (v == null) continue;
    const name = v?.constructor?.name ?? typeof v;
    types[name] = (types[name] ?? 0) + 1;
  }
  return types;
}

async function settleAndCollect() {
  // Let background work (cache stores, cancellations) finish, then collect until the finalizers ran.
  await sleep(100);
  for (let pass = 0; pass < 4; pass += 1) {
    global.gc();
    await sleep(20);
  }
}

const KINDS = [
  "chat-cache-hit",
  "chat-cache-miss",
  "fetch-cache-miss",
  "fetch-aborted",
  "fetch-timeout",
  "events-break",
  "chatStream-break+signal",
  "chat",
  "chatStream-cache-hit",
  "events-cut",
  "fetch+signal",
  "fetch-503-retried",
  "chatStream",
  "chatStream-shared",
  "chatStream-hedged+signal",
];
const HOT_PROMPTS = 20;

/**
 * How each kind must end, so that a mix that decayed (hits that miss, cuts that complete, aborts
 * that do not abort, everything an instant error) fails even when the memory plateaus. The cache-hit
 * kinds miss once per hot prompt, the first time it is asked; every later ask is a hit.
 */
const EXPECTED = {
  "chat-cache-hit": { outcome: "ok (cached)", firstMisses: "ok" },
  "chat-cache-miss": { outcome: "ok" },
  "fetch-cache-miss": { outcome: "HTTP 200" },
  "fetch-aborted": { outcome: "AbortError/20" },
  "fetch-timeout": { outcome: "TimeoutError/TIMEOUT" },
  "events-break": { outcome: "broke off" },
  "chatStream-break+signal": { outcome: "broke off" },
  chat: { outcome: "ok" },
  "chatStream-cache-hit": { outcome: "ok (cached)", firstMisses: "ok" },
  "events-cut": { outcome: "IncompleteStreamError/INCOMPLETE_STREAM" },
  "fetch+signal": { outcome: "HTTP 200" },
  "fetch-503-retried": { outcome: "HTTP 503" },
  chatStream: { outcome: "ok" },
  "chatStream-shared": { outcome: "ok" },
  "chatStream-hedged+signal": { outcome: "ok" },
};

/** The kinds whose outcomes differ from EXPECTED, as `kind: {outcome: count}` strings. */
function unexpectedOutcomes(outcomes) {
  const wrong = [];
  for (const kind of KINDS) {
    const { outcome, firstMisses } = EXPECTED[kind];
    const seen = outcomes[kind] ?? {};
    const misses = firstMisses ? (seen[firstMisses] ?? 0) : 0;
    const other = Object.keys(seen).filter((o) => o !== outcome && o !== firstMisses);
    if (other.length || misses > HOT_PROMPTS || !seen[outcome]) wrong.push(`${kind}: ${JSON.stringify(seen)}`);
  }
  return wrong;
}

async function makeRequest(client, url, i, signals) {
  const idleSignal = () => (signals ? { signal: new AbortController().signal } : {});
  const kind = KINDS[i % KINDS.length];
  const hot = `hot prompt ${Math.floor(i / KINDS.length) % HOT_PROMPTS}`;
  const unique = `leak request ${i}`;
  const user = (content) => [{ role: "user", content }];
  const completions = `${url}/t/raw/v1/chat/completions`;
  const post = (body, headers = {}, extra = {}) => ({
    method: "POST",
    headers: { "content-type": "application/json", "x-mock-chunk-delay-ms": "0", ...headers },
    body: JSON.stringify({ model: "m", ...body }),
    ...extra,
  });
  const drainChat = async (stream, stopAfter) => {
    let n = 0;
    for await (const delta of stream) {
      if (typeof delta.text !== "string") throw new Error("delta without text");
      n += 1;
      if (n === stopAfter) break;
    }
    if (stopAfter === undefined) return (await stream.result).cached ? "ok (cached)" : "ok";
    return "broke off";
  };
  const drainEvents = async (stream, stopAfter) => {
    let n = 0;
    for await (const event of stream) {
      if (typeof event.data !== "string") throw new Error("event without data");
      n += 1;
      if (n === stopAfter) break;
    }
    return stopAfter === undefined ? "ok" : "broke off";
  };
  switch (kind) {
    case "chat-cache-hit":
      return client.chat({ messages: user(hot), temperature: 0 }).then((r) => (r.cached ? "ok (cached)" : "ok"));
    case "chat-cache-miss":
      return client.chat({ messages: user(unique), temperature: 0 }).then((r) => (r.cached ? "ok (cached)" : "ok"));
    case "fetch-cache-miss":
      return client
        .fetch(completions, post({ messages: user(unique), temperature: 0 }))
        .then(async (res) => `HTTP ${res.status}${(await res.text()).length > 0 ? "" : " (empty)"}`);
    // The answer comes 1 s late in the two kinds below, so that the abort (2 ms) and the timeout
    // (10 ms) always win, even when a loaded machine stalls the event loop (EXPECTED holds them to it).
    case "fetch-aborted": {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 2);
      return client
        .fetch(completions, post({ messages: user(unique) }, { "x-mock-fault": "delay=1000" }, { signal: controller.signal }))
        .then(async (res) => `HTTP ${res.status} ${await res.text()}`);
    }
    case "fetch-timeout":
      return client
        .fetch(completions, post({ messages: user(unique) }, { "x-mock-fault": "delay=1000" }, {
          resilience: { retry: false, timeout: { attemptMs: 10 } },
        }))
        .then(async (res) => `HTTP ${res.status} ${await res.text()}`);
    case "events-break":
      return drainEvents(client.events(completions, post({ messages: user(unique), stream: true })), 3);
    case "chatStream-break+signal":
      // A UI's stop button: a signal that is never used because the reader leaves with break.
      return drainChat(client.chatStream({ messages: user(unique), ...idleSignal() }), 2);
    case "chat":
      return client.chat({ messages: user(unique), maxTokens: 8 }).then(() => "ok");
    case "chatStream-cache-hit":
      return drainChat(client.chatStream({ messages: user(hot), temperature: 0 }));
    case "events-cut":
      // 2 ms between chunks: with 0 the reset can overtake the first chunks and the attempt fails
      // before its first event (a retried network error instead of a cut stream).
      return drainEvents(client.events(completions, post({ messages: user(unique), stream: true }, { "x-mock-fault": "reset=3", "x-mock-chunk-delay-ms": "2" })));
    case "fetch+signal":
      // As SDKs call fetch (the OpenAI SDK passes its own AbortController's signal on every request).
      return client
        .fetch(completions, post({ messages: user(unique) }, {}, idleSignal()))
        .then(async (res) => `HTTP ${res.status}${(await res.text()).length > 0 ? "" : " (empty)"}`);
    case "fetch-503-retried":
      return client
        .fetch(completions, post({ messages: user(unique) }, { "x-mock-fault": "status=503" }, {
          resilience: { retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 2 } },
        }))
        .then(async (res) => `HTTP ${res.status}${(await res.text()).length > 0 ? "" : " (empty)"}`);
    case "chatStream":
      return drainChat(client.chatStream({ messages: user(unique) }));
    case "chatStream-shared": {
      // Two identical deterministic streams at once share one upstream stream; one leaves early.
      const request = { messages: user(unique), temperature: 0 };
      const [whole] = await Promise.all([drainChat(client.chatStream(request)), drainChat(client.chatStream(request), 2)]);
      return whole;
    }
    case "chatStream-hedged+signal":
      // Hedged at once (afterMs 0): both targets asked, the loser dropped mid-way, with a signal
      // that outlives the call (its listener must go with the loser).
      return drainChat(client.chatStream({ messages: user(unique), hedge: { afterMs: 0 }, ...idleSignal() }));
    default:
      throw new Error(kind);
  }
}

/** Runs the leak check; returns `{ options, samples, checks, outcomes, ok, ... }` (needs --expose-gc). */
export async function runLeak(options = {}) {
  if (typeof global.gc !== "function") throw new Error("runLeak needs node --expose-gc");
  const o = { ...LEAK_DEFAULTS, ...options };
  o.sampleEvery ??= Math.max(1, Math.round(o.requests / 10));
  o.warmup ??= Math.max(o.sampleEvery, Math.round(o.requests / 5));
  const log = o.quiet ? () => {} : (...args) => console.error(...args);
  const unhandled = [];
  const onUnhandled = (reason) => unhandled.push(`${reason?.name}: ${reason?.message}`);
  process.on("unhandledRejection", onUnhandled);

  const wasm = await wasmExports();
  const table = wasm.__wbindgen_externrefs;
  const mock = await startMockProcess();
  const started = performance.now();
  let client;
  try {
    client = new ResilientClient({
      // "b" only answers hedged calls (every other call is answered by "a").
      targets: ["a", "b"].map((name) => ({ name, provider: "openai", baseUrl: `${mock.url}/t/${name}/v1`, model: "m", headers: { "x-mock-chunk-delay-ms": "0" } })),
      cache: { maxEntries: 200 },
      // The fault kinds (timeouts, 503s, cut streams) share the mock's origin with the rest: with a
      // breaker it would open and turn most of the mix into CircuitOpenError rejections.
      breaker: false,
      retry: { baseDelayMs: 5, maxDelayMs: 50 },
      timeout: { idleMs: 2000, firstByteMs: 5000 },
    });
    // The glue really is the entry's instance: a client made through the entry shows in its table.
    const before = liveHandles(table);
    const off = client.on("error", () => {});
    const identityOk = liveHandles(table) > before;
    off();
    if (!identityOk) throw new Error("the imported glue is not the instance the entry initialised");

    const outcomes = {};
    const untyped = [];
    const samples = [];
    const sample = async (done) => {
      await settleAndCollect();
      const mem = process.memoryUsage();
      const stats = client.stats();
      const s = {
        requests: done,
        heapUsed: mem.heapUsed,
        arrayBuffers: mem.arrayBuffers,
        external: mem.external,
        rss: mem.rss,
        wasmMemory: wasm.memory.buffer.byteLength,
        tableLength: table.length,
        liveHandles: liveHandles(table),
        cacheEntries: stats.cache.entries,
        cacheHitRate: stats.cache.hitRate,
        seconds: (performance.now() - started) / 1000,
      };
      samples.push(s);
      log(formatSample(s));
    };

    log(header());
    await sample(0);
    let next = 0;
    while (next < o.requests) {
      const end = Math.min(o.requests, next + o.sampleEvery);
      const worker = async () => {
        while (next < end) {
          const i = next++;
          let outcome;
          try {
            outcome = await makeRequest(client, mock.url, i, o.signals);
          } catch (error) {
            outcome = `${error?.name}${error?.code ? `/${error.code}` : ""}`;
            const bad = untypedIn(error);
            if (bad.length && untyped.length < 20) untyped.push({ i, kind: KINDS[i % KINDS.length], bad });
          }
          const kind = KINDS[i % KINDS.length];
          outcomes[kind] ??= {};
          outcomes[kind][outcome] = (outcomes[kind][outcome] ?? 0) + 1;
        }
      };
      await Promise.all(Array.from({ length: o.concurrency }, worker));
      await sample(end);
    }
    const liveTypesAtEnd = handleTypes(table);
    const finalStats = client.stats();

    // Plateau checks, against the sample at the end of the warm-up.
    const base = samples.find((s) => s.requests >= o.warmup) ?? samples.at(-1);
    const after = samples.filter((s) => s.requests > base.requests);
    const max = (key) => Math.max(base[key], ...after.map((s) => s[key]));
    const checks = [];
    const check = (name, pass, detail) => checks.push({ name, pass, detail });
    const heapMax = max("heapUsed");
    check("heapUsed plateau", heapMax <= base.heapUsed * (1 + o.heapGrowthMax),
      `max ${mb(heapMax)} vs ${mb(base.heapUsed)} at ${base.requests} (limit +${Math.round(o.heapGrowthMax * 100)}%: ${mb(base.heapUsed * (1 + o.heapGrowthMax))})`);
    // The wasm memory and the handle table never shrink: they keep the high-water mark of what was
    // live at once, which moves a little with timing (a busy CPU means more calls in flight at once).
    // A leak grows them steadily; a high-water mark moves once in a while. Live handles, counted when
    // every call has settled, are exact.
    check("wasm memory plateau", max("wasmMemory") <= base.wasmMemory * (1 + o.wasmGrowthMax),
      `max ${mb(max("wasmMemory"))} vs ${mb(base.wasmMemory)} at ${base.requests} (limit +${Math.round(o.wasmGrowthMax * 100)}%)`);
    const tableLimit = Math.max(base.tableLength * o.tableGrowthMax, base.tableLength + 4096);
    check("externref table plateau", max("tableLength") <= tableLimit,
      `max ${max("tableLength")} slots vs ${base.tableLength} at ${base.requests} (limit ${tableLimit}: about one growth step)`);
    check("live handles not growing", max("liveHandles") <= base.liveHandles + o.liveHandleSlack,
      `max ${max("liveHandles")} vs ${base.liveHandles} at ${base.requests} (slack ${o.liveHandleSlack})`);
    check("cache bounded", max("cacheEntries") <= 200, `max ${max("cacheEntries")} entries (maxEntries 200)`);
    const wrong = unexpectedOutcomes(outcomes);
    check("every kind ends as it should", wrong.length === 0, wrong.length ? wrong.join("; ") : "yes");
    check("every failure typed", untyped.length === 0, untyped.length ? JSON.stringify(untyped.slice(0, 5)) : "yes");
    check("no unhandled rejection", unhandled.length === 0, unhandled.length ? unhandled.slice(0, 5).join("; ") : "none");

    return {
      options: o,
      samples,
      base: base.requests,
      checks,
      ok: checks.every((c) => c.pass),
      outcomes,
      liveTypesAtEnd,
      stats: { requests: finalStats.requests, successes: finalStats.successes, failures: finalStats.failures, retries: finalStats.retries, cache: finalStats.cache },
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    client?.free();
    await mock.stop();
    process.off("unhandledRejection", onUnhandled);
  }
}

const mb = (bytes) => `${(bytes / 1048576).toFixed(2)} MB`;

function header() {
  return "requests  heapUsed   arrayBuf   external   rss        wasmMem    table  liveHandles  cache  hitRate  t(s)";
}

function formatSample(s) {
  const m = (b) => (b / 1048576).toFixed(2).padStart(8) + "M";
  return (
    `${String(s.requests).padStart(8)} ${m(s.heapUsed)} ${m(s.arrayBuffers)} ${m(s.external)} ${m(s.rss)} ${m(s.wasmMemory)}` +
    ` ${String(s.tableLength).padStart(6)} ${String(s.liveHandles).padStart(12)} ${String(s.cacheEntries).padStart(6)}` +
    ` ${s.cacheHitRate.toFixed(3).padStart(8)} ${s.seconds.toFixed(1).padStart(5)}`
  );
}

export function formatLeak(f) {
  const lines = [
    `leak check: ${f.options.requests} requests, concurrency ${f.options.concurrency}, sample every ${f.options.sampleEvery}, warm-up ${f.options.warmup}${f.options.signals ? "" : " (control run: no never-aborted signals)"}`,
    header(),
    ...f.samples.map(formatSample),
    "",
    ...f.checks.map((c) => `${c.pass ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`),
    `live handles at the end by type: ${JSON.stringify(f.liveTypesAtEnd)}`,
    `client stats: ${JSON.stringify(f.stats)}`,
    "outcomes by kind:",
    ...Object.entries(f.outcomes).map(([kind, o]) => `  ${kind.padEnd(22)} ${JSON.stringify(o)}`),
    `run time: ${f.seconds.toFixed(1)} s`,
  ];
  return lines.join("\n");
}

function parseArgs(argv) {
  const out = {};
  const flags = { "--requests": "requests", "--sample-every": "sampleEvery", "--warmup": "warmup", "--concurrency": "concurrency" };
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, inline] = argv[i].split("=", 2);
    if (flag === "--json") out.json = true;
    else if (flag === "--no-signals") out.signals = false;
    else if (flags[flag]) {
      out[flags[flag]] = Number(inline ?? argv[++i]);
      if (!Number.isFinite(out[flags[flag]])) throw new Error(`${flag} needs a number`);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  return out;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const { json, ...options } = parseArgs(process.argv.slice(2));
  const figures = await runLeak({ ...options, quiet: json });
  console.log(json ? JSON.stringify(figures) : formatLeak(figures));
  process.exit(figures.ok ? 0 : 1);
}
