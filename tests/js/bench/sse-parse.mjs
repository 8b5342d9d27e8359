// Benchmark: events/s and MB/s of the wasm SseParser ("sturdy-llm") versus eventsource-parser (v3, pure JS)
// on the same inputs in the same run, and a correctness check: both must see the same number of events
// carrying the same total data length.
//   node tests/js/bench/sse-parse.mjs [--seconds 1] [--quick]      (or: import { run } from "./sse-parse.mjs")
// Inputs (built once, pre-split into chunks, so neither building nor splitting is measured):
//   (a) an OpenAI-shaped chat completion stream of ~10 MB, fed in 1 KiB chunks;
//   (b) a few single-line image-delta-like events of 1 to 8 MB each (48 MB in all), in 16 KiB chunks;
//   (c) the stream of (a) in 64-byte chunks.
// Each parser is used as its docs say: SseParser is fed the bytes; eventsource-parser is fed the strings a
// streaming TextDecoder makes of them. Per input and parser: one warm-up pass, then timed passes (at least 3,
// and at least --seconds in all), interleaved between the two parsers; the medians are compared.
// The floor of (b): one TextDecoder over the whole 48 MB (making the strings, with no parsing at all).
// MB = 10^6 bytes of input. Quick mode (--quick or BENCH_QUICK=1): at least 0.3 s per input and parser.
import { pathToFileURL } from "node:url";
import { createParser } from "eventsource-parser";
import { SseParser } from "sturdy-llm";

const MIN_PASSES = 3;
const MB = 1e6;
const KiB = 1024;

// ---- inputs ----

// A small deterministic PRNG (mulberry32), so every run parses the same bytes.
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

// Some multi-byte words, so small chunks also split UTF-8 characters.
const WORDS = ("the a of to and in is that for it on with as was be by this are or at from " +
  "model token stream retry breaker latency answer question résumé naïve 東京 données 🚀 ok").split(" ");

// `data: {...chat.completion.chunk...}\n\n` events, a new completion every 200 of them, then `data: [DONE]`.
function openAiChatStream(targetBytes) {
  const random = prng(1);
  const parts = [];
  let bytes = 0;
  let id = "";
  let created = 1_700_000_000;
  for (let i = 0; bytes < targetBytes; i++) {
    if (i % 200 === 0) {
      id = `chatcmpl-${Math.floor(random() * 2 ** 52).toString(36)}`;
      created += 17;
    }
    const word = WORDS[Math.floor(random() * WORDS.length)];
    const chunk = { id, object: "chat.completion.chunk", created, model: "gpt-4o-mini",
      choices: [{ index: 0, delta: { content: `${word} ` }, finish_reason: null }] };
    const event = `data: ${JSON.stringify(chunk)}\n\n`;
    parts.push(event);
    bytes += Buffer.byteLength(event);
  }
  parts.push("data: [DONE]\n\n");
  return new TextEncoder().encode(parts.join(""));
}

// One `data: {"b64":"…"}\n\n` event per size, each line `megabytes` MB long.
function imageDeltaStream(sizesInMB) {
  const random = prng(2);
  const events = sizesInMB.map((megabytes) => {
    const prefix = 'data: {"b64":"';
    const suffix = '"}\n\n';
    const base64Length = megabytes * MB - prefix.length - suffix.length;
    const raw = Buffer.alloc(Math.ceil((base64Length * 3) / 4));
    for (let i = 0; i < raw.length; i++) raw[i] = random() * 256;
    return prefix + raw.toString("base64").slice(0, base64Length) + suffix;
  });
  return new TextEncoder().encode(events.join(""));
}

function split(bytes, chunkSize) {
  const chunks = [];
  for (let at = 0; at < bytes.length; at += chunkSize) chunks.push(bytes.subarray(at, at + chunkSize));
  return chunks;
}

// ---- the two parsers: each pass parses every chunk and consumes every event ----

function runSseParser(chunks) {
  // Events of (b) are up to 8 MB: past the default bound of 1 MiB, which a caller raises so.
  const parser = new SseParser({ maxEventBytes: 16 * MB });
  const tally = { events: 0, dataLength: 0 };
  const consume = (events) => {
    for (const event of events) {
      tally.events++;
      tally.dataLength += event.data.length;
    }
  };
  for (const chunk of chunks) consume(parser.feed(chunk));
  consume(parser.end());
  parser.free();
  return tally;
}

function runEventsourceParser(chunks) {
  const tally = { events: 0, dataLength: 0 };
  const parser = createParser({
    onEvent(event) {
      tally.events++;
      tally.dataLength += event.data.length;
    },
  });
  const decoder = new TextDecoder();
  for (const chunk of chunks) parser.feed(decoder.decode(chunk, { stream: true }));
  const rest = decoder.decode();
  if (rest !== "") parser.feed(rest);
  return tally;
}

const PARSERS = [
  { name: "SseParser", run: runSseParser },
  { name: "eventsource-parser", run: runEventsourceParser },
];

// ---- measuring ----

