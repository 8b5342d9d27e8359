#!/usr/bin/env node
/**
 * Limits soak: the two features that keep a chat call from hammering a provider that said no, each
 * run with the feature on and off against the same mock, on the same seed and the same schedule.
 *
 *   node tests/js/soak/limits.mjs [--requests 300] [--concurrency 8] [--limit 20/1s] [--seed 42]
 *        [--outage-ms 5000] [--streams 200] [--cut-rate 0.5] [--json]
 *
 * 1. Learned rate limits. Target `a` has a server-side limit (`--limit`, the mock's `limit` fault: a
 *    bucket refilling continuously, reporting what is left in OpenAI's headers, 429 past it); target
 *    `b` has none. `--requests` chat() calls, `--concurrency` at a time, as fast as they go: counted are
 *    the 429s `a` sent, the calls each target answered, failures, and the wall time. Off:
 *    `targets[0].learnLimits: false`.
 * 2. A full outage waited out. Both targets fail (503) for `--outage-ms`, 1 s into a steady stream of
 *    calls (4 at a time) that lasts until 2 s after the outage. Breakers open after 5 failures and probe
 *    after 1 s. Counted: the calls started during the outage, and how many of them succeeded; all
 *    calls and successes. Off: `fallback.maxWaitMs: 0`.
 * 3. Mid-stream fallback. `--streams` chatStream() calls, 8 at a time, to an OpenAI-compatible primary
 *    whose streams are cut after 1..5 chunks with probability `--cut-rate` (the mock's `resetRate`) and
 *    cannot be resumed on it (`retry.resumeStreams: false`), with an Anthropic backup. Counted: streams
 *    completed, those continued by the backup, failed, and intact (the deltas joined equal the mock's
 *    whole answer: every word once). Off: `fallback.midStream` unset.
 *
 * Both use the chaos soak's retry and timeout overrides (retry.baseDelayMs 50, maxDelayMs 1000,
 * timeout.idleMs 1000, firstByteMs 2000); everything else is the library's default.
 */
import { ResilientClient } from "sturdy-llm";
import { startMockLlm } from "../../../www/mock-llm.mjs";
import { pathToFileURL } from "node:url";
import { readFlags } from "./flags.mjs";

export const LIMITS_DEFAULTS = { requests: 300, concurrency: 8, limit: "20/1s", seed: 42, outageMs: 5000, streams: 200, cutRate: 0.5 };
const OVERRIDES = { retry: { baseDelayMs: 50, maxDelayMs: 1000 }, timeout: { idleMs: 1000, firstByteMs: 2000 } };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const targetOn = (mock, name, extra = {}) =>
  ({ name, provider: "openai", baseUrl: `${mock.url}/t/${name}/v1`, apiKey: "sk-soak", model: "mock-1", ...extra });
const ask = (client, i) => client.chat({ messages: [{ role: "user", content: `call ${i}` }] });

