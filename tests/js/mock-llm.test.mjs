// Tests for the mock LLM upstream (www/mock-llm.mjs). Run: node --test tests/js/mock-llm.test.mjs
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mockEmbedding, startMockLlm } from "../../www/mock-llm.mjs";

const MOCK_PATH = fileURLToPath(new URL("../../www/mock-llm.mjs", import.meta.url));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const openaiBody = (extra = {}) => ({
  model: "gpt-test",
  messages: [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Hello there" },
  ],
  ...extra,
});
const anthropicBody = (extra = {}) => ({
  model: "claude-test",
  max_tokens: 1024,
  system: "You are terse.",
  messages: [{ role: "user", content: "Hello there" }],
  ...extra,
});

/** Parse an SSE body into [{ event, data }] (data left as the raw string). */
function parseSse(text) {
  return text
    .split("\n\n")
    .filter((block) => block.trim())
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data: "))
        .map((line) => line.slice(6))
        .join("\n");
      return { event, data };
    });
}

let mock;
before(async () => {
  mock = await startMockLlm({ port: 0 });
});
after(() => mock.close());
beforeEach(() => mock.reset());

function post(path, body, { fault, headers = {}, signal } = {}) {
  return fetch(mock.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(fault ? { "x-mock-fault": fault } : {}), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

describe("OpenAI chat completions", () => {
  test("JSON answer echoes the last user message with usage", async () => {
    const res = await post("/v1/chat/completions", openaiBody());
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^application\/json/);
    const body = await res.json();
    assert.equal(body.object, "chat.completion");
    assert.equal(body.model, "gpt-test");
    assert.match(body.id, /^chatcmpl-/);
    assert.equal(typeof body.created, "number");
    const [choice] = body.choices;
    assert.equal(choice.index, 0);
    assert.equal(choice.message.role, "assistant");
    assert.equal(choice.finish_reason, "stop");
    assert.ok(choice.message.content.startsWith('You said: "Hello there". '));
    const wordCount = choice.message.content.split(" ").length;
    assert.ok(wordCount >= 20 && wordCount <= 40, `word count ${wordCount}`);
    const promptChars = "You are terse.".length + "Hello there".length;
    assert.deepEqual(body.usage, {
      prompt_tokens: Math.ceil(promptChars / 4),
      completion_tokens: wordCount,
      total_tokens: Math.ceil(promptChars / 4) + wordCount,
    });
  });

  test("answers are deterministic", async () => {
    const a = await (await post("/v1/chat/completions", openaiBody())).json();
    const b = await (await post("/v1/chat/completions", openaiBody())).json();
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  });

  test("max_tokens truncates to that many words with finish_reason length", async () => {
    const body = await (await post("/v1/chat/completions", openaiBody({ max_tokens: 4 }))).json();
    assert.equal(body.choices[0].message.content, 'You said: "Hello there".');
    assert.equal(body.choices[0].finish_reason, "length");
    assert.equal(body.usage.completion_tokens, 4);
  });

  test("stream: chunks parse, usage chunk when asked, ends with [DONE], text equals JSON answer", async () => {
    const json = await (await post("/v1/chat/completions", openaiBody())).json();
    const res = await post("/v1/chat/completions", openaiBody({ stream: true, stream_options: { include_usage: true } }));
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^text\/event-stream/);
    const events = parseSse(await res.text());
    assert.equal(events.at(-1).data, "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    for (const chunk of chunks) {
      assert.equal(chunk.object, "chat.completion.chunk");
      assert.equal(chunk.model, "gpt-test");
    }
    assert.equal(chunks[0].choices[0].delta.role, "assistant");
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk.choices, []);
    assert.deepEqual(usageChunk.usage, json.usage);
    const finalChunk = chunks.at(-2);
    assert.deepEqual(finalChunk.choices[0].delta, {});
    assert.equal(finalChunk.choices[0].finish_reason, "stop");
    const wordChunks = chunks.slice(0, -2);
    assert.equal(wordChunks.length, json.usage.completion_tokens);
    assert.ok(wordChunks.every((c) => c.choices[0].finish_reason === null));
    const text = wordChunks.map((c) => c.choices[0].delta.content).join("");
    assert.equal(text, json.choices[0].message.content);
  });

  test("stream without include_usage has no usage chunk", async () => {
    const res = await post("/v1/chat/completions", openaiBody({ stream: true }));
    const events = parseSse(await res.text());
    assert.equal(events.at(-1).data, "[DONE]");
    const last = JSON.parse(events.at(-2).data);
    assert.equal(last.choices[0].finish_reason, "stop");
    assert.ok(events.slice(0, -1).every((e) => !("usage" in JSON.parse(e.data))));
  });

  test("invalid JSON body -> 400 OpenAI error object", async () => {
    const res = await post("/v1/chat/completions", "{nope");
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error.type, "invalid_request_error");
    assert.equal(body.error.code, null);
    assert.equal(typeof body.error.message, "string");
  });
});