function timedPass(parser, chunks) {
  const started = performance.now();
  const tally = parser.run(chunks);
  return { ms: performance.now() - started, tally };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function assertSameTally(input, expected, actual, who) {
  if (actual.events !== expected.events || actual.dataLength !== expected.dataLength) {
    throw new Error(`${input}: ${who} saw ${actual.events} events / ${actual.dataLength} data chars, ` +
      `expected ${expected.events} / ${expected.dataLength}`);
  }
}

// A warm-up pass per parser, then timed passes, interleaved so drift in the machine's speed hits both,
// until each parser has run at least MIN_PASSES passes and MIN_SECONDS in all.
function measure(input, MIN_SECONDS) {
  const sides = PARSERS.map((parser) => ({ parser, tally: timedPass(parser, input.chunks).tally, times: [] }));
  const reference = sides[0].tally;
  assertSameTally(input.name, reference, sides[1].tally, sides[1].parser.name);
  const needsMore = (side) =>
    side.times.length < MIN_PASSES || side.times.reduce((a, b) => a + b, 0) < MIN_SECONDS * 1000;
  while (sides.some(needsMore)) {
    for (const side of sides.filter(needsMore)) {
      const { ms, tally } = timedPass(side.parser, input.chunks);
      assertSameTally(input.name, reference, tally, side.parser.name);
      side.times.push(ms);
    }
  }
  return sides.map(({ parser, times }) => {
    const seconds = median(times) / 1000;
    return { name: parser.name, passes: times.length, events: reference.events,
      eventsPerSecond: reference.events / seconds, mbPerSecond: input.bytes.length / MB / seconds };
  });
}

// ---- report ----

const fmt = (x) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3));

function printTable(rows) {
  const header = ["input", "SseParser events/s", "MB/s", "eventsource-parser events/s", "MB/s", "ratio"];
  const cells = rows.map(({ name, ours: wasm, peer: js }) => [name, fmt(wasm.eventsPerSecond),
    fmt(wasm.mbPerSecond), fmt(js.eventsPerSecond), fmt(js.mbPerSecond), `${(wasm.mbPerSecond / js.mbPerSecond).toFixed(2)}x`]);
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((row) => row[i].length)));
  const line = (row) => `| ${row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, i) => "-".repeat(w + 1) + (i === 0 ? "-" : ":")).join("|")}|`);
  for (const row of cells) console.log(line(row));
}

/** The string floor of (b): one TextDecoder over the whole input, the least any parser that hands out
 * the data as JS strings must do (median MB/s of passes over at least `minSeconds`). */
function stringFloor(bytes, minSeconds) {
  const times = [];
  let length = 0;
  for (let spent = 0; times.length < MIN_PASSES || spent < minSeconds * 1000; ) {
    const started = performance.now();
    length += new TextDecoder().decode(bytes).length;
    times.push(performance.now() - started);
    spent += times.at(-1);
  }
  if (length === 0) throw new Error("decoded nothing");
  return { name: "TextDecoder over the whole input", passes: times.length, mbPerSecond: bytes.length / MB / (median(times) / 1000) };
}

/** Runs the three inputs; returns per input the throughput of both parsers and the ratio (ours / peer). */
export async function run({ seconds, quick = process.env.BENCH_QUICK === "1" } = {}) {
  const minSeconds = seconds ?? (quick ? 0.3 : 1);
  const chat = openAiChatStream(10 * MB);
  const images = imageDeltaStream([8, 1, 6, 3, 7, 2, 5, 4, 8, 4]);
  const INPUTS = [
    { key: "a", name: "(a) chat ~10 MB, 1 KiB chunks", bytes: chat, chunks: split(chat, KiB) },
    { key: "b", name: "(b) image deltas 48 MB, 16 KiB chunks", bytes: images, chunks: split(images, 16 * KiB) },
    { key: "c", name: "(c) chat ~10 MB, 64 B chunks", bytes: chat, chunks: split(chat, 64) },
  ];
  const rows = INPUTS.map((input) => ({ input, results: measure(input, minSeconds) }));
  return {
    minSeconds,
    inputs: rows.map(({ input, results: [wasm, js] }) => ({
      key: input.key, name: input.name, chunks: input.chunks.length, ours: wasm, peer: js,
      ratio: wasm.mbPerSecond / js.mbPerSecond,
    })),
    floor: stringFloor(images, minSeconds),
  };
}

function print({ inputs, floor }) {
  printTable(inputs);
  const b = inputs.find((input) => input.key === "b");
  console.log(`(b) floor: ${floor.name} ${fmt(floor.mbPerSecond)} MB/s; SseParser at ${(b.ours.mbPerSecond / floor.mbPerSecond).toFixed(2)} of it (target >= 0.8)`);
  console.log("ratio = SseParser / eventsource-parser throughput (medians); target: >= 1.1 on (a).");
  for (const { name, chunks, ours: wasm, peer: js } of inputs) {
    console.log(`${name.slice(0, 3)} ${wasm.events.toLocaleString("en-US")} events, ${chunks.toLocaleString("en-US")} ` +
      `chunks; timed passes ${wasm.passes} / ${js.passes}; event counts and data lengths matched on every pass`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf("--seconds");
  print(await run({ seconds: i > 0 ? Number(process.argv[i + 1]) : undefined, quick: process.argv.includes("--quick") || undefined }));
}
