#!/usr/bin/env node
/**
 * Chaos soak: many chat calls through one ResilientClient against the mock LLM with seeded random
 * faults on ~30% of attempts, compared with plain fetch on the same seed, with invariants checked.
 *
 *   node tests/js/soak/chaos.mjs [--requests 5000] [--plain-requests <n>] [--concurrency 32] [--seed 42]
 *        [--fault-rate 0.30] [--fallback-fault-rate 0.10] [--watchdog-ms 30000]
 *        [--min-success <fraction>] [--json]
 *
 *   import { runChaos } from "./soak/chaos.mjs";  const figures = await runChaos({ requests: 600 });
 *
 * Setup. Two targets on one mock: `a` (first in the chain) fails `faultRate` of its attempts, `b`
 * `fallbackFaultRate`. The failures are the mock's seeded global faults, split (as shares of all
 * attempts) 40% errors (500/503/529), 27% 429 with Retry-After (100 ms), 13% stalls, 20% connection
 * resets; the mock's rates are conditional (precedence error > 429 > stall > reset), so they are
 * converted here to make the shares add up to the fault rate. Stream stalls and resets happen after
 * 1..5 chunks, i.e. after the first delta. Half of the calls are `chatStream()`, half `chat()`,
 * interleaved, each with its own prompt (so every answer is known: the mock echoes the prompt).
 *
 * Plain baseline: the same request mix (its first `plainRequests` calls, all by default), sent with
 * plain `fetch` straight to target `a` on the same seed, one attempt each, with the same first-byte/idle deadlines; a request counts as a success
 * when it got a 200 with the complete answer (complete stream ending in `data: [DONE]`).
 *
 * Invariants (the CLI exits 1 if one is broken, 2 if --min-success is missed):
 *   - no unhandled rejection (nor uncaught exception) during the run;
 *   - no streamed text delivered twice or altered: for every successful chatStream the concatenated
 *     deltas equal `result.text` and the mock's deterministic answer; for a failed one, the deltas are
 *     a prefix of that answer and equal `error.partialText` when the error has one; for chat(), the
 *     text equals the answer;
 *   - nothing left pending: every call (and every chatStream's `result`) settles within
 *     `watchdogMs` (a call still pending then is counted as hung);
 *   - every failure is typed: its `name` is one of the library's error names and its `code` one that
 *     name is documented with (tests/js/soak/typed.mjs; so are the `errors` of an AllTargetsFailedError).
 */
import { ResilientClient } from "sturdy-llm";
import { startMockLlm } from "../../../www/mock-llm.mjs";
import { pathToFileURL } from "node:url";
import { untypedIn } from "./typed.mjs";

export const CHAOS_DEFAULTS = {
  requests: 5000,
  concurrency: 32,
  seed: 42,
  faultRate: 0.3,
  fallbackFaultRate: 0.1,
  retryAfterMs: 100,
  /** A call not settled after this long is counted as hung (the longest legitimate call is ~20 s). */
  watchdogMs: 30_000,
  quiet: false,
};

/** What differs from the library's defaults (printed with the figures). */
export const CLIENT_OVERRIDES = {
  retry: { baseDelayMs: 50, maxDelayMs: 1000 },
  timeout: { idleMs: 1000, firstByteMs: 2000 },
};
const OVERRIDES_TEXT =
  "retry.baseDelayMs 50 (default 500), retry.maxDelayMs 1000 (default 8000), timeout.idleMs 1000 " +
  "(default: none), timeout.firstByteMs 2000 (default: none); everything else is the default " +
  "(maxRetries 2, full jitter, retry budget 20% + 10/s, breaker 5 consecutive failures / 50% of >= 5 " +
  "calls in 10 s, 30 s reset, attemptMs 600000, no rate limit, no cache)";

// ---------------------------------------------------------------------------------------------
// The mock's deterministic answer (mirrors buildAnswer() in www/mock-llm.mjs; checked against the
// live mock before every run, so a change there fails loudly instead of as text mismatches).
// ---------------------------------------------------------------------------------------------

