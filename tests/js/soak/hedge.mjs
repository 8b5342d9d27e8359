#!/usr/bin/env node
/**
 * Hedge soak: time to first token with a primary that is slow now and then, hedging off and on, against
 * the same mock on the same seed and the same schedule; then a burst of hedged calls all at once.
 *
 *   node tests/js/soak/hedge.mjs [--requests 400] [--concurrency 8] [--slow-rate 0.2] [--slow-ms 1500]
 *        [--after-ms 300] [--burst 2000] [--seed 42] [--json]
 *
 * 1. Time to first token. Target `a` is slow before its headers for `--slow-rate` of its requests
 *    (`--slow-ms`, the mock's `slowRate` fault, drawn from its seeded PRNG); target `b` is never slow.
 *    `--requests` chatStream() calls, `--concurrency` at a time: the time from each call to its first
 *    delta, p50 / p95 / p99 / max, with hedging off, with `hedge: { afterMs }` and with
 *    `hedge: { afterMs: "p95" }`. Also counted: hedges started and won, requests `b` received, requests
 *    the mock saw abandoned (the losers cancelled on the wire), failures.
 * 2. A burst: `--burst` chat() calls at once, `a` slow for all of them, `hedge: { afterMs: 50 }`.
 *    Counted: answers by each target, failures, hedges started and won, the requests left open at
 *    the mock once they all settled (should be 0), the wall time.
 *
 * The chaos soak's retry and timeout overrides apply (retry.baseDelayMs 50, maxDelayMs 1000,
 * timeout.idleMs 1000); everything else is the library's default.
 */
import { ResilientClient } from "sturdy-llm";
import { startMockLlm } from "../../../www/mock-llm.mjs";
import { pathToFileURL } from "node:url";
import { readFlags } from "./flags.mjs";

export const HEDGE_DEFAULTS = { requests: 400, concurrency: 8, slowRate: 0.2, slowMs: 1500, afterMs: 300, burst: 2000, seed: 42 };
const OVERRIDES = { retry: { baseDelayMs: 50, maxDelayMs: 1000 }, timeout: { idleMs: 1000 } };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const targetOn = (mock, name) =>
  ({ name, provider: "openai", baseUrl: `${mock.url}/t/${name}/v1`, apiKey: "sk-soak", model: "mock-1" });

/** Nearest-rank percentile of sorted `values`. */
const percentile = (values, p) => values[Math.max(0, Math.ceil((values.length * p) / 100) - 1)] ?? 0;

async function firstTokens(o, hedge, label) {
  const mock = await startMockLlm({ port: 0, seed: o.seed });
  try {
    mock.setFaults({ target: "a", slowRate: o.slowRate, slowMs: o.slowMs });
    const client = new ResilientClient({ ...OVERRIDES, targets: [targetOn(mock, "a"), targetOn(mock, "b")], hedge });
    const times = [];
    let failed = 0;
    let next = 0;
    const worker = async () => {
      while (next < o.requests) {
        const i = next++;
        const started = performance.now();
        try {
          const stream = client.chatStream({ messages: [{ role: "user", content: `call ${i}` }] });
          let first;
          for await (const delta of stream) {
            if (first === undefined && delta.text) first = performance.now() - started;
          }
          await stream.result;
          times.push(first ?? performance.now() - started);
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    times.sort((x, y) => x - y);
    const stats = mock.stats().byTarget;
    const { hedges } = client.stats();
    return {
      hedge: label,
      p50Ms: Math.round(percentile(times, 50)),
      p95Ms: Math.round(percentile(times, 95)),
      p99Ms: Math.round(percentile(times, 99)),
      maxMs: Math.round(times.at(-1) ?? 0),
      slowAtA: mock.stats().byFault["global:slow"] ?? 0,
      hedgesStarted: hedges.started,
      hedgesWon: hedges.won,
      sentToB: stats.b?.total ?? 0,
      abandoned: (stats.a?.abandoned ?? 0) + (stats.b?.abandoned ?? 0),
      failed,
    };
  } finally {
    await mock.close();
  }
}

async function burst(o) {
  const mock = await startMockLlm({ port: 0, seed: o.seed });
  try {
    mock.setFaults({ target: "a", latencyMs: o.slowMs });
    const client = new ResilientClient({ ...OVERRIDES, targets: [targetOn(mock, "a"), targetOn(mock, "b")], hedge: { afterMs: 50 } });
    const started = Date.now();
    const settled = await Promise.allSettled(
      Array.from({ length: o.burst }, (_, i) => client.chat({ messages: [{ role: "user", content: `burst ${i}` }] })),
    );
    const wallMs = Date.now() - started;
    for (let i = 0; i < 100 && mock.stats().inFlight > 0; i++) await sleep(20);
    const answered = { a: 0, b: 0 };
    for (const s of settled) if (s.status === "fulfilled") answered[s.value.target]++;
    const { hedges, failures } = client.stats();
    return {
      calls: o.burst,
      answeredByA: answered.a,
      answeredByB: answered.b,
      failed: settled.filter((s) => s.status === "rejected").length,
      failuresCounted: failures,
      hedgesStarted: hedges.started,
      hedgesWon: hedges.won,
      abandonedAtA: mock.stats().byTarget.a?.abandoned ?? 0,
      leftOpen: mock.stats().inFlight,
      wallMs,
    };
  } finally {
    await mock.close();
  }
}

export async function runHedge(options = {}) {
  const o = { ...HEDGE_DEFAULTS, ...options };
  return {
    options: o,
    firstTokens: [
      await firstTokens(o, false, "off"),
      await firstTokens(o, { afterMs: o.afterMs }, `afterMs ${o.afterMs}`),
      await firstTokens(o, { afterMs: "p95" }, "p95"),
    ],
    burst: o.burst > 0 ? await burst(o) : null,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const options = readFlags(args, [["requests", "requests"], ["concurrency", "concurrency"], ["slow-rate", "slowRate"],
    ["slow-ms", "slowMs"], ["after-ms", "afterMs"], ["burst", "burst"], ["seed", "seed"]]);
  const figures = await runHedge(options);
  if (args.includes("--json")) {
    console.log(JSON.stringify(figures, null, 2));
  } else {
    const o = figures.options;
    console.log(`hedge soak: seed ${o.seed}; ${o.requests} chatStream() calls, ${o.concurrency} at a time; target a slow ` +
      `(${o.slowMs} ms before the headers) for ${o.slowRate * 100}% of its requests, target b never`);
    console.table(figures.firstTokens);
    if (figures.burst) {
      console.log(`burst: ${o.burst} chat() calls at once, a ${o.slowMs} ms late for all, hedge afterMs 50`);
      console.table([figures.burst]);
    }
  }
}
