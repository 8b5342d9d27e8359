#!/usr/bin/env node
/**
 * Fuzzing the JS boundary: seeded random options, chat requests and per-request policies, shaped like
 * the real ones but full of hostile values (wrong types, NaN, 1e300, Symbols, BigInts, Proxies and
 * getters that throw, revoked Proxies, Proxies of a Request or an AbortSignal, objects whose
 * toString, valueOf or Symbol.toPrimitive throw, huge sparse arrays, huge strings, unknown keys, deep
 * nesting), options polluted through Object.prototype, and listeners that call the client back from
 * every event, thrown at the built package.
 *
 *   node tests/js/fuzz/boundary.mjs [--cases 20000] [--seed 1]      (a long run; prints a summary)
 *   import { fuzzBoundary } from "./fuzz/boundary.mjs";              (tests/js/fuzz.test.mjs: bounded)
 *   FUZZ_TRACE=1 node tests/js/fuzz/boundary.mjs ...   prints each case (and the options it builds) to
 *                                                       stderr first: a synchronous hang shows its case
 *
 * The option parsing lives in wasm and reads JS values, so cargo-fuzz cannot reach it; this does, in
 * the shipped module. Every case must end in one of:
 *   - success;
 *   - a TypeError or RangeError whose message says what is wrong ("<path> must be ..."), fetch's
 *     own refusal of a malformed request (code INVALID_REQUEST, never retried), or one of the
 *     library's typed errors (a request sent to a closed port fails as a network error);
 *   - for a hostile getter or Proxy trap: a TypeError naming the field ("<path> could not be read"),
 *     or, for a signal that throws, a TypeError saying the signal could not be read (what was thrown
 *     is its `cause`); an aborted signal rejects with its own reason, as fetch does.
 * Never a WebAssembly.RuntimeError (a panic or trap would kill the instance for every caller), never a
 * hang, never the hostile value's own error escaping untyped; a value polluting Object.prototype
 * changes nothing; after every case a fresh client must still work, and over the run wasm memory
 * stays flat (it never shrinks: a value copied in whole, or a leak, would show).
 */
import { ResilientClient } from "sturdy-llm";
import { pathToFileURL } from "node:url";
import { inspect } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { mulberry32 } from "../../../www/mock-llm.mjs";

/** Thrown by the fuzzer's own hostile getters and traps. */
export class Planted extends Error {
  name = "Planted";
}

const LIBRARY_ERRORS = new Set([
  "TypeError",
  "RangeError",
  "AbortError",
  "TimeoutError",
  "CircuitOpenError",
  "RateLimitError",
  "BudgetExceededError",
  "UpstreamError",
  "AllTargetsFailedError",
  "IncompleteStreamError",
]);

/** Where nothing listens: a chat request that passes validation fails fast as a network error. */
const CLOSED = "http://127.0.0.1:9";

