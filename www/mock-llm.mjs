/**
 * mock-llm — a zero-dependency mock LLM upstream (Node 20, ESM).
 *
 * It plays the provider side for the resilient-llm demo and for the tests:
 * deterministic answers, realistic wire formats, and injectable failures.
 *
 *   import { startMockLlm } from "./mock-llm.mjs";
 *   const mock = await startMockLlm({ port: 0 });   // -> { url, port, close, stats, reset, setFaults }
 *
 *   node www/mock-llm.mjs [--port N] [--host H] [--seed S]
 *
 * Endpoints (any of the first three may be prefixed with /t/<name>, e.g.
 * /t/primary/v1/chat/completions, so one server can act as several upstream
 * "targets"; the name, "default" without a prefix, scopes global faults and stats):
 *
 *   POST /v1/chat/completions   OpenAI Chat Completions (JSON, or SSE with "stream": true)
 *   POST /v1/messages           Anthropic Messages (JSON, or SSE with "stream": true)
 *   POST /v1/embeddings         OpenAI embeddings (see "Embeddings" below)
 *   GET  /health                {"ok":true}
 *   GET  /v1/events?count=N     a plain event stream (id: i / data: tick i, retry: 50) resuming after
 *                               Last-Event-ID, for reconnection tests
 *   POST /control/faults        set global faults (JSON, see below); GET returns them
 *   POST /control/reset         clear faults, per-key counters and stats
 *   GET  /control/last?target=<name>   the last completion request that target received, as sent:
 *                               { path, headers, body } (body as text; 404 when none yet)
 *   GET  /control/stats         { total, byTarget: { <name>: { total, byPath, byStatus, abandoned? } },
 *                               byFault, byIdempotencyKey, inFlight } — completion/unknown-path requests only
 *                               (not /control/*, /health or OPTIONS preflights); `abandoned` (there once
 *                               one happened): requests whose client closed the connection before the
 *                               answer was complete (an aborted fetch, a cancelled stream)
 *
 * Every response carries permissive CORS headers; OPTIONS preflights get a 204.
 *
 * Answers: `You said: "<last user message>". ` followed by a fixed filler, so
 * every answer is ~30 words (the echo collapses whitespace and keeps at most
 * 24 words). One word is one token: `max_tokens` keeps that many words and the
 * finish reason becomes "length" / "max_tokens" when that cut the answer short.
 * Prompt tokens are ceil(characters of all message contents, system included, / 4).
 * Streams send one chunk per word, 5 ms apart (header `x-mock-chunk-delay-ms` overrides).
 * `stop` / `stop_sequences` end the answer before a sequence's first occurrence (Anthropic:
 * stop_reason "stop_sequence"). Tools' JSON counts in the prompt tokens.
 *
 * Embeddings: deterministic bag-of-words vectors, so that texts sharing most of their words are
 * close (cosine) and unrelated texts are not. Each word (lowercased, split on what is not a letter,
 * digit or apostrophe, a few stopwords dropped) is hashed (FNV-1a) to one dimension and a sign; the
 * sum is L2-normalised (a text with no words hashes whole). 64 dimensions unless the request says
 * `dimensions` (1..4096); `encoding_format: "base64"` answers float32 little-endian bytes in base64
 * (header `x-mock-encoding: float` answers numbers anyway, as servers ignoring the field do); header
 * `x-mock-order: reverse` lists `data` in reverse (each item keeps its `index`). At most 2048 inputs;
 * `usage.prompt_tokens` = the sum of ceil(characters / 4), at least 1 per input. Faults and
 * `/control/last` work as for completions; `huge` and `malformed` mangle the JSON answer.
 *
 * Tools, both dialects, JSON and streamed. With tools, `tool_choice` "auto" (the default) calls each
 * tool the last user message mentions: its name, or every word of it but verbs like get/list
 * ("What time is it in Paris?" calls get_time); "required" / Anthropic "any" calls those or the first
 * tool; a tool forced by name is called alone; "none" never calls. Arguments fit the tool's JSON
 * Schema (a string property named city/location/place/... holds the place after "in"/"at"/"for", else
 * Paris); ids are derived from the request (call_<h> / toolu_<h>); parallel calls unless
 * parallel_tool_calls: false / disable_parallel_tool_use. OpenAI: message.tool_calls, finish_reason
 * "tool_calls", streamed as delta.tool_calls (id and name first, arguments in 8-character pieces).
 * Anthropic: a tool_use block per call, stop_reason "tool_use", streamed as content_block_start +
 * input_json_delta pieces + content_block_stop; an unforced call is preceded by a text block
 * ("I'll use get_time."), as Claude does. A conversation ending in tool results (OpenAI `tool`
 * messages, Anthropic `tool_result` blocks) is answered in words that use them
 * ("get_time says city: Paris, time: 14:05."), unless a tool is forced. Tool messages
 * must answer the calls before them, and images be http(s) or base64 data: a 400 otherwise, as the
 * real APIs do. `response_format` json_object / json_schema (Anthropic `output_format` /
 * `output_config.format`) is answered with JSON that fits the schema, streamed in 8-character pieces.
 *
 * Prefill, both dialects, JSON and streamed. A conversation ending in an assistant message of text
 * only (OpenAI: without tool_calls) asks the model to continue it: the answer is the mock's answer
 * to the conversation without that message, past the prefill when it starts with it (the prefill
 * may end anywhere, mid-word too), else all of it, as a model starting over would; only the new
 * text is sent, `max_tokens` and `stop` bound it, and its tokens are the pieces sent (the prefill
 * counts in the prompt tokens). Anthropic refuses a prefill ending in whitespace with a 400
 * ("final assistant content cannot end with trailing whitespace"), as the API does; a trimmed
 * prefill is continued with the whitespace the answer has there (" said" after "You").
 *
 * Prompt caching, per target, deterministic. The prompt is read in the provider's cache order
 * (Anthropic: tools, system, messages, block by block; OpenAI: the tools, then message by message);
 * a prefix's tokens are floor(its characters / 4), counted as the prompt tokens are. Anthropic: each
 * block with `cache_control` ({type:"ephemeral"}, at most 4: a 400 otherwise, as the API answers)
 * ends a cacheable prefix; the longest marked prefix seen before by that target is read
 * (`cache_read_input_tokens`), the rest up to the last mark written (`cache_creation_input_tokens`),
 * and `input_tokens` is what is left (the usage carries the two cache fields only when the request
 * has a mark; message_start carries them when streamed). There is no minimum length. OpenAI: every
 * message boundary of a prompt of 1024 tokens or more is remembered; a later prompt whose longest
 * remembered prefix is 1024 tokens or more reports it, rounded down to 128 tokens, as
 * `usage.prompt_tokens_details.cached_tokens` (included in prompt_tokens; the details are present
 * only for prompts of 1024 tokens or more). POST /control/reset forgets every cache.
 *
 * Per-request faults — header `x-mock-fault`, a `;`-separated list of `key=value`
 * or bare keys (an unknown key or bad value is answered with a 400):
 *
 *   status=<400..599>     reply with that status and a provider-shaped error body
 *   error=<type>          error type/code in that body, e.g. insufficient_quota,
 *                         context_length_exceeded, content_policy_violation,
 *                         overloaded_error; status defaults to 400 (429 for quota and
 *                         rate-limit types, 529 for overloaded_error, 5xx for server types)
 *   retry-after=<s|date>  set the Retry-After header (seconds or an HTTP date)
 *   retry-after-ms=<ms>   set the retry-after-ms header
 *   x-should-retry=<bool> set the x-should-retry header
 *   delay=<ms>            wait before sending the headers
 *   body-delay=<ms>       JSON: send the headers at once, the body this much later
 *   stall[=<n>]           stream: send n chunks (default 0), then go silent with the
 *                         socket open; JSON: send the headers, never the body
 *   reset[=<n>]           stream: send n chunks (default 0), then destroy the socket;
 *                         JSON: destroy the socket before sending anything
 *   malformed             stream: one chunk of invalid JSON after the first chunk, then
 *                         carry on; JSON: status 200 with a truncated body
 *   mid-stream-error      stream: after 2 chunks send a provider error event and end
 *   huge=<KiB>            JSON: a valid answer whose text is <KiB> KiB of "x"; stream: the first
 *                         huge-after=<n> chunks (default 1), then "data: " and <KiB> KiB of "x"
 *                         with no line end, then the end (written 64 KiB at a time as the socket
 *                         drains, never held whole)
 *   sampled               answer as a model sampling at temperature > 0 would: every
 *                         request a different answer ("Take <n>: " before the usual text)
 *   times=<n>;key=<id>    apply the rest only to the first n requests carrying this key
 *                         (without key=, the whole header value is the key)
 *
 * Global faults — POST /control/faults or setFaults(cfg), with
 *
 *   { target?, seed?, errorRate?, errorStatuses? = [500, 503], rate429?, retryAfterMs?,
 *     latencyMs?, stallRate?, resetRate?, outage?, paths?, limit?, slowRate?, slowMs? = 1500 }
 *
 * Without `target` the config is the default for every target; with one it
 * replaces the default for that target. Each config owns a mulberry32 PRNG
 * (seeded with `seed`, else the server seed) that draws six numbers per request,
 * in a fixed order, whatever the outcome — so a seed replays the same sequence.
 * Precedence: outage (503) > error (errorStatuses) > 429 (retry-after-ms and
 * Retry-After from retryAfterMs) > stall > reset (stream faults after 1..5 chunks).
 * latencyMs delays every request of the target. slowRate makes that fraction of its requests
 * slowMs slower before the headers (a queue at the provider: the long tail of time to first token),
 * whatever else they draw; a config with a slowRate draws a seventh number per request for it (after
 * the six), so configs without one replay as before. A request with an active
 * `x-mock-fault` header uses the header's faults instead (latency still applies).
 * `paths` (e.g. ["/v1/chat/completions"]) limits a config to requests on those paths: the others
 * get no global faults and draw nothing (a provider's chat endpoint down while its embeddings work).
 *
 * `limit: "<n>/<window>"` (window in ms, or with a unit: "5/1s", "60/1m") is a server-side rate
 * limit on the target, a bucket of n requests refilling continuously (n per window), as OpenAI's and
 * Anthropic's are. Every completion request the target answers without another fault takes one;
 * answers report what is left in the provider's dialect (OpenAI: x-ratelimit-limit-requests,
 * -remaining-requests, -reset-requests as a duration such as "1.5s"; Anthropic:
 * anthropic-ratelimit-requests-limit, -remaining, -reset as an RFC 3339 time), and past it the
 * target answers 429 rate_limit_exceeded with those headers and retry-after-ms.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import { pathToFileURL } from "node:url";

const FILLER =
  "The mock model weighs each request with care and answers in calm, deterministic " +
  "filler text, so every client test sees the same words in the same order.";
const MAX_ECHO_WORDS = 24;
const DEFAULT_CHUNK_DELAY_MS = 5;
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const DEFAULT_TARGET = "default";
const DEFAULT_MODEL = "mock-model";

const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-expose-headers": "*",
};
const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  connection: "keep-alive",
};

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/** mulberry32: tiny seeded PRNG returning floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Wait `ms`, waking early if the response closes (client gone, or server closing). */
function wait(ms, res) {
  if (!(ms > 0)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off("close", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.once("close", done);
  });
}

