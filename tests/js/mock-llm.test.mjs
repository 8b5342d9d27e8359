// Tests for the mock LLM upstream (www/mock-llm.mjs). Run: node --test tests/js/mock-llm.test.mjs
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startMockLlm } from "../../www/mock-llm.mjs";

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
