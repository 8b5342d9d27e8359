// The built package under the real LLM SDKs: `client.fetcher` passed as the SDK's `fetch`, against the
// mock LLM. Each test starts from a fresh ResilientClient with the SDK's own retries off, so any retry
// seen here is the client's, and checks both what the SDK returns and that the request went through
// the client (its stats) to the mock (the mock's stats). The tests in this file run one at a time, so
// the mock's counters can be diffed around each call.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { APICallError, generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { ResilientClient } from "sturdy-llm";
import { startMockLlm } from "../../www/mock-llm.mjs";

const PROMPT = "hello";
const EXPECTED_START = `You said: "${PROMPT}"`;
const RETRY_AFTER_MS = 200;
const TEST_TIMEOUT = { timeout: 20_000 };
/** The mock sends one chunk per word; at 20 ms apart an answer streams for ~600 ms. */
const SLOW_STREAM = { "x-mock-chunk-delay-ms": "20" };

let mock;
let proxy;
before(async () => {
  mock = await startMockLlm();
  proxy = await startRecordingProxy(mock.url);
});
after(async () => {
  await proxy.close();
  await mock.close();
});

const newClient = () => new ResilientClient({ retry: { maxRetries: 2, baseDelayMs: 10 } });
const unique = (name) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
const fault429 = (name, retryAfterMs = RETRY_AFTER_MS, times = 1) =>
  `status=429;retry-after-ms=${retryAfterMs};times=${times};key=${unique(name)}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The mock's counters, to diff around one call. */
function mockCounters() {
  const s = mock.stats();
  const byStatus = s.byTarget.default?.byStatus ?? {};
  return { total: s.total, ok: byStatus[200] ?? 0, tooMany: byStatus[429] ?? 0, faults: s.byFault.status ?? 0 };
}
function mockDelta(start) {
  const now = mockCounters();
  return Object.fromEntries(Object.keys(now).map((k) => [k, now[k] - start[k]]));
}

/** Milliseconds until the mock has no request open (its socket closed), or Infinity after `limitMs`. */
async function upstreamClosedWithin(limitMs) {
  const t0 = performance.now();
  while (mock.stats().inFlight > 0) {
    if (performance.now() - t0 > limitMs) return Infinity;
    await sleep(5);
  }
  return performance.now() - t0;
}

/** The client carried the call: it counted `calls` requests and the mock saw exactly `upstream` requests. */
function assertCarried(client, delta, { calls, retries = 0, upstream = calls + retries, failures = 0 }) {
  const stats = client.stats();
  assert.ok(stats.requests >= 1, `client.stats().requests = ${stats.requests}: the SDK did not use client.fetcher`);
  assert.equal(stats.requests, calls, "client.stats().requests");
  assert.equal(stats.retries, retries, "client.stats().retries");
  assert.equal(stats.failures, failures, "client.stats().failures");
  assert.equal(delta.total, upstream, "requests the mock received");
}

/** The retried-429 story: one 429 with retry-after-ms, then a 200; one retry, after at least the hint. */
function assertRetried429(client, delta, elapsedMs) {
  assertCarried(client, delta, { calls: 1, retries: 1, upstream: 2 });
  assert.equal(delta.tooMany, 1, "the mock answered one 429 (the fault header reached it)");
  assert.equal(delta.faults, 1, "the mock applied the status fault once");
  assert.equal(delta.ok, 1, "the mock answered one 200");
  assert.ok(elapsedMs >= RETRY_AFTER_MS, `took ${elapsedMs} ms, less than retry-after-ms ${RETRY_AFTER_MS}`);
}

function assertAnswer(text) {
  assert.equal(typeof text, "string");
  assert.ok(text.startsWith(EXPECTED_START), `answer: ${JSON.stringify(text)}`);
}

/** A pass-through HTTP proxy in front of the mock that records every request as it reached the wire. */
async function startRecordingProxy(upstream) {
  const seen = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method, path: req.url, headers: req.headers, body: body.toString("utf8") });
      const up = http.request(upstream + req.url, { method: req.method, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode, upRes.headers);
        upRes.pipe(res);
      });
      up.on("error", () => res.destroy());
      res.on("close", () => up.destroy());
      up.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------------------
// openai
// ---------------------------------------------------------------------------------------------------

const openaiSdk = (fetch, baseURL = mock.url) =>
  new OpenAI({ apiKey: "sk-test", baseURL: baseURL + "/v1", fetch, maxRetries: 0 });
const chatParams = { model: "mock-1", messages: [{ role: "user", content: PROMPT }] };

describe("openai SDK", () => {
  test("chat.completions.create (JSON)", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    const completion = await openaiSdk(client.fetcher).chat.completions.create(chatParams);
    assertAnswer(completion.choices[0].message.content);
    assert.equal(completion.choices[0].finish_reason, "stop");
    assert.equal(completion.object, "chat.completion");
    assert.ok(completion.usage.completion_tokens > 0, "usage came through");
    assert.match(completion._request_id, /^req_mock_\d+$/, "the response headers reached the SDK");
    assertCarried(client, mockDelta(start), { calls: 1 });
  });

  test("chat.completions.create (stream: true) matches the JSON answer", TEST_TIMEOUT, async () => {
    const client = newClient();
    const openai = openaiSdk(client.fetcher);
    const start = mockCounters();
    const json = await openai.chat.completions.create(chatParams);
    const expected = json.choices[0].message.content;

    const stream = await openai.chat.completions.create({
      ...chatParams,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let chunks = 0;
    let finishReason;
    let usage;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta?.content ?? "";
      finishReason ??= chunk.choices[0]?.finish_reason ?? undefined;
      if (chunk.usage) usage = chunk.usage;
    }
    assertAnswer(text);
    assert.equal(text, expected, "streamed text equals the JSON answer");
    assert.ok(chunks > 3, `streamed in ${chunks} chunks`);
    assert.equal(finishReason, "stop");
    assert.deepEqual(usage, json.usage, "the usage chunk matches the JSON usage");
    assertCarried(client, mockDelta(start), { calls: 2 });
  });

  test("chunks arrive as the upstream sends them (the body is not buffered)", TEST_TIMEOUT, async () => {
    const client = newClient();
    const stream = await openaiSdk(client.fetcher).chat.completions.create(
      { ...chatParams, stream: true },
      { headers: SLOW_STREAM },
    );
    const arrivals = [];
    for await (const _chunk of stream) arrivals.push(performance.now());
    const spread = arrivals.at(-1) - arrivals[0];
    // ~30 chunks 20 ms apart: a buffered body would hand them all over at once.
    assert.ok(spread >= 300, `first to last chunk took ${spread.toFixed(0)} ms`);
    assert.equal(client.stats().requests, 1, "client.stats().requests");
  });

  test("a 429 with retry-after-ms is retried by the client, not the SDK", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    const t0 = performance.now();
    const completion = await openaiSdk(client.fetcher).chat.completions.create(chatParams, {
      headers: { "x-mock-fault": fault429("openai-429") },
    });
    const elapsed = performance.now() - t0;
    assertAnswer(completion.choices[0].message.content);
    assertRetried429(client, mockDelta(start), elapsed);
  });

  test("a 429 on a streaming request is retried before the first chunk", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    const t0 = performance.now();
    const stream = await openaiSdk(client.fetcher).chat.completions.create(
      { ...chatParams, stream: true },
      { headers: { "x-mock-fault": fault429("openai-stream-429") } },
    );
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    const elapsed = performance.now() - t0;
    assertAnswer(text);
    assertRetried429(client, mockDelta(start), elapsed);
  });

  test("429s beyond the client's retries reach the SDK as a RateLimitError", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    await assert.rejects(
      openaiSdk(client.fetcher).chat.completions.create(chatParams, {
        headers: { "x-mock-fault": fault429("openai-429-exhausted", 5, 10) },
      }),
      (error) => {
        assert.ok(error instanceof OpenAI.RateLimitError, `${error?.constructor?.name}: ${error?.message}`);
        assert.equal(error.status, 429);
        assert.equal(error.code, "rate_limit_exceeded", "the error body reached the SDK");
        assert.equal(error.headers.get("retry-after-ms"), "5", "the error headers reached the SDK");
        return true;
      },
    );
    assertCarried(client, mockDelta(start), { calls: 1, retries: 2, upstream: 3, failures: 1 });
  });

  test("a 400 is not retried and reaches the SDK as a BadRequestError", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    await assert.rejects(
      openaiSdk(client.fetcher).chat.completions.create(chatParams, {
        headers: { "x-mock-fault": "status=400;error=context_length_exceeded" },
      }),
      (error) => {
        assert.ok(error instanceof OpenAI.BadRequestError, `${error?.constructor?.name}: ${error?.message}`);
        assert.equal(error.code, "context_length_exceeded");
        return true;
      },
    );
    assertCarried(client, mockDelta(start), { calls: 1, failures: 1 });
  });
});

// ---------------------------------------------------------------------------------------------------
// @anthropic-ai/sdk
// ---------------------------------------------------------------------------------------------------

const anthropicSdk = (fetch, baseURL = mock.url) =>
  new Anthropic({ apiKey: "sk-ant-test", baseURL, fetch, maxRetries: 0 });
const messageParams = { model: "mock-1", max_tokens: 256, messages: [{ role: "user", content: PROMPT }] };
const textOf = (message) =>
  message.content
    .filter((block) => block.type === "text")
    .map((block) => block.text)
    .join("");

describe("@anthropic-ai/sdk", () => {
  test("messages.create (JSON)", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    const message = await anthropicSdk(client.fetcher).messages.create(messageParams);
    assert.equal(message.type, "message");
    assert.equal(message.stop_reason, "end_turn");
    assertAnswer(textOf(message));
    assert.ok(message.usage.output_tokens > 0, "usage came through");
    assertCarried(client, mockDelta(start), { calls: 1 });
  });

  test("messages.create (stream: true) events match the JSON answer", TEST_TIMEOUT, async () => {
    const client = newClient();
    const anthropic = anthropicSdk(client.fetcher);
    const start = mockCounters();
    const expected = textOf(await anthropic.messages.create(messageParams));

    const stream = await anthropic.messages.create({ ...messageParams, stream: true });
    let text = "";
    const types = new Set();
    for await (const event of stream) {
      types.add(event.type);
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
    }
    assertAnswer(text);
    assert.equal(text, expected, "streamed text equals the JSON answer");
    for (const type of ["message_start", "content_block_start", "content_block_delta", "message_delta", "message_stop"]) {
      assert.ok(types.has(type), `saw a ${type} event (saw ${[...types]})`);
    }
    assertCarried(client, mockDelta(start), { calls: 2 });
  });

  test("messages.stream() finalText()/finalMessage() match the JSON answer", TEST_TIMEOUT, async () => {
    const client = newClient();
    const anthropic = anthropicSdk(client.fetcher);
    const start = mockCounters();
    const expected = textOf(await anthropic.messages.create(messageParams));

    const stream = anthropic.messages.stream(messageParams);
    let deltas = "";
    stream.on("text", (delta) => (deltas += delta));
    const finalText = await stream.finalText();
    const finalMessage = await stream.finalMessage();
    assert.equal(finalText, expected, "finalText() equals the JSON answer");
    assert.equal(deltas, expected, "the text events add up to the JSON answer");
    assert.equal(textOf(finalMessage), expected, "finalMessage() content");
    assert.equal(finalMessage.stop_reason, "end_turn");
    assertCarried(client, mockDelta(start), { calls: 2 });
  });

  test("a 429 with retry-after-ms is retried by the client, not the SDK", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    const t0 = performance.now();
    const message = await anthropicSdk(client.fetcher).messages.create(messageParams, {
      headers: { "x-mock-fault": fault429("anthropic-429") },
    });
    const elapsed = performance.now() - t0;
    assertAnswer(textOf(message));
    assertRetried429(client, mockDelta(start), elapsed);
  });

  test("a 429 on messages.stream() is retried before the first event", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    const t0 = performance.now();
    const text = await anthropicSdk(client.fetcher)
      .messages.stream(messageParams, { headers: { "x-mock-fault": fault429("anthropic-stream-429") } })
      .finalText();
    const elapsed = performance.now() - t0;
    assertAnswer(text);
    assertRetried429(client, mockDelta(start), elapsed);
  });

  test("529s beyond the client's retries reach the SDK as an overloaded APIError", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    await assert.rejects(
      anthropicSdk(client.fetcher).messages.create(messageParams, {
        headers: { "x-mock-fault": `error=overloaded_error;retry-after-ms=5;times=10;key=${unique("anthropic-529")}` },
      }),
      (error) => {
        assert.ok(error instanceof Anthropic.APIError, `${error?.constructor?.name}: ${error?.message}`);
        assert.equal(error.status, 529);
        assert.equal(error.error?.error?.type, "overloaded_error", "the error body reached the SDK");
        return true;
      },
    );
    assertCarried(client, mockDelta(start), { calls: 1, retries: 2, upstream: 3, failures: 1 });
  });
});

// ---------------------------------------------------------------------------------------------------
// Vercel AI SDK (ai + @ai-sdk/openai, @ai-sdk/anthropic)
// ---------------------------------------------------------------------------------------------------

/** Collects streamText's text, failing on any error part (streamText reports errors in-stream). */
async function streamedText(result) {
  let text = "";
  const errors = [];
  for await (const part of result.fullStream) {
    if (part.type === "text-delta") text += part.text;
    else if (part.type === "error") errors.push(part.error);
  }
  assert.deepEqual(errors, [], "streamText error parts");
  return text;
}

// maxOutputTokens: the Anthropic provider warns about unknown models without it.
const aiCall = { prompt: PROMPT, maxRetries: 0, maxOutputTokens: 256 };
const aiProviders = {
  "@ai-sdk/openai (chat)": (fetch, baseURL = mock.url) =>
    createOpenAI({ baseURL: baseURL + "/v1", apiKey: "x", fetch }).chat("mock-1"),
  "@ai-sdk/anthropic": (fetch, baseURL = mock.url) => createAnthropic({ baseURL: baseURL + "/v1", apiKey: "x", fetch })("mock-1"),
};

for (const [name, makeModel] of Object.entries(aiProviders)) {
  describe(`Vercel AI SDK, ${name}`, () => {
    test("generateText", TEST_TIMEOUT, async () => {
      const client = newClient();
      const start = mockCounters();
      const result = await generateText({ ...aiCall, model: makeModel(client.fetcher) });
      assertAnswer(result.text);
      assert.equal(result.finishReason, "stop");
      assert.ok(result.usage.outputTokens > 0, `usage came through: ${JSON.stringify(result.usage)}`);
      assertCarried(client, mockDelta(start), { calls: 1 });
    });

    test("streamText matches generateText", TEST_TIMEOUT, async () => {
      const client = newClient();
      const model = makeModel(client.fetcher);
      const start = mockCounters();
      const expected = (await generateText({ ...aiCall, model })).text;

      const result = streamText({ ...aiCall, model });
      const text = await streamedText(result);
      assertAnswer(text);
      assert.equal(text, expected, "streamed text equals the generateText answer");
      assert.equal(await result.text, expected, "result.text");
      assert.equal(await result.finishReason, "stop");
      assertCarried(client, mockDelta(start), { calls: 2 });
    });

    test("generateText: a 429 with retry-after-ms is retried by the client", TEST_TIMEOUT, async () => {
      const client = newClient();
      const start = mockCounters();
      const t0 = performance.now();
      const result = await generateText({
        ...aiCall,
        model: makeModel(client.fetcher),
        headers: { "x-mock-fault": fault429("ai-sdk-429") },
      });
      const elapsed = performance.now() - t0;
      assertAnswer(result.text);
      assertRetried429(client, mockDelta(start), elapsed);
    });

    test("streamText: a 429 with retry-after-ms is retried by the client", TEST_TIMEOUT, async () => {
      const client = newClient();
      const start = mockCounters();
      const t0 = performance.now();
      const result = streamText({
        ...aiCall,
        model: makeModel(client.fetcher),
        headers: { "x-mock-fault": fault429("ai-sdk-stream-429") },
      });
      const text = await streamedText(result);
      const elapsed = performance.now() - t0;
      assertAnswer(text);
      assertRetried429(client, mockDelta(start), elapsed);
    });

    test("tools: generateText and streamText run a tool-call round trip through client.fetcher", TEST_TIMEOUT, async () => {
      const client = newClient();
      const asked = [];
      const tools = {
        get_time: tool({
          description: "The local time in a city",
          inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }),
          execute: async ({ city }) => {
            asked.push(city);
            return `12:34 in ${city}`;
          },
        }),
      };
      const call = { ...aiCall, prompt: "What time is it in Paris?", tools, stopWhen: stepCountIs(3) };
      const start = mockCounters();
      const generated = await generateText({ ...call, model: makeModel(client.fetcher) });
      assert.equal(generated.steps[0].finishReason, "tool-calls", "the first step called the tool");
      assert.equal(generated.steps[0].toolCalls[0].toolName, "get_time");
      assert.deepEqual(generated.steps[0].toolCalls[0].input, { city: "Paris" });
      assert.ok(generated.text.includes("12:34 in Paris"), `the answer used the tool's result: ${generated.text}`);

      const streamed = streamText({ ...call, model: makeModel(client.fetcher) });
      const text = await streamedText(streamed);
      assert.ok(text.includes("12:34 in Paris"), `the streamed answer used the tool's result: ${text}`);
      assert.equal((await streamed.steps)[0].toolCalls[0].toolName, "get_time");
      assert.deepEqual(asked, ["Paris", "Paris"]);
      assertCarried(client, mockDelta(start), { calls: 4 });
    });

    test("429s beyond the client's retries reach the SDK as an APICallError", TEST_TIMEOUT, async () => {
      const client = newClient();
      const start = mockCounters();
      await assert.rejects(
        generateText({
          ...aiCall,
          model: makeModel(client.fetcher),
          headers: { "x-mock-fault": fault429("ai-sdk-429-exhausted", 5, 10) },
        }),
        (error) => {
          assert.ok(APICallError.isInstance(error), `${error?.constructor?.name}: ${error?.message}`);
          assert.equal(error.statusCode, 429);
          assert.equal(error.isRetryable, true);
          return true;
        },
      );
      assertCarried(client, mockDelta(start), { calls: 1, retries: 2, upstream: 3, failures: 1 });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// On the wire: through client.fetcher the upstream sees exactly what the SDK's own fetch sends —
// on the first attempt and on the client's retry (headers, SDK-set and per-request, and the body).
// ---------------------------------------------------------------------------------------------------

describe("on the wire, client.fetcher sends what the SDK's own fetch sends", () => {
  const CUSTOM = { "x-interop-test": "per-request header" };
  const wireCases = {
    "openai chat.completions.create": (fetch, headers) =>
      openaiSdk(fetch, proxy.url).chat.completions.create(chatParams, { headers }),
    "openai chat.completions.create (stream)": async (fetch, headers) => {
      const stream = await openaiSdk(fetch, proxy.url).chat.completions.create(
        { ...chatParams, stream: true, stream_options: { include_usage: true } },
        { headers },
      );
      for await (const _chunk of stream);
    },
    "anthropic messages.create": (fetch, headers) =>
      anthropicSdk(fetch, proxy.url).messages.create(messageParams, { headers }),
    "anthropic messages.stream": (fetch, headers) =>
      anthropicSdk(fetch, proxy.url).messages.stream(messageParams, { headers }).finalText(),
    "ai generateText (@ai-sdk/openai)": (fetch, headers) =>
      generateText({ ...aiCall, model: aiProviders["@ai-sdk/openai (chat)"](fetch, proxy.url), headers }),
    "ai streamText (@ai-sdk/openai)": (fetch, headers) =>
      streamedText(streamText({ ...aiCall, model: aiProviders["@ai-sdk/openai (chat)"](fetch, proxy.url), headers })),
    "ai generateText (@ai-sdk/anthropic)": (fetch, headers) =>
      generateText({ ...aiCall, model: aiProviders["@ai-sdk/anthropic"](fetch, proxy.url), headers }),
  };

  for (const [name, run] of Object.entries(wireCases)) {
    test(name, TEST_TIMEOUT, async () => {
      proxy.seen.length = 0;
      await run(globalThis.fetch, CUSTOM);
      const [native, ...extra] = proxy.seen.splice(0);
      assert.equal(extra.length, 0, "one request with the SDK's own fetch");

      const client = newClient();
      await run(client.fetcher, { ...CUSTOM, "x-mock-fault": fault429(`wire-${name}`, 5) });
      const attempts = proxy.seen.splice(0);
      assert.equal(attempts.length, 2, "through client.fetcher: the 429 and the client's retry");
      assert.equal(client.stats().retries, 1, "client.stats().retries");

      const { "x-mock-fault": _dropped, ...nativeHeaders } = native.headers;
      assert.equal(native.headers["x-interop-test"], CUSTOM["x-interop-test"]);
      for (const [i, attempt] of attempts.entries()) {
        const { "x-mock-fault": fault, ...headers } = attempt.headers;
        assert.ok(fault, `attempt ${i + 1} carried the per-request fault header`);
        assert.equal(attempt.method, native.method, `attempt ${i + 1} method`);
        assert.equal(attempt.path, native.path, `attempt ${i + 1} path`);
        assert.deepEqual(headers, nativeHeaders, `attempt ${i + 1} headers`);
        assert.equal(attempt.body, native.body, `attempt ${i + 1} body`);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// Cancellation and timeouts driven by the SDKs (they pass `signal` in the fetch init)
// ---------------------------------------------------------------------------------------------------

describe("cancellation through the SDKs", () => {
  test("openai: aborting while the upstream holds the headers rejects with APIUserAbortError", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const t0 = performance.now();
    await assert.rejects(
      openaiSdk(client.fetcher).chat.completions.create(chatParams, {
        signal: controller.signal,
        headers: { "x-mock-fault": `delay=3000;key=${unique("abort-delay")}` },
      }),
      OpenAI.APIUserAbortError,
    );
    assert.ok(performance.now() - t0 < 1000, "rejected soon after the abort");
    assert.ok((await upstreamClosedWithin(500)) < 500, "the upstream request was closed");
    assertCarried(client, mockDelta(start), { calls: 1, failures: 1 });
  });

  test("openai: aborting during the client's retry-after wait stops the retry", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const t0 = performance.now();
    await assert.rejects(
      openaiSdk(client.fetcher).chat.completions.create(chatParams, {
        signal: controller.signal,
        headers: { "x-mock-fault": fault429("abort-backoff", 400) },
      }),
      OpenAI.APIUserAbortError,
    );
    assert.ok(performance.now() - t0 < 400, "rejected before the retry was due");
    await sleep(500); // past the retry-after: a retry would have reached the mock by now
    assert.equal(mockDelta(start).total, 1, "the mock saw only the 429");
    assert.equal(client.stats().requests, 1, "client.stats().requests");
  });

  test("openai: the SDK's timeout covers the client's retries", TEST_TIMEOUT, async () => {
    const client = newClient();
    const start = mockCounters();
    const t0 = performance.now();
    await assert.rejects(
      openaiSdk(client.fetcher).chat.completions.create(chatParams, {
        timeout: 150,
        headers: { "x-mock-fault": fault429("timeout-backoff", 3000) },
      }),
      OpenAI.APIConnectionTimeoutError,
    );
    assert.ok(performance.now() - t0 < 1000, "timed out long before the retry-after");
    assert.equal(mockDelta(start).total, 1, "the mock saw only the 429");
    assert.equal(client.stats().requests, 1, "client.stats().requests");
  });

  test("openai: breaking out of a stream closes the upstream response", TEST_TIMEOUT, async () => {
    const client = newClient();
    const stream = await openaiSdk(client.fetcher).chat.completions.create(
      { ...chatParams, stream: true },
      { headers: SLOW_STREAM },
    );
    let chunks = 0;
    for await (const _chunk of stream) if (++chunks === 3) break;
    const closedAfter = await upstreamClosedWithin(1000);
    assert.ok(closedAfter < 200, `upstream closed ${closedAfter} ms after the break (the stream had ~500 ms to go)`);
    assert.equal(client.stats().requests, 1, "client.stats().requests");
  });

  // Regression: an abort after the headers must error and cancel the body, as with plain fetch (the
  // SDKs stop a stream that way); the fetcher used to race the caller's signal only until the headers.

  test("openai: stream.controller.abort() mid-stream ends the stream and closes the upstream", { ...TEST_TIMEOUT}, async () => {
    const client = newClient();
    const stream = await openaiSdk(client.fetcher).chat.completions.create(
      { ...chatParams, stream: true },
      { headers: SLOW_STREAM },
    );
    let chunks = 0;
    let abortedAt;
    for await (const _chunk of stream) {
      if (++chunks === 3) {
        abortedAt = performance.now();
        stream.controller.abort();
      }
    }
    assert.equal(client.stats().requests, 1, "client.stats().requests: the one streamed call");
    assert.ok(performance.now() - abortedAt < 200, `the stream ran on ${(performance.now() - abortedAt).toFixed(0)} ms after abort()`);
    assert.ok(chunks <= 4, `${chunks} chunks arrived; abort() came after 3`);
    assert.ok((await upstreamClosedWithin(1000)) < 200, "the upstream response was closed soon after abort()");
  });

  test("anthropic: MessageStream.abort() mid-stream settles and closes the upstream", { ...TEST_TIMEOUT}, async () => {
    const client = newClient();
    const stream = anthropicSdk(client.fetcher).messages.stream(messageParams, { headers: SLOW_STREAM });
    let deltas = 0;
    let abortedAt;
    stream.on("text", () => {
      if (++deltas === 3) {
        abortedAt = performance.now();
        stream.abort();
      }
    });
    await assert.rejects(stream.finalText(), Anthropic.APIUserAbortError);
    assert.equal(client.stats().requests, 1, "client.stats().requests: the one streamed call");
    assert.ok(performance.now() - abortedAt < 200, `settled ${(performance.now() - abortedAt).toFixed(0)} ms after abort()`);
    assert.ok(deltas <= 4, `${deltas} text events arrived; abort() came after 3`);
    assert.ok((await upstreamClosedWithin(1000)) < 200, "the upstream response was closed soon after abort()");
  });

  test("ai: abortSignal mid-streamText closes the upstream", { ...TEST_TIMEOUT}, async () => {
    const client = newClient();
    const controller = new AbortController();
    const result = streamText({
      ...aiCall,
      model: aiProviders["@ai-sdk/openai (chat)"](client.fetcher),
      abortSignal: controller.signal,
      headers: SLOW_STREAM,
    });
    let deltas = 0;
    let abortedAt;
    for await (const _text of result.textStream) {
      if (++deltas === 3) {
        abortedAt = performance.now();
        controller.abort();
      }
    }
    assert.equal(client.stats().requests, 1, "client.stats().requests: the one streamed call");
    assert.ok(performance.now() - abortedAt < 200, `the stream ran on ${(performance.now() - abortedAt).toFixed(0)} ms after abort`);
    assert.ok((await upstreamClosedWithin(1000)) < 200, "the upstream response was closed soon after the abort");
  });
});