function generator(random) {
  const pick = (items) => items[Math.floor(random() * items.length)];
  const chance = (p) => random() < p;

  const revoked = (target) => {
    const { proxy, revoke } = Proxy.revocable(target, {});
    revoke();
    return proxy;
  };
  const throwingEverywhere = (target) =>
    new Proxy(target, {
      get() { throw new Planted("proxy get"); },
      has() { throw new Planted("proxy has"); },
      ownKeys() { throw new Planted("proxy ownKeys"); },
      getOwnPropertyDescriptor() { throw new Planted("proxy getOwnPropertyDescriptor"); },
      getPrototypeOf() { throw new Planted("proxy getPrototypeOf"); },
      apply() { throw new Planted("proxy apply"); },
    });
  const sparse = () => {
    const array = [];
    array.length = pick([1e5, 1e8, 2 ** 32 - 1]);
    return array;
  };
  const throwingAt = () => {
    const array = [{ role: "user", content: "a" }, 503, "x"];
    Object.defineProperty(array, Math.floor(random() * 3), { get() { throw new Planted("element"); } });
    return array;
  };
  const primitiveTrap = () => ({
    [pick(["toString", "valueOf", Symbol.toPrimitive])]() { throw new Planted("conversion"); },
  });

  const hostile = () =>
    pick([
      () => undefined,
      () => null,
      () => true,
      () => false,
      () => 0,
      () => -0,
      () => -1,
      () => 1.5,
      () => NaN,
      () => Infinity,
      () => -Infinity,
      () => 1e300,
      () => 2 ** 53 + 2,
      () => "",
      () => "3",
      () => "x".repeat(1 + Math.floor(random() * 5000)),
      () => "\u0000\ud800",
      () => Symbol("fuzz"),
      () => 10n,
      () => [],
      () => [1, "a", null],
      () => ({}),
      () => ({ unknownKey: 1 }),
      () => () => {},
      () => new Date(0),
      () => Object.create(null),
      () => new Proxy({}, { get() { throw new Planted("proxy get"); }, ownKeys() { throw new Planted("proxy ownKeys"); } }),
      () => Object.defineProperty({}, "x", { enumerable: true, get() { throw new Planted("getter"); } }),
      () => nest(1 + Math.floor(random() * 200)),
      () => revoked(pick([{}, [], () => {}])),
      () => throwingEverywhere(pick([{}, [], () => {}, new AbortController().signal])),
      () => sparse(),
      () => throwingAt(),
      () => primitiveTrap(),
      () => "y".repeat(pick([1 << 17, 1 << 24])),
    ])();

  const nest = (depth) => {
    let value = {};
    for (let i = 0; i < depth; i++) value = { a: value, b: [value] };
    return value;
  };

  // A value for a field: usually of the expected shape, sometimes hostile.
  const field = (valid) => (chance(0.7) ? valid() : hostile());
  const ms = () => pick([0, 1, 50, 1000, 600000, -5, 1.5, 2 ** 31, 1e15, NaN, "100"]);
  const count = () => pick([0, 1, 2, 3, 10, 11, 100, -1, 0.5, 1e9]);
  const ratio = () => pick([0, 0.2, 1, 50, 100, 101, -0.1, NaN]);
  const bool = () => pick([true, false]);
  const text = () => pick(["a", "user-1", "", "é🙂", "x".repeat(300)]);
  const headers = () => pick([{ "x-a": "1" }, { authorization: "Bearer k" }, { "bad header": "v" }, { "x-b": "\n" }, [["x", "1"]]]);

  // An object of `spec`'s fields, each present with some probability, plus an unknown key sometimes.
  const object = (spec) => () => {
    const out = {};
    for (const [key, make] of Object.entries(spec)) if (chance(0.5)) out[key] = field(make);
    if (chance(0.05)) out[pick(["retries", "timeoutMs", "Cache", "constructor"])] = 1;
    return out;
  };
  const either = (...makers) => () => pick(makers)();

  const timeout = object({ attemptMs: ms, totalMs: ms, firstByteMs: ms, idleMs: ms });
  const retry = either(
    () => false,
    object({
      maxRetries: count,
      baseDelayMs: ms,
      maxDelayMs: ms,
      jitter: () => pick(["full", "equal", "decorrelated", "none", "some"]),
      retryOn: () => pick([[503], [429, 500], [99], [600], ["503"], []]),
      maxRetryAfterMs: ms,
      budgetRatio: ratio,
      resumeStreams: bool,
    }),
  );
  const breaker = either(
    () => false,
    object({
      failureThreshold: count,
      errorThresholdPercentage: ratio,
      volumeThreshold: count,
      windowMs: ms,
      resetTimeoutMs: ms,
      halfOpenMaxCalls: count,
      successThreshold: count,
      scope: () => pick(["origin", "client", "global"]),
    }),
  );
  const rateLimit = either(
    () => false,
    object({
      requestsPerMinute: count,
      burst: count,
      tokensPerMinute: count,
      maxWaitMs: ms,
      scope: () => pick(["client", "origin", "user"]),
    }),
  );
  const store = () => ({ get: async () => undefined, put: async () => {}, delete: async () => {} });
  const cache = either(
    bool,
    object({
      store: () => pick(["memory", "indexeddb", "redis", store(), { get: 1 }]),
      ttlMs: ms,
      maxEntries: count,
      maxBytes: count,
      staleIfErrorMs: ms,
      namespace: text,
    }),
  );
  const target = object({
    name: text,
    provider: () => pick(["openai", "anthropic", "gemini"]),
    baseUrl: () => pick([CLOSED, "not a url", "ftp://x", ""]),
    apiKey: text,
    model: text,
    headers,
    pricing: object({ inputPerMTok: ratio, outputPerMTok: ratio }),
  });
  const budget = object({
    perRequestTokens: count,
    perUserDailyTokens: count,
    perUserMonthlyTokens: count,
    dailyCostUsd: ratio,
  });
  const hedge = either(() => false, object({ afterMs: () => pick([0, 25, "p95", "p50", -1, NaN, Infinity, 1e12]) }));
  const stateStore = () => ({
    admit: async () => ({ ok: true, state: "closed" }),
    record: async () => {},
    take: async () => ({ ok: true }),
  });
  const options = object({
    baseUrl: () => pick([CLOSED, "relative/path", "", "http://[::1"]),
    headers,
    timeout,
    retry,
    breaker,
    rateLimit,
    cache,
    dedupe: bool,
    targets: () => Array.from({ length: Math.floor(random() * 7) }, () => field(target)),
    budget,
    sharedState: object({ store: stateStore, failOpen: bool, leaseMs: ms }),
    hedge,
  });
  const policy = object({
    cache: () => pick(["default", "bypass", "force", "only-if-cached", "sometimes"]),
    rateLimitKey: text,
    retry,
    timeout,
    idempotencyKey: text,
    reconnect: either(bool, object({ maxAttempts: count })),
    waitUntil: () => pick([() => {}, "later"]),
  });
  const message = object({
    role: () => pick(["system", "user", "assistant", "tool"]),
    content: () => pick(["hi", "", 42, [{ type: "text", text: "hi" }]]),
  });
  const chatRequest = object({
    messages: () => (chance(0.9) ? Array.from({ length: Math.floor(random() * 4) }, () => field(message)) : hostile()),
    maxTokens: count,
    temperature: () => pick([0, 0.7, 2, -1, NaN, "0"]),
    user: text,
    signal: () => pick([AbortSignal.abort(), new AbortController().signal, "signal"]),
    resilience: policy,
    hedge,
  });
  const init = object({
    method: () => pick(["GET", "POST", "DELETE", "BREW"]),
    headers,
    body: () => pick(['{"temperature":0}', "{", "", new Uint8Array([1, 2])]),
    signal: () => pick([AbortSignal.abort(), new AbortController().signal]),
    resilience: policy,
  });
  // The request itself: usually a URL string, sometimes a Request or a Proxy of one that throws.
  const input = () =>
    pick([
      () => `${CLOSED}/v1/x`,
      () => new Request(`${CLOSED}/v1/r`, { method: "POST", body: "{}" }),
      () => {
        const key = pick(["url", "method", "headers", "body", "signal", "clone"]);
        return new Proxy(new Request(`${CLOSED}/v1/p`), {
          get(request, name) {
            if (name === key) throw new Planted(`request.${key}`);
            const value = Reflect.get(request, name);
            return typeof value === "function" ? value.bind(request) : value;
          },
        });
      },
      () => hostile(),
    ])();
  return { options: () => field(options), chatRequest: () => field(chatRequest), init: () => field(init), input, pick, chance };
}