/** Resolves once `res` can take more (or is gone). */
function drained(res) {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** Writes `kib` KiB of "x" 64 KiB at a time, waiting for the socket to drain between writes. */
async function writeFiller(res, kib) {
  const piece = Buffer.alloc(64 * 1024, "x");
  for (let left = kib * 1024; left > 0 && isOpen(res); left -= piece.length) {
    if (!res.write(left >= piece.length ? piece : piece.subarray(0, left))) await drained(res);
  }
}

const isOpen = (res) =>
  !res.writableEnded && !res.destroyed && res.socket != null && !res.socket.destroyed;

function destroySocket(res) {
  res.resetByServer = true;
  (res.socket ?? res).destroy();
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, "request body too large"));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Parse a JSON object body; returns `{ body }` or `{ error }`. */
function parseJsonObject(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `invalid JSON body: ${err.message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { error: "request body must be a JSON object" };
  }
  return { body: value };
}

const sseFrame = (data, event) =>
  `${event ? `event: ${event}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;

// ---------------------------------------------------------------------------
// Deterministic answers
// ---------------------------------------------------------------------------

/** Text of a message content: a string, or an array of text parts/blocks (a tool_result's own content included). */
function textOf(content) {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((part) => (typeof part === "string" ? part : part?.text ?? textOf(part?.content))).join("");
}

const words = (text) => text.split(/\s+/).filter(Boolean);

/** The last user message's text; a user turn holding only tool results is skipped (it answers, it does not ask). */
function lastUserText(messages) {
  const isResults = (m) => Array.isArray(m.content) && m.content.length > 0 && m.content.every((b) => b?.type === "tool_result");
  const last = messages.filter((m) => m?.role === "user" && !isResults(m)).at(-1);
  return last ? textOf(last.content) : "";
}

/** ceil(characters / 4) over the system prompt, every message's text and the tools' JSON. */
function promptTokens(messages, system, tools) {
  const chars = messages.reduce((sum, m) => sum + textOf(m?.content).length, textOf(system).length);
  return Math.ceil((chars + (tools ? JSON.stringify(tools).length : 0)) / 4);
}

function echoOf(userText) {
  const echoWords = words(userText);
  return echoWords.slice(0, MAX_ECHO_WORDS).join(" ") + (echoWords.length > MAX_ECHO_WORDS ? " ..." : "");
}

/** Every word but the last keeps its trailing space, so pieces.join("") is exactly the text. */
const wordPieces = (text) => words(text).map((w, i, all) => (i < all.length - 1 ? `${w} ` : w));

/** Text cut into pieces of `size` code points (JSON, tool arguments): how a model streams it. */
function textPieces(text, size = 8) {
  const points = Array.from(text);
  return Array.from({ length: Math.ceil(points.length / size) }, (_, i) => points.slice(i * size, (i + 1) * size).join(""));
}

/**
 * A text answer from its pieces, one token each. A stop sequence ends it just before its first
 * occurrence (the sequence itself is not sent), then `maxTokens` keeps that many pieces (the last one
 * without its trailing space) and marks the cut.
 */
function piecesAnswer(all, { maxTokens, stop = [] }) {
  const full = all.join("");
  const [at, stopSequence] = stop
    .map((s) => [full.indexOf(s), s])
    .filter(([i]) => i >= 0)
    .sort((a, b) => a[0] - b[0])[0] ?? [full.length, undefined];
  const cut = [];
  for (let used = 0, i = 0; i < all.length && used < at; used += all[i].length, i += 1) {
    cut.push(all[i].slice(0, at - used));
  }
  const kept = maxTokens === undefined ? cut : cut.slice(0, maxTokens);
  const truncated = kept.length < cut.length;
  if (truncated) kept[kept.length - 1] = kept.at(-1).trimEnd(); // a cut word loses its trailing space
  return { pieces: kept, text: kept.join(""), truncated, stopSequence: truncated ? undefined : stopSequence, toolCalls: [], outputTokens: kept.length };
}

/**
 * The deterministic answer to a parsed request, in this order: the tool calls it asks for (see
 * toolCallsFor); JSON that fits the requested response format; words that use the tool results the
 * conversation ends with; else the echo and the filler.
 */
function buildAnswer(request, take = "") {
  const toolCalls = toolCallsFor(request);
  if (toolCalls.length) {
    // Claude says what it is about to do before an unforced tool call; an OpenAI model writes no content.
    const pieces = request.preamble ? wordPieces(`I'll use ${toolCalls.map((c) => c.name).join(" and ")}.`) : [];
    const argTokens = toolCalls.reduce((sum, c) => sum + textPieces(c.arguments).length, 0);
    return { pieces, text: pieces.join(""), truncated: false, toolCalls, outputTokens: pieces.length + argTokens };
  }
  if (request.format) {
    const value = request.format.schema ? exampleOf(request.format.schema, hintsFor(request)) : { answer: echoOf(request.userText) };
    return piecesAnswer(textPieces(JSON.stringify(value)), request);
  }
  const text = request.toolResults.length
    ? `${take}${request.toolResults.map(describeResult).join(" ")}`
    : `${take}You said: "${echoOf(request.userText)}". ${FILLER}`;
  return piecesAnswer(wordPieces(text), request);
}

/**
 * A conversation ending in an assistant message that `continuable` accepts (text only): the
 * messages before it and its text, the prefill the answer continues; else the messages as they are.
 */
function prefillOf(all, continuable) {
  const last = all.at(-1);
  if (!isObject(last) || last.role !== "assistant" || !continuable(last)) return { messages: all, prefill: undefined };
  return { messages: all.slice(0, -1), prefill: textOf(last.content) };
}

/** `pieces` past the `prefill` they start with (the first piece it ends in cut there); all of them otherwise. */
function continuePieces(pieces, prefill) {
  if (!pieces.join("").startsWith(prefill)) return pieces;
  let skip = prefill.length;
  return pieces.flatMap((piece) => {
    const rest = piece.slice(Math.min(skip, piece.length));
    skip = Math.max(0, skip - piece.length);
    return rest ? [rest] : [];
  });
}

/**
 * The answer to a request, continuing its prefill if it has one (see the header): the whole answer
 * to the conversation without it, past the prefill, then `max_tokens` and `stop` applied to what
 * is left (they bound what is generated).
 */
function answerTo(request, take) {
  if (request.prefill === undefined) return buildAnswer(request, take);
  const whole = buildAnswer({ ...request, maxTokens: undefined, stop: [] }, take);
  const pieces = continuePieces(whole.pieces, request.prefill);
  if (!whole.toolCalls.length) return piecesAnswer(pieces, request);
  const argTokens = whole.toolCalls.reduce((sum, c) => sum + textPieces(c.arguments).length, 0);
  return { ...whole, pieces, text: pieces.join(""), outputTokens: pieces.length + argTokens };
}

// ---------------------------------------------------------------------------
// Tools and structured output: which tool the mock calls, and arguments that fit its schema
// ---------------------------------------------------------------------------

/** FNV-1a in base 36: tool-call ids that depend on the request only, so a replay gets the same ids. */
function hashId(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36).padStart(7, "0");
}

const NAME_VERBS = new Set(["get", "set", "fetch", "list", "find", "lookup", "look", "up", "current", "the", "a", "of"]);

/** The words a tool's name is about: get_time -> ["time"], lookupWeatherForecast -> ["weather", "forecast"]. */
const topicWords = (name) =>
  name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase().split(/[^a-z0-9]+/).filter((w) => w && !NAME_VERBS.has(w));