async function learning(o, learn) {
  const mock = await startMockLlm({ port: 0, seed: o.seed });
  try {
    mock.setFaults({ target: "a", limit: o.limit });
    const client = new ResilientClient({
      ...OVERRIDES,
      targets: [targetOn(mock, "a", { learnLimits: learn }), targetOn(mock, "b")],
    });
    const answered = { a: 0, b: 0 };
    let failed = 0;
    let next = 0;
    const started = Date.now();
    const worker = async () => {
      while (next < o.requests) {
        const i = next++;
        try {
          answered[(await ask(client, i)).target]++;
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const stats = mock.stats().byTarget;
    return {
      feature: learn ? "on" : "off",
      received429: stats.a?.byStatus?.["429"] ?? 0,
      sentToA: stats.a?.total ?? 0,
      answeredByA: answered.a,
      answeredByB: answered.b,
      failed,
      refusedLocally: client.stats().rejected.rateLimit,
      wallMs: Date.now() - started,
    };
  } finally {
    await mock.close();
  }
}

async function outage(o, wait) {
  const mock = await startMockLlm({ port: 0, seed: o.seed });
  try {
    const client = new ResilientClient({
      ...OVERRIDES,
      targets: [targetOn(mock, "a"), targetOn(mock, "b")],
      breaker: { resetTimeoutMs: 1000 },
      fallback: { maxWaitMs: wait ? o.outageMs : 0 },
    });
    const begin = Date.now();
    const [from, to, end] = [1000, 1000 + o.outageMs, 1000 + o.outageMs + 2000];
    const down = (on) => ["a", "b"].forEach((target) => mock.setFaults({ target, outage: on }));
    const timers = [setTimeout(() => down(true), from), setTimeout(() => down(false), to)];
    const calls = [];
    let i = 0;
    const worker = async () => {
      while (Date.now() - begin < end) {
        const at = Date.now() - begin;
        const ok = await ask(client, i++).then(() => true, () => false);
        calls.push({ at, ok });
        if (!ok) await sleep(50);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    timers.forEach(clearTimeout);
    const during = calls.filter((c) => c.at >= from && c.at < to);
    return {
      feature: wait ? "on" : "off",
      startedDuringOutage: during.length,
      succeededDuringOutage: during.filter((c) => c.ok).length,
      calls: calls.length,
      succeeded: calls.filter((c) => c.ok).length,
    };
  } finally {
    await mock.close();
  }
}

async function midStream(o, on) {
  const mock = await startMockLlm({ port: 0, seed: o.seed });
  try {
    mock.setFaults({ target: "a", resetRate: o.cutRate });
    const client = new ResilientClient({
      ...OVERRIDES,
      retry: { ...OVERRIDES.retry, resumeStreams: false },
      targets: [targetOn(mock, "a"), targetOn(mock, "b", { provider: "anthropic", model: "mock-2" })],
      ...(on ? { fallback: { midStream: true } } : {}),
    });
    const reference = new ResilientClient({ targets: [targetOn(mock, "ref")] });
    const counts = { completed: 0, continued: 0, failed: 0, intact: 0 };
    let next = 0;
    const started = Date.now();
    const worker = async () => {
      while (next < o.streams) {
        const messages = [{ role: "user", content: `stream ${next++}` }];
        const stream = client.chatStream({ messages });
        let text = "";
        try {
          for await (const delta of stream) text += delta.text;
          const result = await stream.result;
          counts.completed++;
          if (result.parts.length > 1) counts.continued++;
          if (text === (await reference.chat({ messages })).text) counts.intact++;
        } catch {
          counts.failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    return { feature: on ? "on" : "off", streams: o.streams, ...counts, wallMs: Date.now() - started };
  } finally {
    await mock.close();
  }
}

export async function runLimits(options = {}) {
  const o = { ...LIMITS_DEFAULTS, ...options };
  return {
    options: o,
    learning: [await learning(o, true), await learning(o, false)],
    outage: [await outage(o, true), await outage(o, false)],
    midStream: [await midStream(o, true), await midStream(o, false)],
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const options = readFlags(args, [["requests", "requests"], ["concurrency", "concurrency"], ["seed", "seed"],
    ["outage-ms", "outageMs"], ["streams", "streams"], ["cut-rate", "cutRate"]], [["limit", "limit"]]);
  const figures = await runLimits(options);
  if (args.includes("--json")) {
    console.log(JSON.stringify(figures, null, 2));
  } else {
    const o = figures.options;
    console.log(`limits soak: seed ${o.seed}; learned limits: ${o.requests} chat() calls, ${o.concurrency} at a time, target a limited to ${o.limit}`);
    console.table(figures.learning);
    console.log(`full outage: both targets down for ${o.outageMs} ms, 4 callers, breakers probe after 1 s`);
    console.table(figures.outage);
    console.log(`mid-stream fallback: ${o.streams} chatStream() calls, 8 at a time, primary cut with probability ${o.cutRate}, not resumable on it, Anthropic backup`);
    console.table(figures.midStream);
  }
}