describe("Anthropic messages", () => {
  test("JSON answer", async () => {
    const res = await post("/v1/messages", anthropicBody());
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.type, "message");
    assert.equal(body.role, "assistant");
    assert.equal(body.model, "claude-test");
    assert.equal(body.stop_reason, "end_turn");
    assert.equal(body.stop_sequence, null);
    assert.equal(body.content.length, 1);
    assert.equal(body.content[0].type, "text");
    assert.ok(body.content[0].text.startsWith('You said: "Hello there". '));
    const promptChars = "You are terse.".length + "Hello there".length;
    assert.deepEqual(body.usage, {
      input_tokens: Math.ceil(promptChars / 4),
      output_tokens: body.content[0].text.split(" ").length,
    });
  });

  test("max_tokens cut -> stop_reason max_tokens", async () => {
    const body = await (await post("/v1/messages", anthropicBody({ max_tokens: 3 }))).json();
    assert.equal(body.content[0].text, 'You said: "Hello');
    assert.equal(body.stop_reason, "max_tokens");
    assert.equal(body.usage.output_tokens, 3);
  });

  test("stream: exact event sequence", async () => {
    const json = await (await post("/v1/messages", anthropicBody())).json();
    const res = await post("/v1/messages", anthropicBody({ stream: true }));
    assert.match(res.headers.get("content-type"), /^text\/event-stream/);
    const events = parseSse(await res.text()).map(({ event, data }) => ({ event, data: JSON.parse(data) }));
    const words = json.usage.output_tokens;
    assert.deepEqual(
      events.map((e) => e.event),
      [
        "message_start",
        "content_block_start",
        "ping",
        ...Array(words).fill("content_block_delta"),
        "content_block_stop",
        "message_delta",
        "message_stop",
      ],
    );
    for (const { event, data } of events) assert.equal(data.type, event);
    const start = events[0].data.message;
    assert.deepEqual(start.content, []);
    assert.equal(start.model, "claude-test");
    assert.deepEqual(start.usage, { input_tokens: json.usage.input_tokens, output_tokens: 1 });
    assert.deepEqual(events[1].data, { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
    const deltas = events.filter((e) => e.event === "content_block_delta").map((e) => e.data);
    assert.ok(deltas.every((d) => d.index === 0 && d.delta.type === "text_delta"));
    assert.equal(deltas.map((d) => d.delta.text).join(""), json.content[0].text);
    assert.deepEqual(events.at(-2).data, {
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { output_tokens: words },
    });
  });

  test("missing max_tokens -> 400 Anthropic error", async () => {
    const { max_tokens, ...body } = anthropicBody();
    const res = await post("/v1/messages", body);
    assert.equal(res.status, 400);
    const err = await res.json();
    assert.equal(err.type, "error");
    assert.equal(err.error.type, "invalid_request_error");
    assert.match(err.error.message, /max_tokens/);
  });
});

describe("per-request faults", () => {
  test("status=503 gives provider-shaped errors", async () => {
    const res = await post("/v1/chat/completions", openaiBody(), { fault: "status=503" });
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.error.type, "server_error");

    const res2 = await post("/v1/messages", anthropicBody(), { fault: "status=503" });
    assert.equal(res2.status, 503);
    const body2 = await res2.json();
    assert.equal(body2.type, "error");
    assert.equal(body2.error.type, "api_error");
  });

  test("status=529 on Anthropic -> overloaded_error", async () => {
    const res = await post("/v1/messages", anthropicBody(), { fault: "status=529" });
    assert.equal(res.status, 529);
    assert.equal((await res.json()).error.type, "overloaded_error");
  });

  test("status=429;retry-after-ms=1500 sets headers and rate-limit bodies", async () => {
    const res = await post("/v1/chat/completions", openaiBody(), { fault: "status=429;retry-after-ms=1500" });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after-ms"), "1500");
    assert.equal((await res.json()).error.code, "rate_limit_exceeded");

    const res2 = await post("/v1/messages", anthropicBody(), {
      fault: "status=429; retry-after=2; x-should-retry=false",
    });
    assert.equal(res2.status, 429);
    assert.equal(res2.headers.get("retry-after"), "2");
    assert.equal(res2.headers.get("x-should-retry"), "false");
    assert.equal((await res2.json()).error.type, "rate_limit_error");
  });

  test("retry-after accepts an HTTP date", async () => {
    const date = "Wed, 21 Oct 2015 07:28:00 GMT";
    const res = await post("/v1/chat/completions", openaiBody(), { fault: `status=503;retry-after=${date}` });
    assert.equal(res.headers.get("retry-after"), date);
    await res.arrayBuffer();
  });

  test("error=<type> sets the code with sensible default statuses", async () => {
    const quota = await post("/v1/chat/completions", openaiBody(), { fault: "error=insufficient_quota" });
    assert.equal(quota.status, 429);
    assert.deepEqual((await quota.json()).error.code, "insufficient_quota");

    const ctx = await post("/v1/chat/completions", openaiBody(), { fault: "error=context_length_exceeded" });
    assert.equal(ctx.status, 400);
    const ctxBody = await ctx.json();
    assert.equal(ctxBody.error.code, "context_length_exceeded");
    assert.equal(ctxBody.error.type, "invalid_request_error");

    const policy = await post("/v1/chat/completions", openaiBody(), { fault: "error=content_policy_violation;status=422" });
    assert.equal(policy.status, 422);
    assert.equal((await policy.json()).error.code, "content_policy_violation");
  });

  test("unknown fault key -> 400", async () => {
    const res = await post("/v1/chat/completions", openaiBody(), { fault: "explode=1" });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /explode/);
  });

  test("times=2;key=k fails twice then succeeds", async () => {
    const statuses = [];
    for (let i = 0; i < 4; i += 1) {
      const res = await post("/v1/chat/completions", openaiBody(), { fault: "status=503;times=2;key=k" });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [503, 503, 200, 200]);
    // another key has its own counter
    const other = await post("/v1/chat/completions", openaiBody(), { fault: "status=503;times=2;key=other" });
    assert.equal(other.status, 503);
    await other.arrayBuffer();
  });

  test("delay=200 takes at least 200 ms", async () => {
    const started = performance.now();
    const res = await post("/v1/chat/completions", openaiBody(), { fault: "delay=200" });
    await res.json();
    assert.ok(performance.now() - started >= 195, "responded too early");
    assert.equal(res.status, 200);
  });

  test("reset=3 on a stream makes the body read reject", async () => {
    const res = await post("/v1/chat/completions", openaiBody({ stream: true }), { fault: "reset=3" });
    assert.equal(res.status, 200);
    await assert.rejects(res.text());
  });

  test("reset on a JSON request makes fetch reject", async () => {
    await assert.rejects(post("/v1/chat/completions", openaiBody(), { fault: "reset" }));
  });

  test("stall=2 sends two chunks then leaves the body hanging", async () => {
    const controller = new AbortController();
    const res = await post("/v1/chat/completions", openaiBody({ stream: true }), {
      fault: "stall=2",
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let received = "";
    const drained = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return "done";
        received += value;
      }
    })().catch(() => "aborted");
    const outcome = await Promise.race([drained, sleep(200).then(() => "pending")]);
    assert.equal(outcome, "pending");
    assert.equal(parseSse(received).length, 2);
    controller.abort();
    assert.equal(await drained, "aborted");
  });

  test("stall on a JSON request sends headers but no body", async () => {
    const controller = new AbortController();
    const res = await post("/v1/messages", anthropicBody(), { fault: "stall", signal: controller.signal });
    assert.equal(res.status, 200);
    const body = res.text().then(() => "done", () => "aborted");
    assert.equal(await Promise.race([body, sleep(200).then(() => "pending")]), "pending");
    controller.abort();
    assert.equal(await body, "aborted");
  });

  test("malformed stream has one invalid JSON chunk and otherwise completes", async () => {
    const res = await post("/v1/chat/completions", openaiBody({ stream: true }), { fault: "malformed" });
    const events = parseSse(await res.text());
    assert.equal(events.at(-1).data, "[DONE]");
    const invalid = events.slice(0, -1).filter(({ data }) => {
      try {
        JSON.parse(data);
        return false;
      } catch {
        return true;
      }
    });
    assert.equal(invalid.length, 1);
    assert.ok(invalid[0].data.startsWith('{"choices":[{"delta":'));
  });

  test("malformed JSON response is a truncated 200 body", async () => {
    const res = await post("/v1/chat/completions", openaiBody(), { fault: "malformed" });
    assert.equal(res.status, 200);
    await assert.rejects(res.json(), SyntaxError);
  });

  test("mid-stream-error sends a provider error event after 2 chunks", async () => {
    const res = await post("/v1/chat/completions", openaiBody({ stream: true }), { fault: "mid-stream-error" });
    const events = parseSse(await res.text());
    assert.equal(events.length, 3);
    assert.equal(JSON.parse(events[2].data).error.type, "server_error");

    const res2 = await post("/v1/messages", anthropicBody({ stream: true }), { fault: "mid-stream-error" });
    const events2 = parseSse(await res2.text());
    assert.deepEqual(events2.map((e) => e.event), ["message_start", "content_block_start", "error"]);
    assert.deepEqual(JSON.parse(events2[2].data).error.type, "overloaded_error");
  });

  test("x-mock-chunk-delay-ms slows the stream", async () => {
    const started = performance.now();
    const res = await post("/v1/chat/completions", openaiBody({ stream: true, max_tokens: 5 }), {
      headers: { "x-mock-chunk-delay-ms": "40" },
    });
    await res.text();
    // 5 words + final chunk + [DONE] = 7 frames, 6 gaps of 40 ms
    assert.ok(performance.now() - started >= 6 * 40 - 5);
  });

  test("a client aborting mid-stream does not hurt the server", async () => {
    const controller = new AbortController();
    const res = await post("/v1/chat/completions", openaiBody({ stream: true }), { signal: controller.signal });
    const reader = res.body.getReader();
    await reader.read();
    controller.abort();
    await assert.rejects(reader.read());
    await sleep(30);
    const ok = await post("/v1/chat/completions", openaiBody());
    assert.equal(ok.status, 200);
    await ok.json();
    assert.equal(mock.stats().inFlight, 0);
  });
});