/** Option names set on Object.prototype by the pollution cases (none of them a fetch option). */
const POLLUTED = ["maxRetries", "baseDelayMs", "resilience", "rateLimitKey", "messages", "role", "targets", "budget", "failureThreshold", "store", "scope", "reconnect"];

/** A failure the boundary must never produce, or `null` when `error` is acceptable. */
function unacceptable(error) {
  const problem = judge(error);
  return problem && problem.slice(0, 500);
}

function judge(error) {
  if (error instanceof Planted) return `a hostile value's own error escaped untyped: ${error.message}`;
  if (error instanceof WebAssembly.RuntimeError) return `a wasm trap: ${error.message}`;
  if (!(error instanceof Error)) return `a non-Error was thrown: ${String(error)}`;
  if (!LIBRARY_ERRORS.has(error.name)) return `an untyped error: ${error.name}: ${error.message}`;
  // fetch's own refusals (code INVALID_REQUEST) and network failures carry the runtime's message.
  const fromFetch = error.code === "INVALID_REQUEST" || error.code === "NETWORK";
  if (!fromFetch && /TypeError|RangeError/.test(error.name) && !/ must | required|unknown option|could not be read/.test(error.message)) {
    return `an error that does not say what is wrong: ${error.name}: ${error.message}`;
  }
  return null;
}