/** Does the user's text ask for this tool: its name, or every topic word of it (a plural too)? */
function mentions(text, tool) {
  const lower = text.toLowerCase();
  const topic = topicWords(tool.name);
  return lower.includes(tool.name.toLowerCase()) ||
    (topic.length > 0 && topic.every((w) => new RegExp(`\\b${w}s?\\b`).test(lower)));
}

/**
 * The calls the mock makes. A tool forced by name (OpenAI `tool_choice: {type:"function",...}`,
 * Anthropic `{type:"tool", name}`) is called alone, always; "required" / "any" calls the tools the user
 * mentions, else the first one; "auto" calls the tools the user mentions ("What time is it in Paris?"
 * calls get_time), unless the conversation ends in tool results, which it answers in words. "none": no
 * call. Parallel calls unless the request turns them off.
 */
function toolCallsFor(request) {
  const { tools, toolChoice: choice } = request;
  if (!tools.length || choice.mode === "none") return [];
  if (choice.mode === "auto" && request.toolResults.length) return [];
  let chosen = choice.mode === "tool"
    ? tools.filter((t) => t.name === choice.name)
    : tools.filter((t) => mentions(request.userText, t));
  if (!chosen.length && choice.mode === "required") chosen = [tools[0]];
  if (!request.parallel) chosen = chosen.slice(0, 1);
  const hints = hintsFor(request);
  return chosen.map((tool, index) => {
    const value = exampleOf(tool.parameters, hints);
    const args = JSON.stringify(value !== null && typeof value === "object" && !Array.isArray(value) ? value : {});
    return { id: hashId(`${request.messageCount}|${index}|${tool.name}|${args}`), name: tool.name, arguments: args };
  });
}

const PLACE_KEY = /^(city|location|place|town|region|country)$/i;

/** What example strings are made of: the place the user names ("... in New York?"), else Paris; the echo. */
function hintsFor(request) {
  const place = /\b(?:in|at|for)\s+(\p{Lu}[\p{L}'-]*(?:\s+\p{Lu}[\p{L}'-]*)*)/u.exec(request.userText)?.[1];
  return { place: place ?? "Paris", echo: words(request.userText).slice(0, 8).join(" ") || "mock" };
}

/**
 * A value that fits a JSON Schema (the parts models are given: type, properties, items, enum, const,
 * anyOf/oneOf/allOf, bounds, lengths, formats date and date-time); a string property named like a place
 * holds the place the user asked about. Every property is filled, required or not.
 */
function exampleOf(schema, hints, key = "", depth = 0) {
  if (schema === null || typeof schema !== "object" || depth > 16) return null;
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(alternatives) && alternatives.length) {
    return exampleOf(alternatives.find((s) => s?.type !== "null") ?? alternatives[0], hints, key, depth + 1);
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length) {
    return exampleOf(Object.assign({}, ...schema.allOf.filter((s) => s && typeof s === "object")), hints, key, depth + 1);
  }
  const declared = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") ?? "null" : schema.type;
  const type = declared ?? (schema.properties ? "object" : schema.items ? "array" : "string");
  switch (type) {
    case "object":
      return Object.fromEntries(
        Object.entries(schema.properties ?? {}).map(([name, s]) => [name, exampleOf(s, hints, name, depth + 1)]),
      );
    case "array": {
      const length = Math.min(Math.max(schema.minItems ?? 1, 1), schema.maxItems ?? 16, 16);
      return Array.from({ length }, () => exampleOf(schema.items ?? {}, hints, key, depth + 1));
    }
    case "integer":
    case "number": {
      const low = schema.minimum ?? (typeof schema.exclusiveMinimum === "number" ? schema.exclusiveMinimum + 1 : -Infinity);
      const high = schema.maximum ?? (typeof schema.exclusiveMaximum === "number" ? schema.exclusiveMaximum - 1 : Infinity);
      const n = Math.min(Math.max(1, low), high);
      return type === "integer" ? Math.ceil(n) : n;
    }
    case "boolean":
      return true;
    case "null":
      return null;
    default: {
      const format = { "date-time": "2026-01-01T00:00:00Z", date: "2026-01-01" }[schema.format];
      let text = Array.from(format ?? (PLACE_KEY.test(key) ? hints.place : hints.echo));
      if (Number.isInteger(schema.maxLength)) text = text.slice(0, schema.maxLength);
      if (Number.isInteger(schema.minLength) && text.length < schema.minLength) text.push("x".repeat(schema.minLength - text.length));
      return text.join("");
    }
  }
}

/** One tool result in words: a JSON object's fields as "key: value", anything else as it is. */
function describeResult({ name, content }) {
  let value;
  try {
    value = JSON.parse(content);
  } catch {
    value = content;
  }
  const said = value !== null && typeof value === "object" && !Array.isArray(value)
    ? Object.entries(value).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ")
    : String(typeof value === "string" ? value : JSON.stringify(value));
  return `${name ?? "The tool"} says ${words(said).slice(0, 48).join(" ")}.`;
}

/** A forced tool name must be one of the tools (both providers answer 400 otherwise). */
function checkForced(choice, tools, field) {
  if (choice.mode === "tool" && !tools.some((t) => t.name === choice.name)) {
    throw new HttpError(400, `${field}: no tool named ${JSON.stringify(choice.name)} in tools`);
  }
  return choice;
}

// ---------------------------------------------------------------------------
// Providers: request validation, bodies, stream frames, error shapes
// ---------------------------------------------------------------------------

/** Default status for an `error=<type>` fault without `status=`. */
const ERROR_TYPE_STATUS = {
  insufficient_quota: 429,
  rate_limit_exceeded: 429,
  rate_limit_error: 429,
  overloaded_error: 529,
  api_error: 500,
  server_error: 500,
  authentication_error: 401,
  invalid_api_key: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
};

function statusText(status) {
  return http.STATUS_CODES[status] ?? (status === 529 ? "Overloaded" : "Error");
}

function positiveInt(value, name) {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || value < 1) throw new HttpError(400, `${name} must be a positive integer`);
  return value;
}

function requireMessages(body) {
  if (!Array.isArray(body.messages)) throw new HttpError(400, "messages must be an array");
  return body.messages;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** `stop` / `stop_sequences`: a string or an array of non-empty strings. */
function stopSequences(value, field) {
  if (value === undefined || value === null) return [];
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || !list.every((s) => typeof s === "string" && s !== "")) {
    throw new HttpError(400, `${field} must be a string or an array of non-empty strings`);
  }
  return list;
}

/** An image URL a provider fetches or decodes: http(s) or a base64 data URL. */
const isImageUrl = (url) => typeof url === "string" && /^(https?:\/\/|data:image\/[a-z+.-]+;base64,)/i.test(url);

/**
 * OpenAI messages, checked as the API checks them: content parts (text, image_url), assistant
 * tool_calls, and each `tool` message answering a call of the assistant message before it. Returns the
 * tool results the conversation ends with, each with the name of the tool that was called.
 */
function openaiMessages(messages) {
  const names = new Map();
  const open = new Set();
  messages.forEach((m, i) => {
    if (!isObject(m)) throw new HttpError(400, `messages[${i}] must be an object`);
    if (m.role !== "tool" && open.size) {
      throw new HttpError(400, `messages[${i}]: an assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id' (missing: ${[...open].join(", ")})`);
    }
    if (Array.isArray(m.content)) {
      m.content.forEach((part, j) => {
        const ok = part?.type === "text" ? typeof part.text === "string" : part?.type === "image_url" && isImageUrl(part.image_url?.url);
        if (!ok) {
          throw new HttpError(400, `messages[${i}].content[${j}]: expected {type:"text", text} or {type:"image_url", image_url:{url: an http(s) or data URL}}`);
        }
      });
    }
    if (m.role === "assistant" && m.tool_calls !== undefined && m.tool_calls !== null) {
      if (!Array.isArray(m.tool_calls)) throw new HttpError(400, `messages[${i}].tool_calls must be an array`);
      m.tool_calls.forEach((call, j) => {
        if (typeof call?.id !== "string" || call.type !== "function" || typeof call.function?.name !== "string" ||
          typeof call.function.arguments !== "string") {
          throw new HttpError(400, `messages[${i}].tool_calls[${j}]: expected {id, type:"function", function:{name, arguments: string}}`);
        }
        names.set(call.id, call.function.name);
        open.add(call.id);
      });
    } else if (m.role === "tool" && !open.delete(m.tool_call_id)) {
      throw new HttpError(400, `messages[${i}]: messages with role 'tool' must be a response to a preceding message with 'tool_calls' (tool_call_id ${JSON.stringify(m.tool_call_id)})`);
    }
  });
  const trailing = [];
  for (let i = messages.length - 1; i >= 0 && messages[i].role === "tool"; i -= 1) trailing.unshift(messages[i]);
  return trailing.map((m) => ({ name: names.get(m.tool_call_id), content: textOf(m.content) }));
}