describe("global faults", () => {
  async function statusSequence(count, path = "/v1/chat/completions") {
    const statuses = [];
    for (let i = 0; i < count; i += 1) {
      const res = await post(path, openaiBody());
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    return statuses;
  }

  async function setFaults(cfg) {
    const res = await post("/control/faults", cfg);
    assert.equal(res.status, 200);
    return res.json();
  }

  test("a seed gives the same status sequence twice", async () => {
    const cfg = { seed: 42, errorRate: 0.3, rate429: 0.3, errorStatuses: [500, 502, 503] };
    await setFaults(cfg);
    const first = await statusSequence(20);
    await post("/control/reset", {});
    await setFaults(cfg);
    const second = await statusSequence(20);
    assert.deepEqual(first, second);
    assert.ok(first.includes(200) && first.some((s) => s >= 500) && first.includes(429), first.join(","));
    for (const status of first) assert.ok([200, 429, 500, 502, 503].includes(status));

    mock.setFaults({ ...cfg, seed: 43 });
    assert.notDeepEqual(await statusSequence(20), first);
  });

  test("rate429 sends retry-after-ms and Retry-After", async () => {
    mock.setFaults({ rate429: 1, retryAfterMs: 1500 });
    const res = await post("/v1/messages", anthropicBody());
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after-ms"), "1500");
    assert.equal(res.headers.get("retry-after"), "2");
    assert.equal((await res.json()).error.type, "rate_limit_error");
  });

  test("latencyMs delays every request", async () => {
    mock.setFaults({ latencyMs: 120 });
    const started = performance.now();
    await (await post("/v1/chat/completions", openaiBody())).json();
    assert.ok(performance.now() - started >= 115);
  });

  test("slowRate makes that fraction of a target's requests slowMs slow before the headers, by its seed", async () => {
    const cfg = { target: "slowpoke", seed: 7, slowRate: 0.5, slowMs: 150 };
    const times = async () => {
      const out = [];
      for (let i = 0; i < 12; i += 1) {
        const started = performance.now();
        const res = await post("/t/slowpoke/v1/chat/completions", openaiBody());
        out.push(performance.now() - started >= 140 ? "slow" : "fast");
        await res.arrayBuffer();
      }
      return out;
    };
    await setFaults(cfg);
    const first = await times();
    assert.ok(first.includes("slow") && first.includes("fast"), first.join(","));
    assert.equal(mock.stats().byFault["global:slow"], first.filter((t) => t === "slow").length);
    await setFaults(cfg);
    assert.deepEqual(await times(), first, "the same seed, the same slow requests");
    // Other targets are not slowed; a config without slowRate draws as before.
    const started = performance.now();
    await (await post("/t/other/v1/chat/completions", openaiBody())).arrayBuffer();
    assert.ok(performance.now() - started < 140);
    for (const bad of [{ slowRate: 2 }, { slowMs: -1 }]) assert.equal((await post("/control/faults", bad)).status, 400);
  });

  test("a request whose client goes away before the answer is counted abandoned", async () => {
    const controller = new AbortController();
    const sent = fetch(`${mock.url}/t/leaver/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify(openaiBody()),
      headers: { "x-mock-fault": "delay=2000" },
      signal: controller.signal,
    });
    await sleep(100);
    controller.abort();
    await assert.rejects(sent);
    for (let i = 0; i < 50 && !mock.stats().byTarget.leaver?.abandoned; i += 1) await sleep(10);
    assert.equal(mock.stats().byTarget.leaver.abandoned, 1);
    await (await post("/t/leaver/v1/chat/completions", openaiBody())).arrayBuffer();
    assert.equal(mock.stats().byTarget.leaver.abandoned, 1, "a completed answer is not");
  });

  test("resetRate: 1 breaks streams after 1..5 chunks", async () => {
    mock.setFaults({ resetRate: 1, seed: 9 });
    const res = await post("/v1/chat/completions", openaiBody({ stream: true }));
    assert.equal(res.status, 200);
    await assert.rejects(res.text());
  });

  test("outage on /t/primary while /t/backup stays fine", async () => {
    await setFaults({ target: "primary", outage: true });
    assert.deepEqual(await statusSequence(3, "/t/primary/v1/chat/completions"), [503, 503, 503]);
    assert.deepEqual(await statusSequence(3, "/t/backup/v1/chat/completions"), [200, 200, 200]);
    const res = await post("/t/primary/v1/messages", anthropicBody());
    assert.equal(res.status, 503);
    assert.equal((await res.json()).type, "error");
    const faults = await (await fetch(`${mock.url}/control/faults`)).json();
    assert.equal(faults.primary.outage, true);
  });

  test("paths limits an outage to the chat endpoint while embeddings work", async () => {
    await setFaults({ target: "chat-down", outage: true, paths: ["/v1/chat/completions"] });
    assert.deepEqual(await statusSequence(2, "/t/chat-down/v1/chat/completions"), [503, 503]);
    const embedded = await post("/t/chat-down/v1/embeddings", { model: "emb-1", input: "still up" });
    assert.equal(embedded.status, 200);
    assert.equal((await embedded.json()).data.length, 1);
    const bad = await post("/control/faults", { paths: "/v1/chat/completions" });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /paths/);
  });

  test("per-request header faults take precedence over global ones", async () => {
    mock.setFaults({ outage: true });
    const res = await post("/v1/chat/completions", openaiBody(), { fault: "status=429" });
    assert.equal(res.status, 429);
    await res.arrayBuffer();
  });

  test("bad control input -> 400, server keeps going", async () => {
    assert.equal((await post("/control/faults", "{oops")).status, 400);
    const bad = await post("/control/faults", { errorRate: 3 });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /errorRate/);
    assert.equal((await post("/control/faults", { typo: 1 })).status, 400);
    assert.throws(() => mock.setFaults({ rate429: -1 }), TypeError);
    assert.equal((await fetch(`${mock.url}/health`)).status, 200);
  });
});

describe("stats, CORS, health, lifecycle", () => {
  test("stats counters match the requests sent", async () => {
    await (await post("/v1/chat/completions", openaiBody())).json();
    await (await post("/v1/chat/completions", openaiBody(), { fault: "status=503" })).json();
    await (await post("/t/primary/v1/messages", anthropicBody())).json();
    await (await post("/t/primary/v1/messages", anthropicBody(), { fault: "status=429;retry-after-ms=10" })).json();
    await (await post("/t/primary/v1/messages", { ...anthropicBody(), max_tokens: undefined })).json();
    await (await fetch(`${mock.url}/health`)).json();
    await fetch(`${mock.url}/v1/chat/completions`, { method: "OPTIONS" });
    const expected = {
      total: 5,
      byTarget: {
        default: { total: 2, byPath: { "/v1/chat/completions": 2 }, byStatus: { 200: 1, 503: 1 } },
        primary: { total: 3, byPath: { "/v1/messages": 3 }, byStatus: { 200: 1, 400: 1, 429: 1 } },
      },
      byFault: { status: 2, "retry-after-ms": 1 },
      byIdempotencyKey: {},
      inFlight: 0,
    };
    assert.deepEqual(mock.stats(), expected);
    assert.deepEqual(await (await fetch(`${mock.url}/control/stats`)).json(), expected);

    assert.equal((await post("/control/reset", {})).status, 200);
    assert.deepEqual(mock.stats(), { total: 0, byTarget: {}, byFault: {}, byIdempotencyKey: {}, inFlight: 0 });
  });

  test("CORS preflight -> 204, CORS headers everywhere", async () => {
    const pre = await fetch(`${mock.url}/t/x/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        origin: "http://example.test",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, x-mock-fault",
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*");
    assert.equal(pre.headers.get("access-control-allow-headers"), "*");
    assert.equal(pre.headers.get("access-control-allow-methods"), "GET, POST, OPTIONS");
    assert.equal(pre.headers.get("access-control-expose-headers"), "*");
    for (const res of [
      await post("/v1/chat/completions", openaiBody(), { fault: "status=500" }),
      await fetch(`${mock.url}/control/stats`),
      await fetch(`${mock.url}/health`),
    ]) {
      assert.equal(res.headers.get("access-control-allow-origin"), "*");
      await res.arrayBuffer();
    }
    assert.equal(mock.stats().total, 1);
  });

  test("health and unknown paths", async () => {
    const health = await fetch(`${mock.url}/health`);
    assert.deepEqual(await health.json(), { ok: true });
    const missing = await fetch(`${mock.url}/v1/nope`, { method: "POST", body: "{}" });
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
  });

  test("close() resolves promptly with a stalled stream open", async () => {
    const other = await startMockLlm();
    const res = await fetch(`${other.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "x-mock-fault": "stall=1" },
      body: JSON.stringify(openaiBody({ stream: true })),
    });
    const body = res.text().catch(() => "aborted");
    const started = performance.now();
    await other.close();
    assert.ok(performance.now() - started < 500);
    assert.equal(await body, "aborted");
  });

  test("runs directly from the command line", async () => {
    const child = spawn(process.execPath, [MOCK_PATH, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const line = await new Promise((resolve, reject) => {
        child.stdout.setEncoding("utf8");
        child.stdout.once("data", resolve);
        child.once("exit", (code) => reject(new Error(`exited with ${code}`)));
      });
      const match = /^mock-llm listening on (http:\/\/127\.0\.0\.1:\d+)\n$/.exec(line);
      assert.ok(match, line);
      assert.deepEqual(await (await fetch(`${match[1]}/health`)).json(), { ok: true });
    } finally {
      child.kill();
    }
  });
});

describe("tools", () => {
  const TIME_SCHEMA = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
  const WEATHER_SCHEMA = { type: "object", properties: { location: { type: "string" }, days: { type: "integer", minimum: 1, maximum: 7 } } };
  const openaiTool = (name, parameters) => ({ type: "function", function: { name, description: `${name} tool`, parameters } });
  const anthropicTool = (name, input_schema) => ({ name, description: `${name} tool`, input_schema });
  const ASK_TIME = "What time is it in New York?";
  const openaiTools = (extra = {}) => ({
    model: "gpt-test",
    messages: [{ role: "user", content: ASK_TIME }],
    tools: [openaiTool("get_time", TIME_SCHEMA), openaiTool("get_weather", WEATHER_SCHEMA)],
    ...extra,
  });
  const anthropicTools = (extra = {}) => ({
    model: "claude-test",
    max_tokens: 256,
    messages: [{ role: "user", content: "What time is it in Tokyo?" }],
    tools: [anthropicTool("get_time", TIME_SCHEMA), anthropicTool("get_weather", WEATHER_SCHEMA)],
    ...extra,
  });
  const sseJson = async (res) => parseSse(await res.text()).map(({ event, data }) => ({ event, data: data === "[DONE]" ? data : JSON.parse(data) }));

  test("OpenAI JSON: a question the tool answers gets a tool call, the same one every time", async () => {
    const body = await (await post("/v1/chat/completions", openaiTools())).json();
    const [choice] = body.choices;
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.role, "assistant");
    assert.equal(choice.message.content, null);
    assert.equal(choice.message.tool_calls.length, 1, "only the tool the question is about");
    const [call] = choice.message.tool_calls;
    assert.match(call.id, /^call_[0-9a-z]+$/);
    assert.equal(call.type, "function");
    assert.equal(call.function.name, "get_time");
    assert.deepEqual(JSON.parse(call.function.arguments), { city: "New York" });
    assert.ok(body.usage.completion_tokens > 0);
    const again = await (await post("/v1/chat/completions", openaiTools())).json();
    assert.deepEqual(again.choices, body.choices);
  });

  test("OpenAI stream: delta.tool_calls with the id and name first, then the arguments in several pieces", async () => {
    const json = await (await post("/v1/chat/completions", openaiTools())).json();
    const res = await post("/v1/chat/completions", openaiTools({ stream: true, stream_options: { include_usage: true } }));
    const events = await sseJson(res);
    assert.equal(events.at(-1).data, "[DONE]");
    const chunks = events.slice(0, -1).map((e) => e.data);
    assert.deepEqual(chunks.at(-1).usage, json.usage);
    assert.deepEqual(chunks.at(-2).choices[0], { index: 0, delta: {}, finish_reason: "tool_calls" });
    const deltas = chunks.slice(0, -2).map((c) => c.choices[0].delta);
    const [expected] = json.choices[0].message.tool_calls;
    assert.deepEqual(deltas[0], {
      role: "assistant",
      content: null,
      tool_calls: [{ index: 0, id: expected.id, type: "function", function: { name: "get_time", arguments: "" } }],
    });
    const rest = deltas.slice(1);
    assert.ok(rest.length >= 2, `arguments in ${rest.length} pieces`);
    for (const delta of rest) {
      assert.deepEqual(Object.keys(delta), ["tool_calls"]);
      assert.equal(delta.tool_calls[0].index, 0);
      assert.equal(delta.tool_calls[0].id, undefined);
    }
    assert.equal(rest.map((d) => d.tool_calls[0].function.arguments).join(""), expected.function.arguments);
  });

  test("OpenAI: a conversation ending in a tool result is answered in words that use it", async () => {
    const [call] = (await (await post("/v1/chat/completions", openaiTools())).json()).choices[0].message.tool_calls;
    const body = openaiTools({
      messages: [
        { role: "user", content: ASK_TIME },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: JSON.stringify({ city: "New York", time: "09:15" }) },
      ],
    });
    const json = await (await post("/v1/chat/completions", body)).json();
    assert.equal(json.choices[0].finish_reason, "stop");
    assert.equal(json.choices[0].message.tool_calls, undefined);
    assert.equal(json.choices[0].message.content, "get_time says city: New York, time: 09:15.");
    const events = await sseJson(await post("/v1/chat/completions", { ...body, stream: true }));
    const chunks = events.slice(0, -1).map((e) => e.data);
    assert.equal(chunks.map((c) => c.choices[0].delta.content ?? "").join(""), json.choices[0].message.content);
    assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
  });

  test("OpenAI tool_choice: none, forced by name, required, and parallel calls", async () => {
    const none = await (await post("/v1/chat/completions", openaiTools({ tool_choice: "none" }))).json();
    assert.equal(none.choices[0].finish_reason, "stop");
    assert.ok(none.choices[0].message.content.startsWith(`You said: "${ASK_TIME}"`));

    const forced = await (await post("/v1/chat/completions", openaiTools({ tool_choice: { type: "function", function: { name: "get_weather" } } }))).json();
    const forcedCalls = forced.choices[0].message.tool_calls;
    assert.deepEqual(forcedCalls.map((c) => c.function.name), ["get_weather"]);
    assert.deepEqual(JSON.parse(forcedCalls[0].function.arguments), { location: "New York", days: 1 });

    const required = await (await post("/v1/chat/completions", openaiTools({ tool_choice: "required", messages: [{ role: "user", content: "Hello" }] }))).json();
    assert.deepEqual(required.choices[0].message.tool_calls.map((c) => c.function.name), ["get_time"]);

    const both = openaiTools({ messages: [{ role: "user", content: "The time and the weather in Oslo, please" }] });
    const parallel = await (await post("/v1/chat/completions", both)).json();
    assert.deepEqual(parallel.choices[0].message.tool_calls.map((c) => c.function.name), ["get_time", "get_weather"]);
    const ids = parallel.choices[0].message.tool_calls.map((c) => c.id);
    assert.equal(new Set(ids).size, 2);
    const single = await (await post("/v1/chat/completions", { ...both, parallel_tool_calls: false })).json();
    assert.equal(single.choices[0].message.tool_calls.length, 1);

    const streamed = await sseJson(await post("/v1/chat/completions", { ...both, stream: true }));
    const heads = streamed.slice(0, -1).flatMap((e) => e.data.choices[0].delta.tool_calls ?? []).filter((t) => t.id);
    assert.deepEqual(heads.map((t) => [t.index, t.id]), [[0, ids[0]], [1, ids[1]]]);
  });

  test("OpenAI: tool messages must answer a call, forced names must exist, images must be URLs (400s)", async () => {
    const cases = [
      openaiTools({ messages: [{ role: "user", content: "hi" }, { role: "tool", tool_call_id: "call_x", content: "1" }] }),
      openaiTools({
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: null, tool_calls: [{ id: "call_a", type: "function", function: { name: "get_time", arguments: "{}" } }] },
          { role: "user", content: "no answer to call_a" },
        ],
      }),
      openaiTools({ tool_choice: { type: "function", function: { name: "nope" } } }),
      { messages: [{ role: "user", content: "hi" }], tool_choice: "auto" },
      openaiTools({ tools: [{ type: "function", function: { name: "bad name" } }] }),
      openaiTools({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "file:///etc/passwd" } }] }] }),
    ];
    for (const body of cases) {
      const res = await post("/v1/chat/completions", body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await res.json()).error.type, "invalid_request_error");
    }
    const image = { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } };
    const ok = await post("/v1/chat/completions", openaiTools({ messages: [{ role: "user", content: [{ type: "text", text: "Describe" }, image] }] }));
    assert.equal(ok.status, 200);
    assert.ok((await ok.json()).choices[0].message.content.startsWith('You said: "Describe"'));
  });

  test("Anthropic JSON: Claude's text, then a tool_use block, stop_reason tool_use", async () => {
    const body = await (await post("/v1/messages", anthropicTools())).json();
    assert.equal(body.stop_reason, "tool_use");
    assert.deepEqual(body.content[0], { type: "text", text: "I'll use get_time." });
    assert.equal(body.content.length, 2);
    const use = body.content[1];
    assert.equal(use.type, "tool_use");
    assert.match(use.id, /^toolu_[0-9a-z]+$/);
    assert.equal(use.name, "get_time");
    assert.deepEqual(use.input, { city: "Tokyo" });
    assert.deepEqual(await (await post("/v1/messages", anthropicTools())).json().then((b) => b.content), body.content);
  });

  test("Anthropic stream: content_block_start(tool_use), several input_json_delta, content_block_stop", async () => {
    const json = await (await post("/v1/messages", anthropicTools())).json();
    const events = await sseJson(await post("/v1/messages", anthropicTools({ stream: true })));
    for (const { event, data } of events) assert.equal(data.type, event);
    const at = events.findIndex((e) => e.event === "content_block_start" && e.data.content_block.type === "tool_use");
    assert.deepEqual(events[at].data, {
      type: "content_block_start",
      index: 1,
      content_block: { type: "tool_use", id: json.content[1].id, name: "get_time", input: {} },
    });
    const stop = events.findIndex((e, i) => i > at && e.event === "content_block_stop");
    assert.deepEqual(events[stop].data, { type: "content_block_stop", index: 1 });
    const pieces = events.slice(at + 1, stop).map((e) => e.data);
    assert.ok(pieces.length >= 3, `${pieces.length} deltas`);
    for (const piece of pieces) {
      assert.equal(piece.type, "content_block_delta");
      assert.equal(piece.index, 1);
      assert.equal(piece.delta.type, "input_json_delta");
    }
    assert.deepEqual(JSON.parse(pieces.map((p) => p.delta.partial_json).join("")), json.content[1].input);
    const text = events.filter((e) => e.data.delta?.type === "text_delta").map((e) => e.data.delta.text).join("");
    assert.equal(text, json.content[0].text);
    assert.deepEqual(events.at(-2).data, {
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { output_tokens: json.usage.output_tokens },
    });
    assert.equal(events.at(-1).event, "message_stop");
  });

  test("Anthropic forced tool: exactly that tool, no text, an input that fits its schema (JSON output)", async () => {
    const schema = {
      type: "object",
      properties: {
        title: { type: "string", maxLength: 5 },
        score: { type: "number", minimum: 3, maximum: 9 },
        tags: { type: "array", items: { type: "string", enum: ["a", "b"] }, minItems: 2 },
        when: { type: "string", format: "date-time" },
        kind: { anyOf: [{ type: "null" }, { const: "review" }] },
        nested: { type: "object", properties: { ok: { type: "boolean" } } },
      },
      required: ["title", "score"],
    };
    const body = anthropicTools({
      messages: [{ role: "user", content: "Rate this film" }],
      tools: [anthropicTool("get_time", TIME_SCHEMA), anthropicTool("json_output", schema)],
      tool_choice: { type: "tool", name: "json_output" },
    });
    const json = await (await post("/v1/messages", body)).json();
    assert.equal(json.stop_reason, "tool_use");
    assert.equal(json.content.length, 1);
    assert.equal(json.content[0].name, "json_output");
    assert.deepEqual(json.content[0].input, {
      title: "Rate ",
      score: 3,
      tags: ["a", "a"],
      when: "2026-01-01T00:00:00Z",
      kind: "review",
      nested: { ok: true },
    });
    const events = await sseJson(await post("/v1/messages", { ...body, stream: true }));
    assert.deepEqual(events.filter((e) => e.event === "content_block_start").map((e) => [e.data.index, e.data.content_block.type]), [[0, "tool_use"]]);
    const partial = events.filter((e) => e.data.delta?.type === "input_json_delta").map((e) => e.data.delta.partial_json).join("");
    assert.deepEqual(JSON.parse(partial), json.content[0].input);
    // Forced even after a tool result; any ("required") calls the tool the user names, without a preamble.
    const any = await (await post("/v1/messages", anthropicTools({ tool_choice: { type: "any" } }))).json();
    assert.deepEqual(any.content.map((b) => b.type), ["tool_use"]);
  });

  test("Anthropic: a user turn of tool_result blocks is answered in words that use them", async () => {
    const first = await (await post("/v1/messages", anthropicTools())).json();
    const body = anthropicTools({
      messages: [
        { role: "user", content: "What time is it in Tokyo?" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: first.content[1].id, content: [{ type: "text", text: '{"city":"Tokyo","time":"23:15"}' }] }] },
      ],
    });
    const json = await (await post("/v1/messages", body)).json();
    assert.equal(json.stop_reason, "end_turn");
    assert.deepEqual(json.content, [{ type: "text", text: "get_time says city: Tokyo, time: 23:15." }]);
    const events = await sseJson(await post("/v1/messages", { ...body, stream: true }));
    const text = events.filter((e) => e.data.delta?.type === "text_delta").map((e) => e.data.delta.text).join("");
    assert.equal(text, json.content[0].text);
    assert.equal(events.at(-2).data.delta.stop_reason, "end_turn");
  });

  test("Anthropic: tool_result ids, forced names, tool schemas and image sources are checked (400s)", async () => {
    const use = { type: "tool_use", id: "toolu_a", name: "get_time", input: { city: "Oslo" } };
    const cases = [
      anthropicTools({ messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_x", content: "1" }] }] }),
      anthropicTools({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: [use] }, { role: "user", content: "ignored the call" }] }),
      anthropicTools({ tool_choice: { type: "tool", name: "nope" } }),
      anthropicTools({ tools: [{ name: "get_time", parameters: TIME_SCHEMA }] }),
      anthropicTools({ messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "text/html", data: "PGI+" } }] }] }),
    ];
    for (const body of cases) {
      const res = await post("/v1/messages", body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await res.json()).error.type, "invalid_request_error");
    }
    const image = { type: "image", source: { type: "url", url: "https://example.com/cat.png" } };
    const ok = await post("/v1/messages", anthropicTools({ messages: [{ role: "user", content: [image, { type: "text", text: "Describe" }] }] }));
    assert.equal(ok.status, 200);
  });

  test("JSON response formats and stop sequences, both dialects", async () => {
    const schema = { type: "object", properties: { answer: { type: "string" }, n: { type: "integer" } }, required: ["answer", "n"] };
    const format = { type: "json_schema", json_schema: { name: "reply", schema, strict: true } };
    const json = await (await post("/v1/chat/completions", openaiBody({ response_format: format }))).json();
    assert.deepEqual(JSON.parse(json.choices[0].message.content), { answer: "Hello there", n: 1 });
    const object = await (await post("/v1/chat/completions", openaiBody({ response_format: { type: "json_object" } }))).json();
    assert.deepEqual(JSON.parse(object.choices[0].message.content), { answer: "Hello there" });
    const streamed = await sseJson(await post("/v1/chat/completions", openaiBody({ response_format: format, stream: true })));
    const pieces = streamed.slice(0, -1).map((e) => e.data.choices[0].delta.content).filter((c) => c !== undefined);
    assert.ok(pieces.length >= 2);
    assert.equal(pieces.join(""), json.choices[0].message.content);
    const claude = await (await post("/v1/messages", anthropicBody({ output_format: { type: "json_schema", schema } }))).json();
    assert.deepEqual(JSON.parse(claude.content[0].text), { answer: "Hello there", n: 1 });

    const cut = await (await post("/v1/chat/completions", openaiBody({ stop: ["weighs", "model"] }))).json();
    assert.equal(cut.choices[0].message.content, 'You said: "Hello there". The mock ');
    assert.equal(cut.choices[0].finish_reason, "stop");
    const cutClaude = await (await post("/v1/messages", anthropicBody({ stop_sequences: ["weighs"] }))).json();
    assert.equal(cutClaude.content[0].text, 'You said: "Hello there". The mock model ');
    assert.equal(cutClaude.stop_reason, "stop_sequence");
    assert.equal(cutClaude.stop_sequence, "weighs");
  });
});

describe("prompt caching", () => {
  const long = (n, word = "cache ") => word.repeat(Math.ceil(n / word.length)).slice(0, n);
  const mark = { cache_control: { type: "ephemeral" } };
  const claude = (question, extra = {}) =>
    anthropicBody({ system: [{ type: "text", text: long(4000), ...mark }], messages: [{ role: "user", content: question }], ...extra });

  test("Anthropic: a marked prefix is written the first time, read after, per target; input_tokens is the rest", async () => {
    const first = await (await post("/v1/messages", claude("hi"))).json();
    const words = first.usage.output_tokens;
    // Prompt: ceil((4000 + 2) / 4) = 1001 tokens, of which the system prefix is floor(4000 / 4) = 1000.
    assert.deepEqual(first.usage, { input_tokens: 1, cache_creation_input_tokens: 1000, cache_read_input_tokens: 0, output_tokens: words });
    const second = await (await post("/v1/messages", claude("hello"))).json();
    assert.deepEqual(second.usage, {
      input_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 1000, output_tokens: second.usage.output_tokens,
    });
    const other = await (await post("/t/other/v1/messages", claude("hello"))).json();
    assert.equal(other.usage.cache_creation_input_tokens, 1000, "another target has its own cache");
    const streamed = parseSse(await (await post("/v1/messages", claude("hi", { stream: true }))).text());
    assert.deepEqual(JSON.parse(streamed[0].data).message.usage, {
      input_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 1000, output_tokens: 1,
    });
    await post("/control/reset", {});
    const after = await (await post("/v1/messages", claude("hi"))).json();
    assert.equal(after.usage.cache_creation_input_tokens, 1000, "reset forgets the cache");
  });

  test("Anthropic: the longest marked prefix seen is read, the rest up to the last mark written; at most 4 marks", async () => {
    const tools = [{ name: "lookup", description: long(800), input_schema: { type: "object" }, ...mark }];
    const toolChars = JSON.stringify({ name: "lookup", description: long(800), input_schema: { type: "object" } }).length;
    const ask = (question) => anthropicBody({
      system: "Be brief.", tools, tool_choice: { type: "none" },
      messages: [{ role: "user", content: [{ type: "text", text: long(2000, "doc "), ...mark }, { type: "text", text: question }] }],
    });
    await post("/v1/messages", ask("one"));
    const changed = await (await post("/v1/messages", anthropicBody({
      system: "Be brief.", tools, tool_choice: { type: "none" },
      messages: [{ role: "user", content: [{ type: "text", text: long(2000, "new "), ...mark }, { type: "text", text: "two" }] }],
    }))).json();
    const toolsTokens = Math.floor(toolChars / 4);
    const allTokens = Math.floor((toolChars + "Be brief.".length + 2000) / 4);
    assert.equal(changed.usage.cache_read_input_tokens, toolsTokens, "the tools prefix is read");
    assert.equal(changed.usage.cache_creation_input_tokens, allTokens - toolsTokens, "the new document is written");
    const again = await (await post("/v1/messages", ask("three"))).json();
    assert.equal(again.usage.cache_read_input_tokens, allTokens);
    assert.equal(again.usage.cache_creation_input_tokens, 0);
    const five = anthropicBody({
      messages: [{ role: "user", content: Array.from({ length: 5 }, (_, i) => ({ type: "text", text: `p${i}`, ...mark })) }],
    });
    const res = await post("/v1/messages", five);
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /A maximum of 4 blocks with cache_control may be provided. Found 5./);
    const wrong = await post("/v1/messages", anthropicBody({ system: [{ type: "text", text: "x", cache_control: { type: "forever" } }] }));
    assert.equal(wrong.status, 400);
  });

  test("OpenAI: a prompt of 1024 tokens or more seen before reports cached_tokens, in steps of 128", async () => {
    const gpt = (question, extra = {}) =>
      openaiBody({ messages: [{ role: "system", content: long(5000) }, { role: "user", content: question }], ...extra });
    const first = await (await post("/v1/chat/completions", gpt("hi"))).json();
    assert.equal(first.usage.prompt_tokens, 1251);
    assert.deepEqual(first.usage.prompt_tokens_details, { cached_tokens: 0 });
    const second = await (await post("/v1/chat/completions", gpt("hello"))).json();
    // The system message's prefix is floor(5000 / 4) = 1250 tokens: 1152 in steps of 128.
    assert.deepEqual(second.usage.prompt_tokens_details, { cached_tokens: 1152 });
    assert.equal(second.usage.prompt_tokens, 1252, "cached tokens are part of prompt_tokens");
    const res = await post("/v1/chat/completions", gpt("hey", { stream: true, stream_options: { include_usage: true } }));
    const events = parseSse(await res.text()).filter((e) => e.data !== "[DONE]");
    assert.deepEqual(JSON.parse(events.at(-1).data).usage.prompt_tokens_details, { cached_tokens: 1152 });
    const short = await (await post("/v1/chat/completions", openaiBody())).json();
    assert.equal(short.usage.prompt_tokens_details, undefined, "no details under 1024 tokens");
  });
});

describe("embeddings", () => {
  const cosine = (a, b) => a.reduce((sum, x, i) => sum + x * b[i], 0);
  const floats = (b64) => {
    const bytes = Buffer.from(b64, "base64");
    return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
  };

  test("deterministic unit vectors, close for paraphrases and far for unrelated texts", async () => {
    const input = ["What is the capital of France?", "Tell me the capital of France", "How do I bake sourdough bread?"];
    const res = await post("/t/emb/v1/embeddings", { model: "e-1", input });
    assert.equal(res.status, 200);
    const json = await res.json();
    assert.equal(json.object, "list");
    assert.equal(json.model, "e-1");
    assert.deepEqual(json.data.map((d) => d.index), [0, 1, 2]);
    const [a, b, c] = json.data.map((d) => d.embedding);
    assert.equal(a.length, 64);
    assert.ok(Math.abs(cosine(a, a) - 1) < 1e-6);
    assert.ok(cosine(a, b) > 0.7, `paraphrase ${cosine(a, b)}`);
    assert.ok(cosine(a, c) < 0.3, `unrelated ${cosine(a, c)}`);
    assert.deepEqual(a, Array.from(mockEmbedding(input[0])));
    const tokens = input.reduce((n, t) => n + Math.ceil(t.length / 4), 0);
    assert.deepEqual(json.usage, { prompt_tokens: tokens, total_tokens: tokens });
    const last = await (await fetch(`${mock.url}/control/last?target=emb`)).json();
    assert.equal(last.path, "/v1/embeddings");
    assert.deepEqual(JSON.parse(last.body).input, input);
  });

  test("dimensions, base64, floats despite base64, reversed order", async () => {
    const body = { model: "e", input: ["one two", "three"], dimensions: 16, encoding_format: "base64" };
    const b64 = await (await post("/v1/embeddings", body)).json();
    assert.equal(typeof b64.data[0].embedding, "string");
    assert.deepEqual(floats(b64.data[0].embedding), Array.from(mockEmbedding("one two", 16)));
    const ignored = await (await post("/v1/embeddings", body, { headers: { "x-mock-encoding": "float" } })).json();
    assert.deepEqual(ignored.data[1].embedding, Array.from(mockEmbedding("three", 16)));
    const reversed = await (await post("/v1/embeddings", body, { headers: { "x-mock-order": "reverse" } })).json();
    assert.deepEqual(reversed.data.map((d) => d.index), [1, 0]);
    const single = await (await post("/v1/embeddings", { model: "e", input: "just one" })).json();
    assert.equal(single.data.length, 1);
  });

  test("bad requests are 400s; faults apply", async () => {
    for (const body of [
      { model: "e", input: [] },
      { model: "e", input: [1] },
      { input: ["x"] },
      { model: "e", input: ["x"], dimensions: 0 },
      { model: "e", input: ["x"], encoding_format: "int8" },
      { model: "e", input: Array(2049).fill("x") },
    ]) {
      const res = await post("/v1/embeddings", body);
      assert.equal(res.status, 400, JSON.stringify(body).slice(0, 80));
      assert.ok((await res.json()).error.message);
    }
    assert.equal((await post("/v1/embeddings", { model: "e", input: "x" }, { fault: "status=503" })).status, 503);
    const malformed = await post("/v1/embeddings", { model: "e", input: "x" }, { fault: "malformed" });
    await assert.rejects(malformed.json());
    const stats = await (await fetch(`${mock.url}/control/stats`)).json();
    assert.equal(stats.byTarget.default.byPath["/v1/embeddings"], 8);
  });
});

describe("prefill: a final assistant message is continued", () => {
  const openaiText = async (body) => (await (await post("/v1/chat/completions", body)).json()).choices[0].message.content;
  const anthropicText = async (body) => (await (await post("/v1/messages", body)).json()).content[0].text;
  const streamedOpenai = async (body) =>
    parseSse(await (await post("/v1/chat/completions", { ...body, stream: true })).text())
      .filter((e) => e.data !== "[DONE]")
      .map((e) => JSON.parse(e.data).choices[0]?.delta?.content ?? "")
      .join("");
  const streamedAnthropic = async (body) =>
    parseSse(await (await post("/v1/messages", { ...body, stream: true })).text())
      .map((e) => JSON.parse(e.data))
      .filter((d) => d.type === "content_block_delta")
      .map((d) => d.delta.text)
      .join("");

  test("OpenAI, JSON and streamed: only what follows the prefill, wherever it ends", async () => {
    const full = await openaiText(openaiBody());
    for (const at of [1, 7, 13, full.length - 1]) {
      const body = openaiBody();
      body.messages.push({ role: "assistant", content: full.slice(0, at) });
      assert.equal(await openaiText(body), full.slice(at), `at ${at}`);
      assert.equal(await streamedOpenai(body), full.slice(at), `streamed at ${at}`);
    }
  });

  test("Anthropic, JSON and streamed: a trimmed prefill goes on with the whitespace; usage counts the new text", async () => {
    const full = await anthropicText(anthropicBody());
    const cut = full.indexOf(" ", 12);
    const body = anthropicBody();
    body.messages.push({ role: "assistant", content: full.slice(0, cut) });
    const json = await (await post("/v1/messages", body)).json();
    assert.equal(json.content[0].text, full.slice(cut));
    assert.ok(json.content[0].text.startsWith(" "));
    assert.equal(await streamedAnthropic(body), full.slice(cut));
    const whole = await (await post("/v1/messages", anthropicBody())).json();
    assert.ok(json.usage.output_tokens < whole.usage.output_tokens);
    assert.ok(json.usage.input_tokens > whole.usage.input_tokens, "the prefill is prompt");
    // As blocks, too.
    const blocks = anthropicBody();
    blocks.messages.push({ role: "assistant", content: [{ type: "text", text: full.slice(0, cut) }] });
    assert.equal(await anthropicText(blocks), full.slice(cut));
  });

  test("Anthropic refuses a prefill ending in whitespace", async () => {
    const body = anthropicBody();
    body.messages.push({ role: "assistant", content: "You said: " });
    const res = await post("/v1/messages", body);
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /final assistant content cannot end with trailing whitespace/);
  });

  test("a prefill the answer does not start with is followed by the whole answer; max_tokens bounds the new text", async () => {
    const full = await openaiText(openaiBody());
    const body = openaiBody();
    body.messages.push({ role: "assistant", content: "Something else" });
    assert.equal(await openaiText(body), full);
    const bounded = openaiBody({ max_tokens: 2 });
    bounded.messages.push({ role: "assistant", content: full.slice(0, 4) });
    const json = await (await post("/v1/chat/completions", bounded)).json();
    assert.equal(json.usage.completion_tokens, 2);
    assert.equal(json.choices[0].finish_reason, "length");
    assert.ok(full.slice(4).startsWith(json.choices[0].message.content));
  });

  test("an assistant message with tool calls is not a prefill", async () => {
    const body = openaiBody();
    body.messages.push({ role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] });
    body.messages.push({ role: "tool", tool_call_id: "c1", content: "{\"ok\":true}" });
    assert.match(await openaiText(body), /says ok: true/);
  });
});