/** Settles `work` within `ms` or reports a hang. */
async function bounded(work, ms) {
  let timer;
  const hang = new Promise((resolve) => (timer = setTimeout(() => resolve({ hung: true }), ms)));
  try {
    return await Promise.race([work.then((value) => ({ value }), (error) => ({ error })), hang]);
  } finally {
    clearTimeout(timer);
  }
}

async function drain(stream) {
  for await (const _ of stream);
}

/** Outcome of constructing a client, comparable across runs: "ok" or the error's name and message. */
function construct(options) {
  try {
    new ResilientClient(options);
    return "ok";
  } catch (error) {
    return `${error?.name}: ${error?.message}`;
  }
}

const EVENT_TYPES = ["request", "response", "retry", "breaker", "cache", "rateLimited", "fallback", "budget", "error"];

/** A client whose listeners call it back (every method, free() aside) from inside random events. */
function reentrantClient(gen) {
  const client = new ResilientClient({
    retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 1 },
    breaker: { failureThreshold: 2 },
    cache: true,
    targets: [{ provider: "openai", baseUrl: CLOSED, model: "m", apiKey: "k" }],
  });
  let calls = 0;
  for (const type of EVENT_TYPES) {
    if (!gen.chance(0.5)) continue;
    client.on(type, () => {
      // Bounded: each call's own events would otherwise call again, forever.
      if (calls++ > 20) throw new Planted("a listener that throws");
      const call = gen.pick([
        () => client.fetch(`${CLOSED}/v1/${calls}`),
        () => client.chat({ messages: [{ role: "user", content: "again" }] }),
        () => client.clearCache(),
        () => client.stats(),
        () => client.metrics(),
        () => client.on(gen.pick(EVENT_TYPES), () => {})(),
      ])();
      if (call instanceof Promise) call.catch(() => {});
      if (gen.chance(0.3)) throw new Planted("a listener that throws");
    });
  }
  return client;
}

/**
 * Runs `cases` seeded cases; returns { cases, outcomes, problems } where problems lists the
 * unacceptable outcomes (with the seed and case number to replay them).
 */