const FILLER =
  "The mock model weighs each request with care and answers in calm, deterministic " +
  "filler text, so every client test sees the same words in the same order.";
const words = (text) => text.split(/\s+/).filter(Boolean);

export function expectedAnswer(prompt) {
  const w = words(prompt);
  const echo = w.slice(0, 24).join(" ") + (w.length > 24 ? " ..." : "");
  return words(`You said: "${echo}". ${FILLER}`).join(" ");
}

async function checkAnswerModel(url) {
  const prompt = "answer model check";
  const res = await fetch(`${url}/t/reference/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: prompt }] }),
  });
  const text = (await res.json()).choices[0].message.content;
  if (text !== expectedAnswer(prompt)) {
    throw new Error(`the mock's answer format changed: got ${JSON.stringify(text)}, expected ${JSON.stringify(expectedAnswer(prompt))}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/** Shares of all attempts, per kind of failure (they add up to 1). */
const FAULT_MIX = { error: 0.4, rate429: 4 / 15, stall: 2 / 15, reset: 0.2 };

/** The mock's conditional rates for a total fault rate `total` split as FAULT_MIX. */
export function faultConfig(target, seed, total, retryAfterMs) {
  const e = total * FAULT_MIX.error;
  const q = total * FAULT_MIX.rate429;
  const s = total * FAULT_MIX.stall;
  const r = total * FAULT_MIX.reset;
  return {
    target,
    seed,
    errorRate: e,
    errorStatuses: [500, 503, 529],
    rate429: q / (1 - e),
    retryAfterMs,
    stallRate: s / (1 - e - q),
    resetRate: r / (1 - e - q - s),
  };
}

function applyFaults(mock, o) {
  mock.reset();
  mock.setFaults(faultConfig("a", o.seed, o.faultRate, o.retryAfterMs));
  mock.setFaults(faultConfig("b", o.seed + 1, o.fallbackFaultRate, o.retryAfterMs));
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function latencies(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
}

const HUNG = Symbol("hung");

/** Runs `count` jobs with `concurrency` workers; a job still running after `watchdogMs` frees its worker. */
async function pool(count, concurrency, watchdogMs, job) {
  let next = 0;
  const hung = [];
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const running = job(i);
      let timer;
      const outcome = await Promise.race([
        running,
        new Promise((resolve) => {
          timer = setTimeout(() => resolve(HUNG), watchdogMs);
        }),
      ]);
      clearTimeout(timer);
      if (outcome === HUNG) hung.push({ index: i, running });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return hung;
}

const kindOf = (i) => (i % 2 === 0 ? "stream" : "chat");
const promptOf = (seed, i) => `chaos seed ${seed} request ${i} (${kindOf(i)})`;

function errorSummary(error) {
  if (error == null || typeof error !== "object") return { name: typeof error, message: String(error) };
  return {
    name: error.name,
    code: error.code,
    message: String(error.message).slice(0, 300),
    ...(Array.isArray(error.errors) ? { errors: error.errors.map((e) => `${e?.name}: ${String(e?.message).slice(0, 160)}`) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// One resilient call
// ---------------------------------------------------------------------------------------------

async function resilientStream(client, prompt, expected, rec, violations) {
  const stream = client.chatStream({ messages: [{ role: "user", content: prompt }] });
  const result = stream.result.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error }),
  );
  rec.resultPending = true;
  result.then(() => {
    rec.resultPending = false;
  });
  let text = "";
  let iterError = null;
  try {
    for await (const delta of stream) {
      text += delta.text;
      rec.deltas += 1;
    }
  } catch (error) {
    iterError = error;
  }
  rec.streamedText = text;
  const settled = await result;
  if (iterError === null) {
    if (!settled.ok) {
      violations.push({ index: rec.index, rule: "result", detail: `iteration ended cleanly but result rejected: ${settled.error?.name}: ${settled.error?.message}` });
      rec.outcome = "failed";
      rec.error = settled.error;
      return;
    }
    if (text !== settled.value.text || text !== expected) {
      violations.push({
        index: rec.index,
        rule: "text",
        detail: `streamed ${JSON.stringify(text)} / result.text ${JSON.stringify(settled.value.text)} / expected ${JSON.stringify(expected)}`,
      });
    }
    rec.outcome = "ok";
    rec.target = settled.value.target;
    rec.attempts = settled.value.attempts;
    return;
  }
  rec.outcome = "failed";
  rec.error = iterError;
  if (settled.ok) {
    violations.push({ index: rec.index, rule: "result", detail: `iteration failed (${iterError?.name}) but result resolved` });
  } else if (settled.error?.name !== iterError?.name) {
    violations.push({ index: rec.index, rule: "result", detail: `iteration failed with ${iterError?.name}, result with ${settled.error?.name}` });
  }
  if (!expected.startsWith(text)) {
    violations.push({ index: rec.index, rule: "text", detail: `deltas before the failure are not a prefix of the answer: ${JSON.stringify(text)}` });
  }
  if (typeof iterError?.partialText === "string" && iterError.partialText !== text) {
    violations.push({
      index: rec.index,
      rule: "text",
      detail: `${iterError.name}.partialText ${JSON.stringify(iterError.partialText)} != deltas ${JSON.stringify(text)}`,
    });
  }
  rec.midStream = text.length > 0 || (typeof iterError?.partialText === "string" && iterError.partialText.length > 0);
}

async function resilientChat(client, prompt, expected, rec, violations) {
  try {
    const result = await client.chat({ messages: [{ role: "user", content: prompt }] });
    if (result.text !== expected) {
      violations.push({ index: rec.index, rule: "text", detail: `chat() text ${JSON.stringify(result.text)} != ${JSON.stringify(expected)}` });
    }
    rec.outcome = "ok";
    rec.target = result.target;
    rec.attempts = result.attempts;
  } catch (error) {
    rec.outcome = "failed";
    rec.error = error;
  }
}

async function resilientPhase(mock, o, violations) {
  applyFaults(mock, o);
  const mkTarget = (name) => ({ name, provider: "openai", baseUrl: `${mock.url}/t/${name}/v1`, model: "m" });
  const client = new ResilientClient({ targets: [mkTarget("a"), mkTarget("b")], ...CLIENT_OVERRIDES });
  const transitions = [];
  const fallbacks = [];
  let retryEvents = 0;
  const t0 = performance.now();
  client.on("breaker", (e) => transitions.push({ key: e.key, from: e.from, to: e.to, atMs: Math.round(performance.now() - t0) }));
  client.on("fallback", (e) => fallbacks.push({ from: e.from, to: e.to, reason: e.reason }));
  client.on("retry", () => {
    retryEvents += 1;
  });

  const records = [];
  const hung = await pool(o.requests, o.concurrency, o.watchdogMs, async (i) => {
    const prompt = promptOf(o.seed, i);
    const rec = { index: i, kind: kindOf(i), outcome: "pending", deltas: 0, midStream: false, resultPending: false };
    records.push(rec);
    const started = performance.now();
    if (rec.kind === "stream") await resilientStream(client, prompt, expectedAnswer(prompt), rec, violations);
    else await resilientChat(client, prompt, expectedAnswer(prompt), rec, violations);
    rec.ms = performance.now() - started;
    rec.endMs = performance.now() - t0;
  });
  const elapsedMs = performance.now() - t0;
  // Snapshots: calls still hung keep running and, once the mock closes, fail over (not part of the run).
  const transitionsAtEnd = [...transitions];
  const fallbacksAtEnd = [...fallbacks];
  const retryEventsAtEnd = retryEvents;
  const stats = client.stats();
  const budgetRefusals = Number(/retry_budget_exhausted_total\S*\s+(\d+)/.exec(client.metrics())?.[1] ?? NaN);
  const mockStats = mock.stats();
  return { client, records, hung, elapsedMs, stats, budgetRefusals, transitions: transitionsAtEnd, fallbacks: fallbacksAtEnd, retryEvents: retryEventsAtEnd, mockStats };
}

// ---------------------------------------------------------------------------------------------
// Plain fetch baseline
// ---------------------------------------------------------------------------------------------

async function plainOne(url, prompt, stream, expected, { firstByteMs, idleMs }) {
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), firstByteMs);
  const arm = (ms) => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(), ms);
  };
  try {
    const res = await fetch(`${url}/t/a/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", stream, messages: [{ role: "user", content: prompt }] }),
      signal: controller.signal,
    });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      return `HTTP ${res.status}`;
    }
    const decoder = new TextDecoder();
    let body = "";
    for await (const chunk of res.body) {
      arm(idleMs);
      body += decoder.decode(chunk, { stream: true });
    }
    if (!stream) {
      try {
        return JSON.parse(body).choices[0].message.content === expected ? "ok" : "wrong text";
      } catch {
        return "bad JSON";
      }
    }
    let text = "";
    let done = false;
    for (const frame of body.split("\n\n")) {
      const data = frame.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data) continue;
      if (data === "[DONE]") done = true;
      else text += JSON.parse(data).choices?.[0]?.delta?.content ?? "";
    }
    if (!done) return "no [DONE]";
    return text === expected ? "ok" : "wrong text";
  } catch (error) {
    return controller.signal.aborted ? "timeout" : `${error?.name}${error?.cause?.code ? ` ${error.cause.code}` : ""}`;
  } finally {
    clearTimeout(timer);
  }
}

async function plainPhase(mock, o) {
  applyFaults(mock, o);
  const outcomes = new Map();
  const lat = [];
  const t0 = performance.now();
  const requests = o.plainRequests ?? o.requests;
  await pool(requests, o.concurrency, o.watchdogMs, async (i) => {
    const prompt = promptOf(o.seed, i);
    const started = performance.now();
    const outcome = await plainOne(mock.url, prompt, kindOf(i) === "stream", expectedAnswer(prompt), CLIENT_OVERRIDES.timeout);
    if (outcome === "ok") lat.push(performance.now() - started);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  });
  const ok = outcomes.get("ok") ?? 0;
  return {
    successes: ok,
    requests,
    successRate: ok / requests,
    outcomes: Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])),
    latencyMs: latencies(lat),
    elapsedMs: performance.now() - t0,
  };
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/**
 * Runs the soak and returns the figures: `{ options, resilient, plain, invariants, ok }`.
 * `invariants` lists the broken ones (empty when all hold); the caller decides what to do.
 */
export async function runChaos(options = {}) {
  const o = { ...CHAOS_DEFAULTS, ...options };
  const log = o.quiet ? () => {} : (...args) => console.error(...args);
  const unhandled = [];
  const onUnhandled = (reason) => unhandled.push(errorSummary(reason));
  const onUncaught = (error) => unhandled.push({ uncaught: true, ...errorSummary(error) });
  process.on("unhandledRejection", onUnhandled);
  process.on("uncaughtException", onUncaught);
  const mock = await startMockLlm({ port: 0, seed: o.seed });
  const violations = [];
  try {
    await checkAnswerModel(mock.url);
    log(`chaos: plain fetch baseline, ${o.plainRequests ?? o.requests} requests...`);
    const plain = await plainPhase(mock, o);
    log(`chaos: ResilientClient, ${o.requests} requests, concurrency ${o.concurrency}...`);
    const run = await resilientPhase(mock, o, violations);

    // Hung calls: give them a last look, then close the mock (which cuts their sockets) and see
    // how they settle, for the report.
    const hungDetail = [];
    if (run.hung.length > 0) {
      log(`chaos: ${run.hung.length} call(s) still pending after ${o.watchdogMs} ms; closing the mock to see how they end`);
    }
    const mockInFlightAtEnd = mock.stats().inFlight;
    await mock.close();
    for (const { index, running } of run.hung) {
      const rec = run.records.find((r) => r.index === index);
      const late = await Promise.race([running.then(() => "settled"), sleep(5000).then(() => "still pending")]);
      hungDetail.push({
        index,
        kind: rec.kind,
        deltas: rec.deltas,
        afterMockClose: late === "settled" ? `${rec.outcome}: ${rec.error ? `${rec.error.name}: ${String(rec.error.message).slice(0, 200)}` : "ok"}` : late,
      });
      rec.outcome = "hung";
    }
    // Let late settlements (and their possible unhandled rejections) surface.
    await sleep(50);
    run.client.free();

    const recs = run.records;
    const count = (pred) => recs.filter(pred).length;
    const ok = recs.filter((r) => r.outcome === "ok");
    const failed = recs.filter((r) => r.outcome === "failed");
    const hung = recs.filter((r) => r.outcome === "hung");
    const midStream = failed.filter((r) => r.midStream);
    const failuresByName = {};
    for (const r of failed) {
      const key = `${r.kind} ${r.error?.name}${r.error?.code ? `/${r.error.code}` : ""}${r.midStream ? " (mid-stream)" : ""}`;
      failuresByName[key] = (failuresByName[key] ?? 0) + 1;
    }
    const untyped = [];
    for (const r of failed) {
      const bad = untypedIn(r.error);
      if (bad.length) untyped.push({ index: r.index, kind: r.kind, bad, error: errorSummary(r.error) });
    }
    const transitionsByKind = {};
    for (const t of run.transitions) {
      const key = `${t.key} ${t.from}->${t.to}`;
      transitionsByKind[key] = (transitionsByKind[key] ?? 0) + 1;
    }
    const fallbackReasons = {};
    for (const f of run.fallbacks) fallbackReasons[f.reason || "(empty)"] = (fallbackReasons[f.reason || "(empty)"] ?? 0) + 1;
    const settledCount = ok.length + failed.length;
    const resilient = {
      requests: o.requests,
      successes: ok.length,
      successRate: ok.length / o.requests,
      byKind: Object.fromEntries(
        ["stream", "chat"].map((kind) => [
          kind,
          {
            requests: count((r) => r.kind === kind),
            successes: count((r) => r.kind === kind && r.outcome === "ok"),
            failures: count((r) => r.kind === kind && r.outcome === "failed"),
            hung: count((r) => r.kind === kind && r.outcome === "hung"),
          },
        ]),
      ),
      // chatStreams that failed after their first delta: cuts the resumptions (up to maxRetries,
      // checked against the text already delivered) did not recover, and in-band errors.
      midStreamFailures: midStream.length,
      successRateExcludingMidStream: ok.length / Math.max(1, o.requests - midStream.length),
      hung: hung.length,
      successRateExcludingMidStreamAndHung: ok.length / Math.max(1, o.requests - midStream.length - hung.length),
      failuresByName,
      answeredBy: { a: count((r) => r.target === "a"), b: count((r) => r.target === "b") },
      attempts: { mean: ok.reduce((s, r) => s + (r.attempts ?? 0), 0) / Math.max(1, ok.length), max: Math.max(0, ...ok.map((r) => r.attempts ?? 0)) },
      retries: run.stats.retries,
      retryEvents: run.retryEvents,
      retriesRefusedByBudget: run.budgetRefusals,
      fallbacks: run.fallbacks.length,
      fallbackReasons,
      breakerTransitions: run.transitions.length,
      breakerTransitionsByKind: transitionsByKind,
      breakerTimeline: run.transitions.slice(0, 40),
      latencyMs: latencies(ok.map((r) => r.ms)),
      latencyMsByKind: {
        stream: latencies(ok.filter((r) => r.kind === "stream").map((r) => r.ms)),
        chat: latencies(ok.filter((r) => r.kind === "chat").map((r) => r.ms)),
      },
      libraryStats: {
        requests: run.stats.requests,
        successes: run.stats.successes,
        failures: run.stats.failures,
        retries: run.stats.retries,
        rejected: run.stats.rejected,
        breakers: run.stats.breakers,
        latencyMs: run.stats.latencyMs,
      },
      mock: {
        attempts: Object.fromEntries(Object.entries(run.mockStats.byTarget).map(([t, s]) => [t, s.total])),
        byStatus: Object.fromEntries(Object.entries(run.mockStats.byTarget).map(([t, s]) => [t, s.byStatus])),
        byFault: run.mockStats.byFault,
        inFlightAtEnd: mockInFlightAtEnd,
      },
      elapsedMs: Math.round(run.elapsedMs),
      // Without the watchdog's wait for hung calls.
      lastSettledMs: Math.round(Math.max(0, ...recs.filter((r) => r.outcome !== "hung").map((r) => r.endMs ?? 0))),
    };

    const invariants = [];
    if (unhandled.length) invariants.push({ rule: "no unhandled rejection", count: unhandled.length, examples: unhandled.slice(0, 5) });
    const textViolations = violations.filter((v) => v.rule === "text");
    if (textViolations.length) invariants.push({ rule: "no streamed text delivered twice or altered", count: textViolations.length, examples: textViolations.slice(0, 5) });
    const resultViolations = violations.filter((v) => v.rule === "result");
    if (resultViolations.length) invariants.push({ rule: "result agrees with the iteration", count: resultViolations.length, examples: resultViolations.slice(0, 5) });
    const pendingResults = recs.filter((r) => r.outcome !== "hung" && r.resultPending).length;
    if (hung.length || settledCount + hung.length !== o.requests || pendingResults) {
      invariants.push({
        rule: "no request left pending",
        count: hung.length + pendingResults,
        detail: `${settledCount} of ${o.requests} calls settled within ${o.watchdogMs} ms; ${hung.length} hung; ${pendingResults} chatStream result promise(s) pending`,
        examples: hungDetail.slice(0, 8),
        hungByKind: { stream: hung.filter((r) => r.kind === "stream").length, chat: hung.filter((r) => r.kind === "chat").length },
      });
    }
    if (untyped.length) invariants.push({ rule: "every failure typed", count: untyped.length, examples: untyped.slice(0, 5) });

    return {
      options: o,
      overrides: OVERRIDES_TEXT,
      faults: { a: faultConfig("a", o.seed, o.faultRate, o.retryAfterMs), b: faultConfig("b", o.seed + 1, o.fallbackFaultRate, o.retryAfterMs) },
      resilient,
      plain,
      invariants,
      ok: invariants.length === 0,
    };
  } finally {
    await mock.close();
    process.off("unhandledRejection", onUnhandled);
    process.off("uncaughtException", onUncaught);
  }
}

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

const pct = (x) => `${(100 * x).toFixed(2)}%`;

export function formatChaos(f) {
  const r = f.resilient;
  const p = f.plain;
  const lines = [];
  lines.push(`chaos soak: ${f.options.requests} requests (half chatStream, half chat), concurrency ${f.options.concurrency}, seed ${f.options.seed}`);
  lines.push(`faults: target a ${pct(f.options.faultRate)} of attempts, target b ${pct(f.options.fallbackFaultRate)}; shares 40% 500/503/529, 27% 429 (Retry-After ${f.options.retryAfterMs} ms), 13% stall, 20% reset (streams: after 1..5 chunks)`);
  lines.push(`client options differing from the defaults: ${f.overrides}`);
  lines.push("");
  lines.push("                              ResilientClient        plain fetch (target a, 1 attempt)");
  lines.push(`success rate                  ${pct(r.successRate).padEnd(22)} ${pct(p.successRate)}`);
  lines.push(`successes                     ${`${r.successes} of ${r.requests}`.padEnd(22)} ${p.successes} of ${p.requests}`);
  lines.push(`latency p50/p95/p99 (ok, ms)  ${`${r.latencyMs.p50.toFixed(0)} / ${r.latencyMs.p95.toFixed(0)} / ${r.latencyMs.p99.toFixed(0)}`.padEnd(22)} ${p.latencyMs.p50.toFixed(0)} / ${p.latencyMs.p95.toFixed(0)} / ${p.latencyMs.p99.toFixed(0)}`);
  lines.push(`wall time                     ${`${(r.elapsedMs / 1000).toFixed(1)} s`.padEnd(22)} ${(p.elapsedMs / 1000).toFixed(1)} s`);
  lines.push(`  (ResilientClient: last settled call at ${(r.lastSettledMs / 1000).toFixed(1)} s; the rest is the watchdog's wait for hung calls)`);
  lines.push("");
  lines.push(`by kind: stream ${JSON.stringify(r.byKind.stream)}, chat ${JSON.stringify(r.byKind.chat)}`);
  lines.push(`latency by kind (ok, ms): stream p50 ${r.latencyMsByKind.stream.p50.toFixed(0)} p95 ${r.latencyMsByKind.stream.p95.toFixed(0)}; chat p50 ${r.latencyMsByKind.chat.p50.toFixed(0)} p95 ${r.latencyMsByKind.chat.p95.toFixed(0)}`);
  lines.push(`mid-stream failures (after the first delta, not recovered by resumption): ${r.midStreamFailures}`);
  lines.push(`success rate excluding mid-stream cuts: ${pct(r.successRateExcludingMidStream)}; excluding mid-stream cuts and hung calls: ${pct(r.successRateExcludingMidStreamAndHung)}`);
  lines.push(`hung (not settled within ${f.options.watchdogMs} ms): ${r.hung}`);
  lines.push(`failures by type: ${JSON.stringify(r.failuresByName)}`);
  lines.push(`answered by: ${JSON.stringify(r.answeredBy)}; attempts per success: mean ${r.attempts.mean.toFixed(2)}, max ${r.attempts.max}`);
  lines.push(`retries: ${r.retries} (retry events ${r.retryEvents}; refused by the retry budget ${r.retriesRefusedByBudget})`);
  lines.push(`fallbacks: ${r.fallbacks} ${JSON.stringify(r.fallbackReasons)}`);
  lines.push(`breaker transitions: ${r.breakerTransitions} ${JSON.stringify(r.breakerTransitionsByKind)}`);
  lines.push(`library stats: ${JSON.stringify(r.libraryStats)}`);
  lines.push(`mock: ${JSON.stringify(r.mock)}`);
  lines.push(`plain outcomes: ${JSON.stringify(p.outcomes)}`);
  lines.push("");
  const target = 0.995;
  lines.push(
    r.successRate >= target
      ? `target >= 99.5% success: MET (${pct(r.successRate)})`
      : `target >= 99.5% success: MISSED (${pct(r.successRate)}); limited by ${r.midStreamFailures} mid-stream failures (IncompleteStreamError / idle TimeoutError after the first delta that resumption did not recover)` +
          `${r.hung ? `, ${r.hung} hung call(s)` : ""}, and ${r.requests - r.successes - r.midStreamFailures - r.hung} other failure(s)`,
  );
  if (f.invariants.length === 0) lines.push("invariants: all hold");
  for (const v of f.invariants) lines.push(`INVARIANT BROKEN: ${v.rule} (${v.count})${v.detail ? `: ${v.detail}` : ""}\n  ${JSON.stringify(v.examples ?? [], null, 0)}`);
  return lines.join("\n");
}

function parseArgs(argv) {
  const out = {};
  const flags = {
    "--requests": ["requests", Number],
    "--plain-requests": ["plainRequests", Number],
    "--concurrency": ["concurrency", Number],
    "--seed": ["seed", Number],
    "--fault-rate": ["faultRate", Number],
    "--fallback-fault-rate": ["fallbackFaultRate", Number],
    "--watchdog-ms": ["watchdogMs", Number],
    "--min-success": ["minSuccess", Number],
  };
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, inline] = argv[i].split("=", 2);
    if (flag === "--json") out.json = true;
    else if (flags[flag]) {
      const [key, parse] = flags[flag];
      out[key] = parse(inline ?? argv[++i]);
      if (!Number.isFinite(out[key])) throw new Error(`${flag} needs a number`);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  return out;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const { json, minSuccess, ...options } = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const figures = await runChaos({ ...options, quiet: json });
  figures.runSeconds = (performance.now() - started) / 1000;
  if (json) console.log(JSON.stringify(figures));
  else console.log(`${formatChaos(figures)}\ntotal run time: ${figures.runSeconds.toFixed(1)} s`);
  const missed = minSuccess !== undefined && figures.resilient.successRate < minSuccess;
  process.exit(figures.ok ? (missed ? 2 : 0) : 1);
}