/** OpenAI `tools` (function tools) and `tool_choice`. */
function openaiTools(body) {
  const tools = body.tools ?? [];
  if (!Array.isArray(tools)) throw new HttpError(400, "tools must be an array");
  const parsed = tools.map((tool, i) => {
    const fn = tool?.function;
    if (tool?.type !== "function" || !isObject(fn) || !TOOL_NAME.test(fn.name ?? "") ||
      (fn.parameters !== undefined && !isObject(fn.parameters))) {
      throw new HttpError(400, `tools[${i}]: expected {type:"function", function:{name (1-64 of a-z A-Z 0-9 _ -), parameters?: object}}`);
    }
    return { name: fn.name, parameters: fn.parameters ?? { type: "object", properties: {} } };
  });
  const choice = body.tool_choice;
  if (choice === undefined || choice === null) return { tools: parsed, toolChoice: { mode: parsed.length ? "auto" : "none" } };
  if (!parsed.length) throw new HttpError(400, "tool_choice is only allowed when tools are specified");
  if (["none", "auto", "required"].includes(choice)) return { tools: parsed, toolChoice: { mode: choice } };
  if (choice?.type === "function" && typeof choice.function?.name === "string") {
    return { tools: parsed, toolChoice: checkForced({ mode: "tool", name: choice.function.name }, parsed, "tool_choice") };
  }
  throw new HttpError(400, 'tool_choice must be "none", "auto", "required" or {type:"function", function:{name}}');
}

/** OpenAI `response_format`: text, json_object or json_schema. */
function openaiFormat(format) {
  if (format === undefined || format === null || format.type === "text") return undefined;
  if (format.type === "json_object") return { schema: null };
  if (format.type === "json_schema" && typeof format.json_schema?.name === "string") return { schema: format.json_schema.schema ?? {} };
  throw new HttpError(400, 'response_format must be {type:"text"}, {type:"json_object"} or {type:"json_schema", json_schema:{name, schema}}');
}

const openai = {
  name: "openai",

  /** Normalize a request body into what the answer needs (throws HttpError 400). */
  parse(body) {
    const all = requireMessages(body);
    const { messages, prefill } = prefillOf(all, (m) => !(Array.isArray(m.tool_calls) && m.tool_calls.length));
    const toolResults = openaiMessages(messages);
    return {
      prefill,
      model: body.model ?? DEFAULT_MODEL,
      stream: body.stream === true,
      includeUsage: body.stream_options?.include_usage === true,
      maxTokens: positiveInt(body.max_tokens ?? body.max_completion_tokens, "max_tokens"),
      stop: stopSequences(body.stop, "stop"),
      userText: lastUserText(messages),
      promptTokens: promptTokens(all, undefined, body.tools),
      messageCount: messages.length,
      ...openaiTools(body),
      parallel: body.parallel_tool_calls !== false,
      toolResults,
      format: openaiFormat(body.response_format),
    };
  },

  /** `name` is an error code (context_length_exceeded, ...) or, ending in "_error", a type. */
  errorBody(status, name, message) {
    const defaultType = status >= 500 ? "server_error" : "invalid_request_error";
    if (name?.endsWith("_error")) return { error: { message, type: name, param: null, code: null } };
    const code = name ?? { 401: "invalid_api_key", 429: "rate_limit_exceeded" }[status] ?? null;
    const type = { insufficient_quota: "insufficient_quota", rate_limit_exceeded: "requests" }[code] ?? defaultType;
    return { error: { message, type, param: null, code } };
  },

  finishReason: (answer) => (answer.toolCalls.length ? "tool_calls" : answer.truncated ? "length" : "stop"),

  jsonBody(call, answer) {
    const prompt = call.request.promptTokens;
    const completion = answer.outputTokens;
    const calls = answer.toolCalls;
    const message = calls.length
      ? {
          role: "assistant",
          content: answer.text || null,
          tool_calls: calls.map((c) => ({ id: `call_${c.id}`, type: "function", function: { name: c.name, arguments: c.arguments } })),
        }
      : { role: "assistant", content: answer.text };
    return {
      id: call.id,
      object: "chat.completion",
      created: call.created,
      model: call.request.model,
      choices: [{ index: 0, message, finish_reason: this.finishReason(answer) }],
      usage: {
        prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion,
        ...(call.request.cache ? { prompt_tokens_details: { cached_tokens: call.request.cache.read } } : {}),
      },
    };
  },

  /**
   * One chunk per text piece; then per tool call a chunk with its index, id, type and name (arguments
   * ""), and its arguments in pieces carrying the index only, as OpenAI streams them.
   */
  streamFrames(call, answer) {
    const { model, includeUsage } = call.request;
    const chunk = (choices, extra) => ({
      id: call.id,
      object: "chat.completion.chunk",
      created: call.created,
      model,
      choices,
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
    });
    const choice = (delta, finishReason = null) => [{ index: 0, delta, finish_reason: finishReason }];
    const deltas = answer.pieces.map((content) => ({ content }));
    answer.toolCalls.forEach((c, index) => {
      const head = { index, id: `call_${c.id}`, type: "function", function: { name: c.name, arguments: "" } };
      deltas.push({ ...(deltas.length ? {} : { content: null }), tool_calls: [head] });
      for (const piece of textPieces(c.arguments)) deltas.push({ tool_calls: [{ index, function: { arguments: piece } }] });
    });
    const frames = deltas.map((delta, i) => sseFrame(chunk(choice(i === 0 ? { role: "assistant", ...delta } : delta))));
    frames.push(sseFrame(chunk(choice({}, this.finishReason(answer)))));
    if (includeUsage) {
      const { usage } = this.jsonBody(call, answer);
      frames.push(sseFrame(chunk([], { usage })));
    }
    frames.push(sseFrame("[DONE]"));
    return frames;
  },

  malformedFrame: () => 'data: {"choices":[{"delta":\n\n',

  streamErrorFrame: () =>
    sseFrame({ error: { message: "mock upstream failed mid-stream", type: "server_error" } }),
};

/**
 * Anthropic messages, checked as the API checks them: text and image blocks (base64 or url sources),
 * assistant tool_use blocks, and each tool_result answering a tool_use of the assistant turn just before
 * (all of them). Returns the tool results of the last message, each with the name of the tool called.
 */