export async function fuzzBoundary({ cases = 2000, seed = 1 } = {}) {
  const random = mulberry32(seed);
  const gen = generator(random);
  const outcomes = {};
  const problems = [];
  // Clients are freed as each case ends: left to the garbage collector, their memory would look like
  // a leak.
  const clients = [];
  const client = (options) => {
    const made = new ResilientClient(options);
    clients.push(made);
    return made;
  };
  // Measured once the background work has settled and the garbage collector has run (listeners'
  // unsubscribe functions and other JS handles free their wasm side when collected).
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc");
  const memory = async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
    const bytes = client().stats().memory.wasmBytes;
    for (const made of clients.splice(0)) made.free();
    return bytes;
  };
  let warm;
  const note = (kind, outcome) => {
    const key = `${kind}: ${outcome.hung ? "hung" : outcome.error ? (outcome.error.name ?? typeof outcome.error) : "ok"}`;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  };
  for (let n = 0; n < cases; n++) {
    const surface = gen.pick(["options", "options", "chat", "chatStream", "fetch", "polluted", "reentrant"]);
    if (process.env.FUZZ_TRACE) console.error(n, surface);
    const work = (async () => {
      if (surface === "options") {
        const options = gen.options();
        if (process.env.FUZZ_TRACE) console.error(inspect(options, { depth: 4, showProxy: true }).slice(0, 2000));
        return client(options);
      }
      if (surface === "polluted") {
        // The same options, with and without a value on Object.prototype: the same outcome.
        const options = gen.options();
        const clean = construct(options);
        const key = gen.pick(POLLUTED);
        Object.prototype[key] = gen.pick([7, false, "x", { retry: false }, []]);
        let polluted;
        try {
          polluted = construct(options);
        } finally {
          delete Object.prototype[key];
        }
        if (polluted !== clean) throw new Error(`Object.prototype.${key} changed the outcome: ${clean} -> ${polluted}`);
        return;
      }
      if (surface === "reentrant") {
        const reentrant = reentrantClient(gen);
        clients.push(reentrant);
        const response = await reentrant.fetch(`${CLOSED}/v1/first`).catch((error) => error);
        if (response instanceof WebAssembly.RuntimeError) throw response;
        return;
      }
      const target = client({
        retry: false,
        targets: [{ provider: "openai", baseUrl: CLOSED, model: "m", apiKey: "k" }],
      });
      if (surface === "chat") return target.chat(gen.chatRequest());
      if (surface === "chatStream") {
        const stream = target.chatStream(gen.chatRequest());
        stream.result.catch(() => {});
        return drain(stream);
      }
      const response = await target.fetch(gen.input(), gen.init());
      return response.status;
    })();
    const outcome = await bounded(work, 5000);
    note(surface, outcome);
    const problem = outcome.hung ? "hung for 5 s" : outcome.error ? unacceptable(outcome.error) : null;
    if (problem) problems.push({ seed, case: n, surface, problem });
    // The instance must still be healthy.
    try {
      const healthy = client({ retry: { maxRetries: 1 } });
      if (typeof healthy.stats().requests !== "number") throw new Error("stats() broke");
    } catch (error) {
      problems.push({ seed, case: n, surface, problem: `the module is broken after this case: ${error}` });
      break;
    }
    for (const made of clients.splice(0)) made.free();
    if (n === Math.min(200, cases - 1)) warm = await memory();
  }
  // Wasm memory never shrinks: past the first cases (the allocator's working set), it stays flat.
  const grown = (await memory()) - warm;
  if (grown > MEMORY_SLACK) problems.push({ seed, problem: `wasm memory grew by ${grown} bytes after the first 200 cases` });
  return { cases, seed, outcomes, problems, memoryGrowth: grown };
}

/** Growth of wasm memory allowed after the first 200 cases: eight 64 KiB pages, the allocator's
 * working set varying with the background work in flight (measured: at most five over 4,000 cases). */
const MEMORY_SLACK = 8 * 65536;

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const started = performance.now();
  const result = await fuzzBoundary({ cases: arg("cases", 20000), seed: arg("seed", 1) });
  console.log(`${result.cases} cases (seed ${result.seed}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(JSON.stringify(result.outcomes, null, 1));
  for (const p of result.problems.slice(0, 20)) console.log("PROBLEM", JSON.stringify(p));
  console.log(result.problems.length === 0 ? "no problem found" : `${result.problems.length} problem(s)`);
  process.exit(result.problems.length === 0 ? 0 : 1);
}