function anthropicMessages(messages) {
  let pending = new Map(); // the previous assistant turn's tool_use ids -> tool names
  let results = [];
  messages.forEach((m, i) => {
    if (!isObject(m)) throw new HttpError(400, `messages.${i}: Input should be an object`);
    const blocks = Array.isArray(m.content) ? m.content : [];
    results = [];
    blocks.forEach((b, j) => {
      const at = `messages.${i}.content.${j}`;
      if (b?.type === "tool_use") {
        if (m.role !== "assistant" || typeof b.id !== "string" || !TOOL_NAME.test(b.name ?? "") || !isObject(b.input)) {
          throw new HttpError(400, `${at}: a tool_use block is {type, id, name, input: object}, in an assistant message`);
        }
      } else if (b?.type === "tool_result") {
        if (m.role !== "user" || !pending.has(b.tool_use_id)) {
          throw new HttpError(400, `${at}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b?.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
        }
        results.push({ name: pending.get(b.tool_use_id), content: textOf(b.content) });
      } else if (b?.type === "image") {
        const src = b.source;
        const ok = src?.type === "base64"
          ? /^image\/(jpeg|png|gif|webp)$/.test(src.media_type ?? "") && typeof src.data === "string" && src.data !== ""
          : src?.type === "url" && /^https?:\/\//.test(src.url ?? "");
        if (!ok) throw new HttpError(400, `${at}.source: expected {type:"base64", media_type: image/jpeg|png|gif|webp, data} or {type:"url", url}`);
      } else if (b?.type === "text" && typeof b.text !== "string") {
        throw new HttpError(400, `${at}.text: Input should be a valid string`);
      }
    });
    const unanswered = [...pending.keys()].filter((id) => !blocks.some((b) => b?.type === "tool_result" && b.tool_use_id === id));
    if (unanswered.length) {
      throw new HttpError(400, `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${unanswered.join(", ")}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
    }
    pending = new Map(m.role === "assistant" ? blocks.filter((b) => b?.type === "tool_use").map((b) => [b.id, b.name]) : []);
  });
  return results;
}

/** Anthropic `tools` (custom tools; server tools, with another `type`, are never called) and `tool_choice`. */
function anthropicTools(body) {
  const tools = body.tools ?? [];
  if (!Array.isArray(tools)) throw new HttpError(400, "tools: Input should be a valid list");
  const parsed = tools.flatMap((tool, i) => {
    if (tool?.type !== undefined && tool.type !== "custom") return [];
    if (!TOOL_NAME.test(tool?.name ?? "")) throw new HttpError(400, `tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
    if (!isObject(tool.input_schema) || tool.input_schema.type !== "object") {
      throw new HttpError(400, `tools.${i}.input_schema: Field required (a JSON Schema of type "object")`);
    }
    return [{ name: tool.name, parameters: tool.input_schema }];
  });
  const choice = body.tool_choice;
  if (choice === undefined || choice === null) return { tools: parsed, toolChoice: { mode: parsed.length ? "auto" : "none" }, parallel: true };
  const mode = { auto: "auto", any: "required", tool: "tool", none: "none" }[choice?.type];
  if (!mode) throw new HttpError(400, "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
  if (!tools.length && mode !== "none") throw new HttpError(400, "tool_choice may only be specified while providing tools");
  if (mode === "tool" && typeof choice.name !== "string") throw new HttpError(400, "tool_choice.name: Field required");
  return {
    tools: parsed,
    toolChoice: checkForced({ mode, name: choice.name }, parsed, "tool_choice.name"),
    parallel: choice.disable_parallel_tool_use !== true,
  };
}

/** Anthropic structured output: `output_format` (beta) or `output_config.format`, type json_schema. */
function anthropicFormat(body) {
  const format = body.output_format ?? body.output_config?.format;
  if (format === undefined || format === null) return undefined;
  if (format.type !== "json_schema" || !isObject(format.schema)) {
    throw new HttpError(400, 'output_format: expected {type:"json_schema", schema: object}');
  }
  return { schema: format.schema };
}

const anthropic = {
  name: "anthropic",

  parse(body) {
    const all = requireMessages(body);
    const maxTokens = positiveInt(body.max_tokens, "max_tokens");
    if (maxTokens === undefined) throw new HttpError(400, "max_tokens: Field required");
    const textOnly = (m) => typeof m.content === "string" || (Array.isArray(m.content) && m.content.every((b) => b?.type === "text"));
    const { messages, prefill } = prefillOf(all, textOnly);
    if (prefill !== undefined && /\s$/.test(prefill)) {
      throw new HttpError(400, "messages: final assistant content cannot end with trailing whitespace");
    }
    const toolResults = anthropicMessages(messages);
    const tools = anthropicTools(body);
    return {
      prefill,
      model: body.model ?? DEFAULT_MODEL,
      stream: body.stream === true,
      maxTokens,
      stop: stopSequences(body.stop_sequences, "stop_sequences"),
      userText: lastUserText(messages),
      promptTokens: promptTokens(all, body.system, body.tools),
      messageCount: messages.length,
      ...tools,
      preamble: tools.toolChoice.mode === "auto",
      toolResults,
      format: anthropicFormat(body),
    };
  },

  errorBody(status, type, message) {
    const errorType =
      type ??
      {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
      }[status] ??
      (status >= 500 ? "api_error" : "invalid_request_error");
    return { type: "error", error: { type: errorType, message } };
  },

  message(call, content, stopReason, outputTokens, stopSequence = null) {
    return {
      id: call.id,
      type: "message",
      role: "assistant",
      model: call.request.model,
      content,
      stop_reason: stopReason,
      stop_sequence: stopSequence,
      usage: anthropicUsage(call.request, outputTokens),
    };
  },

  stopReason: (answer) =>
    answer.toolCalls.length ? "tool_use" : answer.truncated ? "max_tokens" : answer.stopSequence ? "stop_sequence" : "end_turn",

  /** The text block (unless a tool call has no text before it), then one tool_use block per call. */
  blocks: (answer) => [
    ...(answer.text || !answer.toolCalls.length ? [{ type: "text", text: answer.text }] : []),
    ...answer.toolCalls.map((c) => ({ type: "tool_use", id: `toolu_${c.id}`, name: c.name, input: JSON.parse(c.arguments) })),
  ],

  jsonBody(call, answer) {
    return this.message(call, this.blocks(answer), this.stopReason(answer), answer.outputTokens, answer.stopSequence ?? null);
  },

  /** Each block: content_block_start, its deltas (text_delta, or input_json_delta from "" on), content_block_stop. */
  streamFrames(call, answer) {
    const event = (data) => sseFrame(data, data.type);
    const frames = [event({ type: "message_start", message: this.message(call, [], null, 1) })];
    this.blocks(answer).forEach((block, index) => {
      const deltas = block.type === "text"
        ? answer.pieces.map((text) => ({ type: "text_delta", text }))
        : ["", ...textPieces(JSON.stringify(block.input))].map((partial_json) => ({ type: "input_json_delta", partial_json }));
      const start = block.type === "text" ? { type: "text", text: "" } : { ...block, input: {} };
      frames.push(event({ type: "content_block_start", index, content_block: start }));
      if (index === 0) frames.push(event({ type: "ping" }));
      for (const delta of deltas) frames.push(event({ type: "content_block_delta", index, delta }));
      frames.push(event({ type: "content_block_stop", index }));
    });
    frames.push(
      event({
        type: "message_delta",
        delta: { stop_reason: this.stopReason(answer), stop_sequence: answer.stopSequence ?? null },
        usage: { output_tokens: answer.outputTokens },
      }),
      event({ type: "message_stop" }),
    );
    return frames;
  },

  malformedFrame: () => 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":\n\n',

  streamErrorFrame: () =>
    sseFrame({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, "error"),
};

/** Anthropic `usage`: the cache fields when the request marked a block for caching. */
function anthropicUsage({ promptTokens, cache }, outputTokens) {
  if (!cache) return { input_tokens: promptTokens, output_tokens: outputTokens };
  return {
    input_tokens: promptTokens - cache.read - cache.write,
    cache_creation_input_tokens: cache.write,
    cache_read_input_tokens: cache.read,
    output_tokens: outputTokens,
  };
}

// ---------------------------------------------------------------------------
// Prompt caching
// ---------------------------------------------------------------------------

const MAX_CACHE_CONTROL = 4;
const OPENAI_MIN_CACHED = 1024;

/** A block without its cache_control, as JSON: the mark does not change what is cached. */
const unmarked = (block) => JSON.stringify(isObject(block) ? { ...block, cache_control: undefined } : block);

/** Anthropic's prompt as segments { json, chars, mark } in cache order: tools, system, message blocks. */
function anthropicSegments(body) {
  const segments = [];
  const add = (block, chars, at) => {
    const mark = isObject(block) && block.cache_control !== undefined && block.cache_control !== null;
    if (mark && block.cache_control?.type !== "ephemeral") throw new HttpError(400, `${at}.cache_control.type: Input should be 'ephemeral'`);
    segments.push({ json: unmarked(block), chars, mark });
  };
  (Array.isArray(body.tools) ? body.tools : []).forEach((tool, i) => add(tool, unmarked(tool).length, `tools.${i}`));
  const system = Array.isArray(body.system) ? body.system : body.system === undefined ? [] : [body.system];
  system.forEach((block, i) => add(block, textOf(typeof block === "string" ? block : [block]).length, `system.${i}`));
  (body.messages ?? []).forEach((m, i) => {
    const blocks = Array.isArray(m?.content) ? m.content : [m?.content];
    blocks.forEach((block, j) => add(block, textOf(typeof block === "string" ? block : [block]).length, `messages.${i}.content.${j}`));
  });
  const marks = segments.filter((s) => s.mark).length;
  if (marks > MAX_CACHE_CONTROL) {
    throw new HttpError(400, `A maximum of ${MAX_CACHE_CONTROL} blocks with cache_control may be provided. Found ${marks}.`);
  }
  return segments;
}

/** OpenAI's prompt as segments: the tools, then each message (a boundary after each). */
function openaiSegments(body) {
  const tools = body.tools ? [{ json: JSON.stringify(body.tools), chars: JSON.stringify(body.tools).length, mark: true }] : [];
  return [...tools, ...body.messages.map((m) => ({ json: JSON.stringify(m), chars: textOf(m?.content).length, mark: true }))];
}

/** Each marked segment's prefix: { key (a hash chained over the segments), tokens }. */
function prefixes(model, segments) {
  let key = createHash("sha256").update(String(model)).digest("hex");
  let chars = 0;
  return segments.flatMap((segment) => {
    key = createHash("sha256").update(key).update(segment.json).digest("hex");
    chars += segment.chars;
    return segment.mark ? [{ key, tokens: Math.floor(chars / 4) }] : [];
  });
}

/**
 * What this request reads from and writes to the target's prompt cache ({ read, write } tokens), or
 * undefined when the dialect would report nothing (no Anthropic mark; an OpenAI prompt under 1024
 * tokens). Remembers the request's prefixes in `seen`, the target's cache.
 */
function promptCache(provider, body, request, seen) {
  if (provider === anthropic) {
    const marks = prefixes(body.model, anthropicSegments(body));
    if (!marks.length) return undefined;
    const read = marks.findLast((m) => seen.has(m.key))?.tokens ?? 0;
    const last = marks.at(-1);
    for (const m of marks) seen.add(m.key);
    return { read, write: Math.max(0, last.tokens - read) };
  }
  if (request.promptTokens < OPENAI_MIN_CACHED) return undefined;
  const boundaries = prefixes(body.model, openaiSegments(body)).filter((p) => p.tokens >= OPENAI_MIN_CACHED);
  const hit = boundaries.findLast((p) => seen.has(p.key))?.tokens ?? 0;
  for (const p of boundaries) seen.add(p.key);
  return { read: Math.floor(hit / 128) * 128, write: 0 };
}

const COMPLETION_ROUTES = {
  "/v1/chat/completions": openai,
  "/v1/messages": anthropic,
};

// ---------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------

const EMBEDDING_STOPWORDS = new Set(["a", "an", "the", "is", "are", "of", "to", "in", "and", "or", "what", "how", "do", "does", "i", "my", "me", "you", "it", "for", "on", "with", "please", "can"]);

/** FNV-1a over a string's UTF-16 code units. */
function fnv1a(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The mock's embedding of `text` in `dims` dimensions (see the header comment). */
export function mockEmbedding(text, dims = 64) {
  const words = (text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []).filter((w) => !EMBEDDING_STOPWORDS.has(w));
  const vector = new Float32Array(dims);
  for (const word of words.length ? words : [text]) {
    const h = fnv1a(word);
    vector[h % dims] += h & 0x80000000 ? -1 : 1;
  }
  const norm = Math.hypot(...vector) || 1;
  return vector.map((x) => x / norm);
}

function parseEmbeddingsRequest(body) {
  const input = typeof body.input === "string" ? [body.input] : body.input;
  if (!Array.isArray(input) || input.length === 0 || input.some((t) => typeof t !== "string")) {
    throw new HttpError(400, "input: a string or a non-empty array of strings");
  }
  if (input.length > 2048) throw new HttpError(400, "input: at most 2048 inputs");
  if (typeof body.model !== "string") throw new HttpError(400, "model: required");
  const dims = body.dimensions ?? 64;
  if (!Number.isInteger(dims) || dims < 1 || dims > 4096) throw new HttpError(400, "dimensions: 1..4096");
  if (body.encoding_format !== undefined && !["float", "base64"].includes(body.encoding_format)) {
    throw new HttpError(400, "encoding_format: \"float\" or \"base64\"");
  }
  return { input, dims, model: body.model, base64: body.encoding_format === "base64" };
}

async function handleEmbeddings(call, state) {
  const raw = await readBody(call.req);
  state.recorded.set(call.target, { path: call.path, headers: call.req.headers, body: raw });
  const plan = state.faults.planFor(call.target, call.req.headers["x-mock-fault"], call.path);
  state.stats.faulted(plan.labels);
  call.extraHeaders = plan.headers;
  await wait(plan.delayMs, call.res);
  if (!isOpen(call.res)) return;
  if (plan.reset !== undefined) return destroySocket(call.res);
  if (plan.status !== undefined) {
    return sendError(call, plan.status, plan.errorType, `mock fault: HTTP ${plan.status} ${statusText(plan.status)}`);
  }
  const parsed = parseJsonObject(raw);
  if (parsed.error) return sendError(call, 400, undefined, parsed.error);
  const request = parseEmbeddingsRequest(parsed.body);
  const base64 = request.base64 && call.req.headers["x-mock-encoding"] !== "float";
  const data = request.input.map((text, index) => {
    const vector = mockEmbedding(text, request.dims);
    const embedding = base64 ? Buffer.from(vector.buffer).toString("base64") : Array.from(vector);
    return { object: "embedding", index, embedding };
  });
  if (call.req.headers["x-mock-order"] === "reverse") data.reverse();
  const tokens = request.input.reduce((sum, t) => sum + Math.max(1, Math.ceil(t.length / 4)), 0);
  const text = JSON.stringify({ object: "list", data, model: request.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  if (plan.stall !== undefined) return begin(call, 200, { "content-type": "application/json" });
  if (plan.malformed) return sendJson(call, 200, null, text.slice(0, Math.floor(text.length / 2)));
  if (plan.huge !== undefined) {
    begin(call, 200, { "content-type": "application/json" });
    call.res.write(text.slice(0, -1) + ',"filler":"');
    await writeFiller(call.res, plan.huge);
    if (isOpen(call.res)) call.res.end('"}');
    return;
  }
  return sendJson(call, 200, null, text);
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

/**
 * A fault plan says how to mangle one response:
 * { status?, errorType?, headers, delayMs, stall?, reset?, malformed, midStreamError, labels }
 */
const emptyPlan = () => ({ headers: {}, delayMs: 0, malformed: false, midStreamError: false, labels: [] });

const faultValue = {
  int:
    (min, max, bare) =>
    (raw, key) => {
      if (raw === undefined && bare !== undefined) return bare;
      const n = Number(raw);
      if (raw === undefined || raw === "" || !Number.isInteger(n) || n < min || n > max) {
        throw new HttpError(400, `x-mock-fault: ${key} needs an integer in ${min}..${max}`);
      }
      return n;
    },
  text: (raw, key) => {
    if (!raw) throw new HttpError(400, `x-mock-fault: ${key} needs a value`);
    return raw;
  },
  bool: (raw, key) => {
    if (raw !== "true" && raw !== "false") throw new HttpError(400, `x-mock-fault: ${key} must be true or false`);
    return raw;
  },
  flag: (raw, key) => {
    if (raw !== undefined && raw !== "true") throw new HttpError(400, `x-mock-fault: ${key} takes no value`);
    return true;
  },
};

const FAULT_KEYS = {
  status: faultValue.int(400, 599),
  error: faultValue.text,
  "retry-after": faultValue.text,
  "retry-after-ms": faultValue.int(0, Number.MAX_SAFE_INTEGER),
  "x-should-retry": faultValue.bool,
  delay: faultValue.int(0, 3_600_000),
  "body-delay": faultValue.int(0, 3_600_000),
  stall: faultValue.int(0, Number.MAX_SAFE_INTEGER, 0),
  reset: faultValue.int(0, Number.MAX_SAFE_INTEGER, 0),
  malformed: faultValue.flag,
  "mid-stream-error": faultValue.flag,
  huge: faultValue.int(0, 4 * 1024 * 1024),
  "huge-after": faultValue.int(0, 1000),
  sampled: faultValue.flag,
  times: faultValue.int(0, Number.MAX_SAFE_INTEGER),
  key: faultValue.text,
};
const HEADER_FAULTS = ["retry-after", "retry-after-ms", "x-should-retry"];

/** Parse an `x-mock-fault` value into `{ key: value }` (throws HttpError 400). */
function parseFaultHeader(text) {
  const spec = {};
  for (const item of text.split(";").map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf("=");
    const key = (eq < 0 ? item : item.slice(0, eq)).trim().toLowerCase();
    const raw = eq < 0 ? undefined : item.slice(eq + 1).trim();
    if (!Object.hasOwn(FAULT_KEYS, key)) throw new HttpError(400, `x-mock-fault: unknown fault "${key}"`);
    spec[key] = FAULT_KEYS[key](raw, key);
  }
  return spec;
}

function planFromSpec(spec) {
  const plan = emptyPlan();
  for (const name of HEADER_FAULTS) if (spec[name] !== undefined) plan.headers[name] = String(spec[name]);
  plan.errorType = spec.error;
  plan.status = spec.status ?? (spec.error ? ERROR_TYPE_STATUS[spec.error] ?? 400 : undefined);
  plan.delayMs = spec.delay ?? 0;
  plan.bodyDelayMs = spec["body-delay"];
  plan.stall = spec.stall;
  plan.reset = spec.reset;
  plan.malformed = spec.malformed === true;
  plan.midStreamError = spec["mid-stream-error"] === true;
  plan.sampled = spec.sampled === true;
  plan.huge = spec.huge;
  plan.hugeAfter = spec["huge-after"] ?? 1;
  plan.labels = Object.keys(spec).filter((k) => k !== "times" && k !== "key");
  return plan;
}

/** Validate and fill defaults of a global fault config (throws TypeError). */
function normalizeFaultConfig(cfg, defaultSeed) {
  if (cfg === null || typeof cfg !== "object" || Array.isArray(cfg)) {
    throw new TypeError("fault config must be a JSON object");
  }
  const known = ["target", "seed", "errorRate", "errorStatuses", "rate429", "retryAfterMs",
    "latencyMs", "stallRate", "resetRate", "outage", "paths", "limit", "slowRate", "slowMs"];
  const unknown = Object.keys(cfg).filter((k) => !known.includes(k));
  if (unknown.length) throw new TypeError(`unknown fault option(s): ${unknown.join(", ")}`);

  const check = (name, ok, what, fallback) => {
    const value = cfg[name] ?? fallback;
    if (!ok(value)) throw new TypeError(`${name} must be ${what}`);
    return value;
  };
  const rate = (name) => check(name, (v) => typeof v === "number" && v >= 0 && v <= 1, "a number in 0..1", 0);
  const nonNegative = (v) => v === undefined || (Number.isFinite(v) && v >= 0);
  const isStatus = (s) => Number.isInteger(s) && s >= 400 && s <= 599;

  return {
    target: check("target", (v) => v === undefined || (typeof v === "string" && v !== ""), "a non-empty string"),
    seed: check("seed", Number.isFinite, "a number", defaultSeed),
    errorRate: rate("errorRate"),
    errorStatuses: check("errorStatuses", (v) => Array.isArray(v) && v.length > 0 && v.every(isStatus),
      "a non-empty array of statuses 400..599", [500, 503]),
    rate429: rate("rate429"),
    retryAfterMs: check("retryAfterMs", nonNegative, "a non-negative number"),
    latencyMs: check("latencyMs", nonNegative, "a non-negative number", 0),
    stallRate: rate("stallRate"),
    resetRate: rate("resetRate"),
    outage: check("outage", (v) => typeof v === "boolean", "a boolean", false),
    paths: check("paths", (v) => v === undefined || (Array.isArray(v) && v.every((p) => typeof p === "string" && p.startsWith("/"))),
      "an array of paths starting with /"),
    limit: check("limit", (v) => v === undefined || parseLimit(v) !== null,
      'a limit "<n>/<window>" such as "5/1s", "60/1m" or "3/500" (ms)'),
    slowRate: rate("slowRate"),
    slowMs: check("slowMs", nonNegative, "a non-negative number", 1500),
  };
}

/** `"<n>/<window>"` -> { n, windowMs }, or null. */
function parseLimit(text) {
  const m = typeof text === "string" ? /^(\d+)\/(\d+)(ms|s|m)?$/.exec(text.trim()) : null;
  if (!m) return null;
  const [n, span] = [Number(m[1]), Number(m[2])];
  const windowMs = span * { ms: 1, s: 1000, m: 60_000 }[m[3] ?? "ms"];
  return n > 0 && windowMs > 0 ? { n, windowMs } : null;
}

/** A server-side limit (`limit`): n requests, refilled continuously at n per window. */
class LimitBucket {
  constructor({ n, windowMs }) {
    Object.assign(this, { n, windowMs, level: n, at: Date.now() });
  }

  /** Takes one request: { ok, left, limit, resetMs, retryAfterMs }. */
  take() {
    const now = Date.now();
    this.level = Math.min(this.n, this.level + ((now - this.at) * this.n) / this.windowMs);
    this.at = now;
    const ok = this.level >= 1;
    if (ok) this.level -= 1;
    const msFor = (units) => Math.ceil((units * this.windowMs) / this.n);
    return {
      ok,
      left: Math.floor(this.level),
      limit: this.n,
      resetMs: msFor(this.n - this.level),
      retryAfterMs: ok ? 0 : msFor(1 - this.level),
    };
  }
}

/** The headers a provider of `dialect` ("openai" | "anthropic") sends about a limit taken. */
function limitHeaders(dialect, taken) {
  if (dialect === "anthropic") {
    return {
      "anthropic-ratelimit-requests-limit": String(taken.limit),
      "anthropic-ratelimit-requests-remaining": String(taken.left),
      "anthropic-ratelimit-requests-reset": new Date(Date.now() + taken.resetMs).toISOString(),
    };
  }
  const seconds = taken.resetMs / 1000;
  return {
    "x-ratelimit-limit-requests": String(taken.limit),
    "x-ratelimit-remaining-requests": String(taken.left),
    "x-ratelimit-reset-requests": taken.resetMs < 1000 ? `${taken.resetMs}ms` : `${seconds}s`,
  };
}

/** Draw one request's global fault plan; always six draws, in this order. */
function drawGlobalPlan(cfg, rng) {
  const [rError, rStatus, r429, rStall, rReset, rChunks] = Array.from({ length: 6 }, rng);
  const plan = emptyPlan();
  const afterChunks = 1 + Math.floor(rChunks * 5);
  plan.delayMs = cfg.latencyMs;
  if (cfg.latencyMs > 0) plan.labels.push("global:latency");
  if (cfg.slowRate > 0 && rng() < cfg.slowRate) {
    plan.delayMs += cfg.slowMs;
    plan.labels.push("global:slow");
  }

  if (cfg.outage) {
    plan.status = 503;
    plan.labels.push("global:outage");
  } else if (rError < cfg.errorRate) {
    plan.status = cfg.errorStatuses[Math.floor(rStatus * cfg.errorStatuses.length)];
    plan.labels.push("global:error");
  } else if (r429 < cfg.rate429) {
    plan.status = 429;
    if (cfg.retryAfterMs !== undefined) {
      plan.headers["retry-after-ms"] = String(cfg.retryAfterMs);
      plan.headers["retry-after"] = String(Math.ceil(cfg.retryAfterMs / 1000));
    }
    plan.labels.push("global:429");
  } else if (rStall < cfg.stallRate) {
    plan.stall = afterChunks;
    plan.labels.push("global:stall");
  } else if (rReset < cfg.resetRate) {
    plan.reset = afterChunks;
    plan.labels.push("global:reset");
  }
  return plan;
}

/** Global fault configs (default + per target) and the per-key `times=` counters. */
class FaultState {
  constructor(seed) {
    this.seed = seed;
    this.reset();
  }

  reset() {
    this.configs = new Map(); // target name, or null for the default -> { cfg, rng }
    this.keyCounts = new Map();
  }

  set(rawCfg) {
    const cfg = normalizeFaultConfig(rawCfg, this.seed);
    const limit = cfg.limit === undefined ? null : new LimitBucket(parseLimit(cfg.limit));
    this.configs.set(cfg.target ?? null, { cfg, rng: mulberry32(cfg.seed), limit });
    return this.describe();
  }

  /** A completion request `plan` would answer takes from the target's `limit`: a 429 past it. */
  limit(target, plan, dialect) {
    const bucket = (this.configs.get(target) ?? this.configs.get(null))?.limit;
    if (!bucket || plan.status !== undefined) return;
    const taken = bucket.take();
    Object.assign(plan.headers, limitHeaders(dialect, taken));
    if (!taken.ok) {
      plan.status = 429;
      plan.errorType = "rate_limit_exceeded";
      plan.headers["retry-after-ms"] = String(taken.retryAfterMs);
      plan.labels.push("global:limit");
    }
  }

  describe() {
    return Object.fromEntries([...this.configs].map(([target, { cfg }]) => [target ?? "*", cfg]));
  }

  /** The plan for one completion request: header faults if active, else global ones. */
  planFor(target, headerValue, path) {
    const entry = this.configs.get(target) ?? this.configs.get(null);
    const applies = entry && (!entry.cfg.paths || entry.cfg.paths.includes(path));
    const global = applies ? drawGlobalPlan(entry.cfg, entry.rng) : emptyPlan();
    const spec = headerValue ? this.gate(parseFaultHeader(headerValue), headerValue) : null;
    if (!spec) return global;
    const plan = planFromSpec(spec);
    plan.delayMs += global.delayMs;
    return plan;
  }

  /** Apply `times=`/`key=`: returns the spec, or null once the key has used up its times. */
  gate(spec, headerValue) {
    if (spec.times === undefined && spec.key === undefined) return spec;
    const key = spec.key ?? headerValue;
    const seen = (this.keyCounts.get(key) ?? 0) + 1;
    this.keyCounts.set(key, seen);
    return spec.times !== undefined && seen > spec.times ? null : spec;
  }
}

// ---------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------

class Stats {
  constructor() {
    this.inFlight = 0;
    this.reset();
  }

  reset() {
    this.total = 0;
    this.byTarget = {};
    this.byFault = {};
    this.byIdempotencyKey = {};
  }

  target(name) {
    return (this.byTarget[name] ??= { total: 0, byPath: {}, byStatus: {} });
  }

  received(target, path, idempotencyKey) {
    const t = this.target(target);
    if (idempotencyKey) this.byIdempotencyKey[idempotencyKey] = (this.byIdempotencyKey[idempotencyKey] ?? 0) + 1;
    this.total += 1;
    this.inFlight += 1;
    t.total += 1;
    t.byPath[path] = (t.byPath[path] ?? 0) + 1;
  }

  abandoned(target) {
    const t = this.target(target);
    t.abandoned = (t.abandoned ?? 0) + 1;
  }

  responded(target, status) {
    const t = this.target(target);
    t.byStatus[status] = (t.byStatus[status] ?? 0) + 1;
  }

  finished() {
    this.inFlight -= 1;
  }

  faulted(labels) {
    for (const label of labels) this.byFault[label] = (this.byFault[label] ?? 0) + 1;
  }

  snapshot() {
    return structuredClone({
      total: this.total,
      byTarget: this.byTarget,
      byFault: this.byFault,
      byIdempotencyKey: this.byIdempotencyKey,
      inFlight: this.inFlight,
    });
  }
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/** Write the status line + headers, counting the status for tracked requests. */
function begin(call, status, headers = {}) {
  if (call.counted) call.stats.responded(call.target, status);
  call.res.writeHead(status, statusText(status), { ...headers, ...call.extraHeaders });
  call.res.flushHeaders();
}

function sendJson(call, status, body, text = JSON.stringify(body)) {
  begin(call, status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  call.res.end(text);
}

function sendError(call, status, type, message) {
  const provider = call.provider ?? openai;
  sendJson(call, status, provider.errorBody(status, type, message));
}

/** Write frames one by one, applying stream faults between them. */
async function pumpFrames(call, frames, plan, chunkDelayMs) {
  const { res, provider } = call;
  for (let sent = 0; ; sent += 1) {
    if (!isOpen(res)) return;
    if (sent === plan.stall) return; // go silent; the socket stays open
    if (sent === plan.reset) return destroySocket(res);
    if (sent === 2 && plan.midStreamError) return void res.end(provider.streamErrorFrame());
    if (sent === frames.length) return void res.end();
    if (sent > 0) {
      await wait(chunkDelayMs, res);
      if (!isOpen(res)) return;
    }
    if (sent === 1 && plan.malformed) res.write(provider.malformedFrame());
    res.write(frames[sent]);
  }
}

/** The `huge` fault: an answer (or a stream's unterminated line) of `kib` KiB, generated as it is sent. */
async function sendHuge(call, kib, after) {
  const { provider, res, request } = call;
  const answer = { pieces: ["x"], text: "\u0000", truncated: false, toolCalls: [], outputTokens: 1 };
  if (request.stream) {
    begin(call, 200, SSE_HEADERS);
    const words = Array.from({ length: after }, (_, i) => `w${i} `);
    for (const frame of provider.streamFrames(call, piecesAnswer(words, {})).slice(0, after)) {
      res.write(frame);
    }
    res.write("data: ");
    await writeFiller(res, kib);
  } else {
    const [head, tail] = JSON.stringify(provider.jsonBody(call, answer)).split("\\u0000");
    begin(call, 200, { "content-type": "application/json" });
    res.write(head);
    await writeFiller(res, kib);
    if (isOpen(res)) res.write(tail);
  }
  if (isOpen(res)) res.end();
}

function sendCompletion(call, plan, answer) {
  const { provider, res, request } = call;
  if (plan.huge !== undefined) return sendHuge(call, plan.huge, plan.hugeAfter);
  if (request.stream) {
    begin(call, 200, SSE_HEADERS);
    const chunkDelay = Number(call.req.headers["x-mock-chunk-delay-ms"]);
    return pumpFrames(call, provider.streamFrames(call, answer), plan,
      Number.isFinite(chunkDelay) && chunkDelay >= 0 ? chunkDelay : DEFAULT_CHUNK_DELAY_MS);
  }
  if (plan.stall !== undefined) return begin(call, 200, { "content-type": "application/json" });
  const text = JSON.stringify(provider.jsonBody(call, answer));
  if (plan.malformed) return sendJson(call, 200, null, text.slice(0, Math.floor(text.length / 2)));
  if (plan.bodyDelayMs !== undefined) {
    begin(call, 200, { "content-type": "application/json" });
    return void setTimeout(() => isOpen(res) && res.end(text), plan.bodyDelayMs);
  }
  return sendJson(call, 200, null, text);
}

async function handleCompletion(call, state) {
  const raw = await readBody(call.req);
  state.recorded.set(call.target, { path: call.path, headers: call.req.headers, body: raw });
  const plan = state.faults.planFor(call.target, call.req.headers["x-mock-fault"], call.path);
  state.faults.limit(call.target, plan, call.provider === anthropic ? "anthropic" : "openai");
  state.stats.faulted(plan.labels);
  call.extraHeaders = plan.headers;

  const parsed = parseJsonObject(raw);
  const wantsStream = parsed.body?.stream === true;

  await wait(plan.delayMs, call.res);
  if (!isOpen(call.res)) return;
  if (plan.reset !== undefined && !wantsStream) return destroySocket(call.res);
  if (plan.status !== undefined) {
    return sendError(call, plan.status, plan.errorType, `mock fault: HTTP ${plan.status} ${statusText(plan.status)}`);
  }
  if (parsed.error) return sendError(call, 400, undefined, parsed.error);

  call.request = call.provider.parse(parsed.body);
  if (!state.promptCaches.has(call.target)) state.promptCaches.set(call.target, new Set());
  call.request.cache = promptCache(call.provider, parsed.body, call.request, state.promptCaches.get(call.target));
  call.id = `${call.provider === anthropic ? "msg_mock_" : "chatcmpl-mock-"}${state.nextId++}`;
  call.created = Math.floor(Date.now() / 1000);
  const take = plan.sampled ? `Take ${call.id}: ` : "";
  return sendCompletion(call, plan, answerTo(call.request, take));
}

/**
 * GET /v1/events?count=N: a plain (non-LLM) event stream of `id: i` / `data: tick i` events, resuming
 * after the request's Last-Event-ID, with `retry: 50` — for testing reconnection. Per-request faults
 * apply (e.g. `reset=2;times=1;key=k` cuts the first connection after two events).
 */
async function handleTicker(call, state, search) {
  const plan = state.faults.planFor(call.target, call.req.headers["x-mock-fault"], call.path);
  state.stats.faulted(plan.labels);
  call.extraHeaders = plan.headers;
  await wait(plan.delayMs, call.res);
  if (!isOpen(call.res)) return;
  if (plan.status !== undefined) return sendError(call, plan.status, plan.errorType, `mock fault: HTTP ${plan.status}`);
  const count = Math.min(Number(search.get("count")) || 10, 10_000);
  const after = Number(call.req.headers["last-event-id"]) || 0;
  const frames = ["retry: 50\n\n"];
  for (let i = after + 1; i <= count; i++) frames.push(`id: ${i}\ndata: tick ${i}\n\n`);
  begin(call, 200, SSE_HEADERS);
  const chunkDelay = Number(call.req.headers["x-mock-chunk-delay-ms"]);
  return pumpFrames(call, frames, plan, Number.isFinite(chunkDelay) && chunkDelay >= 0 ? chunkDelay : DEFAULT_CHUNK_DELAY_MS);
}

async function handleControl(call, state, path) {
  const { method } = call.req;
  if (path === "/control/stats" && method === "GET") return sendJson(call, 200, state.stats.snapshot());
  if (path === "/control/faults" && method === "GET") return sendJson(call, 200, state.faults.describe());
  if (path === "/control/last" && method === "GET") {
    const target = new URL(call.req.url, "http://mock").searchParams.get("target") ?? DEFAULT_TARGET;
    const last = state.recorded.get(target);
    if (!last) throw new HttpError(404, `no request recorded for target ${target}`);
    return sendJson(call, 200, last);
  }
  if (path === "/control/reset" && method === "POST") {
    await readBody(call.req);
    state.resetAll();
    return sendJson(call, 200, { ok: true });
  }
  if (path === "/control/faults" && method === "POST") {
    const parsed = parseJsonObject(await readBody(call.req));
    if (parsed.error) throw new HttpError(400, parsed.error);
    try {
      return sendJson(call, 200, { ok: true, faults: state.faults.set(parsed.body) });
    } catch (err) {
      throw err instanceof TypeError ? new HttpError(400, err.message) : err;
    }
  }
  throw new HttpError(404, `no control endpoint ${method} ${path}`);
}

/** Split an optional `/t/<name>` prefix off the path. */
function splitTarget(pathname) {
  const match = /^\/t\/([^/]+)(\/.*)?$/.exec(pathname);
  if (!match) return { target: DEFAULT_TARGET, path: pathname };
  let target = match[1];
  try {
    target = decodeURIComponent(target);
  } catch {
    // keep the raw segment
  }
  return { target, path: match[2] ?? "/" };
}

async function route(call, state) {
  const { req } = call;
  const { pathname, searchParams } = new URL(req.url ?? "/", "http://mock");
  if (req.method === "OPTIONS") {
    call.res.writeHead(204, { "access-control-max-age": "86400" });
    return void call.res.end();
  }
  if (pathname.startsWith("/control/")) return handleControl(call, state, pathname);

  const { target, path } = splitTarget(pathname);
  if (path === "/health" && req.method === "GET") return sendJson(call, 200, { ok: true });

  call.target = target;
  call.counted = true;
  state.stats.received(target, path, req.headers["idempotency-key"]);
  call.res.once("close", () => {
    state.stats.finished();
    if (!call.res.writableFinished && !call.res.resetByServer) state.stats.abandoned(target);
  });
  if (path === "/v1/events" && req.method === "GET") {
    call.provider = openai;
    return handleTicker(call, state, searchParams);
  }
  call.path = path;
  if (path === "/v1/embeddings") {
    call.provider = openai;
    if (req.method !== "POST") throw new HttpError(405, `${req.method} not allowed on ${path}`);
    return handleEmbeddings(call, state);
  }
  call.provider = COMPLETION_ROUTES[path];
  if (!call.provider) throw new HttpError(404, `unknown path ${path}`);
  if (req.method !== "POST") throw new HttpError(405, `${req.method} not allowed on ${path}`);
  return handleCompletion(call, state);
}

function onRequest(state, req, res) {
  for (const [name, value] of Object.entries(CORS_HEADERS)) res.setHeader(name, value);
  res.setHeader("x-request-id", `req_mock_${(state.requestSeq += 1)}`);
  res.on("error", () => {}); // writes racing a client disconnect
  req.on("error", () => {});

  const call = { req, res, stats: state.stats, target: DEFAULT_TARGET, counted: false, extraHeaders: {} };

  route(call, state).catch((err) => {
    if (!isOpen(res)) return;
    if (res.headersSent) return void res.end();
    const status = err instanceof HttpError ? err.status : 500;
    sendError(call, status, undefined, err.message);
  });
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/**
 * Start the mock. Resolves once listening.
 * @returns {Promise<{url: string, port: number, close(): Promise<void>, stats(): object,
 *   reset(): void, setFaults(cfg: object): void}>}
 */
export async function startMockLlm({ port = 0, host = "127.0.0.1", seed = 1 } = {}) {
  const state = {
    faults: new FaultState(seed), stats: new Stats(), nextId: 1, requestSeq: 0, recorded: new Map(), promptCaches: new Map(),
  };
  state.resetAll = () => {
    state.faults.reset();
    state.stats.reset();
    state.recorded.clear();
    state.promptCaches.clear();
  };

  const server = http.createServer((req, res) => onRequest(state, req, res));
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  const actualPort = server.address().port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing;
  return {
    url: `http://${urlHost}:${actualPort}`,
    port: actualPort,
    close() {
      closing ??= new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
    stats: () => state.stats.snapshot(),
    reset: () => state.resetAll(),
    setFaults(cfg) {
      state.faults.set(cfg);
    },
  };
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, inline] = argv[i].split("=", 2);
    const value = () => inline ?? argv[++i];
    if (flag === "--port") options.port = Number(value());
    else if (flag === "--host") options.host = value();
    else if (flag === "--seed") options.seed = Number(value());
    else throw new Error(`unknown argument ${argv[i]} (usage: mock-llm.mjs [--port N] [--host H] [--seed S])`);
  }
  if (options.port !== undefined && !(Number.isInteger(options.port) && options.port >= 0)) {
    throw new Error("--port must be a non-negative integer");
  }
  return options;
}

async function main() {
  const mock = await startMockLlm(parseArgs(process.argv.slice(2)));
  console.log(`mock-llm listening on ${mock.url}`);
  const stop = () => mock.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

const isDirectRun = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isDirectRun) {
  main().catch((err) => {
    console.error(`mock-llm: ${err.message}`);
    process.exit(1);
  });
}
