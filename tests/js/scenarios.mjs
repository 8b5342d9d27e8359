// Runtime-neutral scenarios: each takes the package's exports and the mock LLM's URL and throws on
// failure. Node runs them directly, the Worker bundle runs them inside workerd, and the browser test
// runs them in a page — the same checks against the same built package in every runtime.

class ScenarioError extends Error {}
const check = (ok, message) => {
  if (!ok) throw new ScenarioError(message);
};
/** Equal as JSON values, whatever the order of object keys. */
const canonical = (value) =>
  Array.isArray(value) ? value.map(canonical)
  : value && typeof value === "object" ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]))
  : value;
const deepEqual = (actual, expected, what) => {
  const [a, e] = [JSON.stringify(canonical(actual)), JSON.stringify(canonical(expected))];
  check(a === e, `${what}:\n  expected ${e}\n  got      ${a}`);
};
const equal = (actual, expected, what) =>
  check(actual === expected, `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);

/** Each `[options, errorName, field]`: the constructor throws that error, naming the field. */
function rejectsOptions(ResilientClient, cases) {
  for (const [options, name, field] of cases) {
    let error;
    try {
      new ResilientClient(options);
    } catch (e) {
      error = e;
    }
    check(error, `${JSON.stringify(options)} was accepted`);
    equal(error.name, name, `error for ${JSON.stringify(options)}`);
    check(error.message.includes(field), `message names ${field}: ${error.message}`);
  }
}

async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new ScenarioError("expected a rejection, but the promise resolved");
}

const unique = (name) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2)}`;

function chatBody(content, extra = {}) {
  return JSON.stringify({ model: "mock-1", messages: [{ role: "user", content }], ...extra });
}

function chatInit(content, fault, extra = {}) {
  const headers = { "content-type": "application/json" };
  if (fault) headers["x-mock-fault"] = fault;
  return { method: "POST", headers, body: chatBody(content), ...extra };
}

async function mockStats(mock) {
  return (await fetch(`${mock}/control/stats`)).json();
}

async function upstreamCount(mock) {
  return (await mockStats(mock)).total;
}

/** A target on the mock, under its own name (its own faults and counters: /t/<name>/...). */
function target(mock, name, extra = {}) {
  return { name, provider: "openai", baseUrl: `${mock}/t/${name}/v1`, apiKey: "sk-test", model: "mock-1", ...extra };
}

async function setFaults(mock, faults) {
  const response = await fetch(`${mock}/control/faults`, { method: "POST", body: JSON.stringify(faults) });
  check(response.ok, `setting faults: ${await response.text()}`);
}

function streamInit(content, fault) {
  const body = chatBody(content, { stream: true, stream_options: { include_usage: true } });
  return { method: "POST", headers: fault ? { "x-mock-fault": fault } : {}, body };
}

const fast = { baseDelayMs: 10, maxDelayMs: 50 };

/** Waits (up to ~2 s) for a condition that background work makes true. */
async function settle(condition) {
  for (let i = 0; i < 100 && !condition(); i++) await new Promise((r) => setTimeout(r, 20));
  check(condition(), "timed out waiting for background work");
}

/**
 * Headers that make the mock cut a stream after `n` chunks, spaced out so that every runtime has read
 * them before the reset (a browser may drop bytes that arrive with it).
 */
const cutAt = (n) => ({ "x-mock-fault": `reset=${n}`, "x-mock-chunk-delay-ms": "20" });

/** Reads a chat stream to its end: the text, each delta's text, tool-call pieces, and the error it ended with. */
async function readStream(stream) {
  const read = { text: "", deltas: [], toolDeltas: 0, error: undefined };
  try {
    for await (const delta of stream) {
      read.text += delta.text;
      read.deltas.push(delta.text);
      read.toolDeltas += delta.toolCalls?.length ?? 0;
    }
  } catch (error) {
    read.error = error;
  }
  return read;
}

export const scenarios = {
  async "answers a JSON chat request"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    const response = await client.fetch(`${mock}/v1/chat/completions`, chatInit("hello"));
    equal(response.status, 200, "status");
    const body = await response.json();
    check(body.choices[0].message.content.startsWith('You said: "hello"'), `answer: ${JSON.stringify(body)}`);
    equal(client.stats().requests, 1, "stats().requests");
    equal(client.stats().successes, 1, "stats().successes");
    client.free();
  },

  async "resolves relative URLs against baseUrl and sends default headers"({ ResilientClient }, mock) {
    const client = new ResilientClient({ baseUrl: mock, headers: { "x-mock-fault": "status=418" }, retry: false });
    const response = await client.fetch("/v1/chat/completions", { method: "POST", body: chatBody("hi") });
    equal(response.status, 418, "status set by the default header's fault");
  },

  async "fetcher is pre-bound and stable"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    const { fetcher } = client;
    equal(typeof fetcher, "function", "typeof fetcher");
    equal(client.fetcher, fetcher, "same function on every read");
    const response = await fetcher(`${mock}/health`);
    equal((await response.json()).ok, true, "health through the detached fetcher");
  },

  async "accepts a Request object with a body"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    const request = new Request(`${mock}/v1/chat/completions`, chatInit("from a Request"));
    const body = await (await client.fetch(request)).json();
    check(body.choices[0].message.content.includes("from a Request"), "the body was sent");
  },

  async "fires the attempt timeout"({ ResilientClient }, mock) {
    const client = new ResilientClient({ timeout: { attemptMs: 150 }, retry: false });
    const started = Date.now();
    const error = await rejection(client.fetch(`${mock}/v1/chat/completions`, chatInit("slow", "delay=3000")));
    const elapsed = Date.now() - started;
    equal(error.name, "TimeoutError", "error name");
    equal(error.code, "TIMEOUT", "error code");
    equal(error.option, "timeout.attemptMs", "which deadline");
    // 150 ms, never early (1 ms for Date.now's rounding), at most 100 ms late. Measured on the
    // 2-core machine with other jobs running (load average ~4), 20 runs each: 151-172 ms in Node,
    // 152-160 ms in Chromium; 100 ms is ~4x the worst lateness seen, room for a GC pause or a busier
    // runner. The upstream answers after 3 s, so a missed deadline fails by seconds.
    check(elapsed >= 149 && elapsed <= 250, `rejected after ${elapsed} ms (attemptMs 150)`);
  },

  async "fires the total timeout across retries"({ ResilientClient }, mock) {
    const client = new ResilientClient({
      timeout: { totalMs: 300 },
      retry: { maxRetries: 10, baseDelayMs: 100, maxDelayMs: 100, jitter: "none" },
    });
    const error = await rejection(client.fetch(`${mock}/v1/chat/completions`, chatInit("x", "status=503")));
    equal(error.name, "TimeoutError", "error name");
    equal(error.option, "timeout.totalMs", "which deadline");
  },

  async "aborts a request in flight"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 100);
    const error = await rejection(
      client.fetch(`${mock}/v1/chat/completions`, chatInit("x", "delay=3000", { signal: controller.signal })),
    );
    // As fetch: the signal's own reason (a DOMException named AbortError when abort() was given none).
    check(error === controller.signal.reason, `rejected with the signal's reason, got ${error?.name}: ${error?.message}`);
    equal(error.name, "AbortError", "error name");
    // At the abort (100 ms), at most 100 ms later: the attempt timeout's margin (measured as above:
    // 101-107 ms in Node, 101-103 ms in Chromium).
    const elapsed = Date.now() - started;
    check(elapsed >= 99 && elapsed <= 200, `rejected ${elapsed} ms after the call, aborted at 100 ms`);
  },

  async "rejects at once for an already aborted signal"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    const signal = AbortSignal.abort();
    const error = await rejection(client.fetch(`${mock}/health`, { signal }));
    equal(error.name, "AbortError", "error name");
    check(error === signal.reason, "the signal's own reason");
  },

  async "an abort rejects with the caller's own reason in fetch, events, chat and chatStream, with no fallback"({ ResilientClient }, mock) {
    const spare = unique("spare");
    const client = new ResilientClient({ targets: [target(mock, unique("slow"), { headers: { "x-mock-fault": "delay=3000" } }), target(mock, spare)] });
    const calls = {
      fetch: (signal) => client.fetch(`${mock}/v1/chat/completions`, chatInit("x", "delay=3000", { signal })),
      events: (signal) => (async () => { for await (const _ of client.events(`${mock}/v1/chat/completions`, { ...streamInit("x", "delay=3000"), signal })); })(),
      chat: (signal) => client.chat({ messages: [{ role: "user", content: "x" }], signal }),
      chatStream: (signal) => (async () => { for await (const _ of client.chatStream({ messages: [{ role: "user", content: "x" }], signal })); })(),
    };
    for (const [name, call] of Object.entries(calls)) {
      const controller = new AbortController();
      const reason = new Error(`stop ${name}`);
      setTimeout(() => controller.abort(reason), 50);
      const error = await rejection(call(controller.signal));
      check(error === reason, `${name}: rejected with the caller's reason, got ${error?.name}: ${error?.message}`);
      equal(Object.hasOwn(reason, "target"), false, `${name}: the caller's reason is handed back untouched`);
    }
    equal((await mockStats(mock)).byTarget[spare], undefined, "an abort never falls back");
  },

  async "retries 503s and succeeds, counting retries"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: fast });
    const retries = [];
    client.on("retry", (e) => retries.push(e));
    const before = await upstreamCount(mock);
    const fault = `status=503;times=2;key=${unique("retry")}`;
    const response = await client.fetch(`${mock}/v1/chat/completions`, chatInit("x", fault));
    equal(response.status, 200, "final status");
    equal(retries.length, 2, "retry events");
    equal(retries[0].status, 503, "retry event status");
    equal(client.stats().retries, 2, "stats().retries");
    equal((await upstreamCount(mock)) - before, 3, "requests the upstream saw");
  },

  async "honours retry-after-ms on a 429"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: fast });
    const fault = `status=429;retry-after-ms=400;times=1;key=${unique("429")}`;
    const started = Date.now();
    const response = await client.fetch(`${mock}/v1/chat/completions`, chatInit("x", fault));
    equal(response.status, 200, "final status");
    check(Date.now() - started >= 390, "waited for the server's hint");
  },

  async "returns the last response when retries are exhausted"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: { ...fast, maxRetries: 1 }, breaker: false });
    const response = await client.fetch(`${mock}/v1/chat/completions`, chatInit("x", "status=503"));
    equal(response.status, 503, "fetch semantics: the error status resolves");
    equal(client.stats().failures, 1, "counted as a failure");
  },

  async "does not sleep when Retry-After exceeds maxRetryAfterMs"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: { maxRetryAfterMs: 1000 } });
    const started = Date.now();
    const response = await client.fetch(`${mock}/v1/chat/completions`, chatInit("x", "status=429;retry-after=120"));
    equal(response.status, 429, "status");
    equal(response.retryAfterMs, 120000, "delay attached to the response");
    check(Date.now() - started < 1000, "returned at once");
  },

  async "sends the same Idempotency-Key on every attempt"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: fast });
    const key = unique("idem");
    const fault = `status=503;times=2;key=${key}`;
    const init = chatInit("x", fault, { resilience: { idempotencyKey: key } });
    equal((await client.fetch(`${mock}/v1/chat/completions`, init)).status, 200, "status");
    const stats = await (await fetch(`${mock}/control/stats`)).json();
    equal(stats.byIdempotencyKey[key], 3, "attempts carrying the key");
  },

  async "shares one upstream call among identical deterministic calls in flight"({ ResilientClient }, mock) {
    // dedupe: true, here and in the other sharing scenarios: in workerd it is off unless asked for.
    const client = new ResilientClient({ dedupe: true });
    const url = `${mock}/v1/chat/completions`;
    const body = chatBody(unique("dedupe"), { temperature: 0 });
    const init = () => ({ method: "POST", headers: { "x-mock-fault": "delay=200" }, body });
    const before = await upstreamCount(mock);
    const leaderAbort = new AbortController();
    const leader = client.fetch(url, { ...init(), signal: leaderAbort.signal });
    const followers = [client.fetch(url, init()), client.fetch(url, init())];
    const texts = await Promise.all(followers.map(async (p) => (await p).text()));
    equal(texts[0], texts[1], "both followers read the same answer");
    check(texts[0].includes("You said"), "answer body");
    equal((await upstreamCount(mock)) - before, 1, "one upstream request for three calls");
    equal(client.stats().deduplicated, 2, "stats().deduplicated");
    await (await leader).text();

    // The leader aborts: its follower still gets an answer, from the call it joined, which goes on for it.
    const body2 = chatBody(unique("dedupe-abort"), { temperature: 0 });
    const beforeAbort = await upstreamCount(mock);
    const first = client.fetch(url, { method: "POST", headers: { "x-mock-fault": "delay=300" }, body: body2, signal: leaderAbort.signal });
    const second = client.fetch(url, { method: "POST", headers: { "x-mock-fault": "delay=300" }, body: body2 });
    setTimeout(() => leaderAbort.abort(), 50);
    equal((await rejection(first)).name, "AbortError", "the aborting caller");
    equal((await second).status, 200, "the other caller");
    equal((await upstreamCount(mock)) - beforeAbort, 1, "the call was not sent again");

    // The leader aborts after the headers, while the body is still coming: only its own copy fails.
    const body3 = chatBody(unique("dedupe-abort-body"), { temperature: 0 });
    const slowBody = { method: "POST", headers: { "x-mock-fault": "body-delay=200" }, body: body3 };
    const aborter = new AbortController();
    const slowLeader = client.fetch(url, { ...slowBody, signal: aborter.signal });
    const slowFollower = client.fetch(url, slowBody);
    const [leaderResponse, followerResponse] = await Promise.all([slowLeader, slowFollower]);
    aborter.abort();
    // (Node and workerd reject with the signal's AbortError; Chromium reports any failed body read as a
    // TypeError.)
    const leaderError = await rejection(leaderResponse.text());
    check(["AbortError", "TypeError"].includes(leaderError.name), `the aborting caller's body: ${leaderError.name}`);
    check((await followerResponse.text()).includes("You said"), "the other caller still reads the whole body");
    equal(client.stats().deduplicated, 3, "the follower shared the call");

    // Non-deterministic requests are never shared.
    const sampled = chatBody("x", { temperature: 0.7 });
    const beforeSampled = await upstreamCount(mock);
    await Promise.all([client.fetch(url, { method: "POST", body: sampled }), client.fetch(url, { method: "POST", body: sampled })]);
    equal((await upstreamCount(mock)) - beforeSampled, 2, "temperature 0.7 calls each reach the upstream");
  },

  async "a request fetch refuses is neither retried nor held against the upstream"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: fast, breaker: { failureThreshold: 2 } });
    for (let i = 0; i < 3; i++) {
      const error = await rejection(client.fetch(`${mock}/control/stats`, { method: "GET", body: "x" }));
      equal(error.name, "TypeError", "fetch's own error type");
      equal(error.code, "INVALID_REQUEST", "error.code");
      check(/GET|HEAD|body/.test(error.message), `the runtime's reason: ${error.message}`);
    }
    equal(client.stats().retries, 0, "never retried");
    equal((await client.fetch(`${mock}/control/stats`)).status, 200, "the breaker stayed closed");
    const badKey = await rejection(client.fetch(mock, { resilience: { idempotencyKey: "k\n" } }));
    check(badKey.message.includes("resilience.idempotencyKey"), badKey.message);
  },

  async "opens the breaker, rejects fast, recovers after a probe"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: false, breaker: { failureThreshold: 2, resetTimeoutMs: 300 } });
    const transitions = [];
    client.on("breaker", (e) => transitions.push(`${e.from}->${e.to}`));
    const url = `${mock}/v1/chat/completions`;
    for (let i = 0; i < 2; i++) equal((await client.fetch(url, chatInit("x", "status=503"))).status, 503, "outage");
    const before = await upstreamCount(mock);
    const error = await rejection(client.fetch(url, chatInit("x")));
    equal(error.name, "CircuitOpenError", "error name");
    check(error.retryAfterMs > 0 && error.retryAfterMs <= 300, `retryAfterMs ${error.retryAfterMs}`);
    equal(await upstreamCount(mock), before, "the open breaker kept the request off the wire");
    equal(client.stats().breakers[0].state, "open", "stats shows it open");
    equal(client.stats().breakers[0].key, new URL(mock).origin, "one breaker per origin");
    await new Promise((r) => setTimeout(r, 350));
    equal((await client.fetch(url, chatInit("x"))).status, 200, "probe answered");
    equal(client.stats().breakers[0].state, "closed", "closed after the probe");
    equal(transitions.join(" "), "closed->open open->half-open half-open->closed", "transitions");
  },

  async "rate limit rejects beyond maxWaitMs"({ ResilientClient }, mock) {
    const client = new ResilientClient({ rateLimit: { requestsPerMinute: 60, burst: 1, maxWaitMs: 0 } });
    equal((await client.fetch(`${mock}/health`)).status, 200, "first call uses the burst");
    const error = await rejection(client.fetch(`${mock}/health`));
    equal(error.name, "RateLimitError", "error name");
    check(error.retryAfterMs > 900 && error.retryAfterMs <= 1000, `retryAfterMs ${error.retryAfterMs}`);
    equal(client.stats().rejected.rateLimit, 1, "stats().rejected.rateLimit");
  },

  async "rate limit waits for capacity"({ ResilientClient }, mock) {
    const client = new ResilientClient({ rateLimit: { requestsPerMinute: 600, burst: 1 } });
    const started = Date.now();
    await Promise.all([1, 2, 3].map((i) => client.fetch(`${mock}/health?call=${i}`)));
    const elapsed = Date.now() - started;
    check(elapsed >= 190, `three calls at 10/s with burst 1 took ${elapsed} ms`);
  },

  async "corrects a tokens-per-minute estimate with the response's usage"({ ResilientClient }, mock) {
    const client = new ResilientClient({ rateLimit: { tokensPerMinute: 1000, maxWaitMs: 0 } });
    // ~3000 bytes of body estimate 750 tokens; the mock reports far fewer in its usage.
    const body = chatBody("hi", { padding: "x".repeat(3000) });
    const send = () => client.fetch(`${mock}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
    const first = await send();
    const usage = (await first.json()).usage;
    check(usage.total_tokens < 100, `usage ${JSON.stringify(usage)}`);
    await new Promise((r) => setTimeout(r, 50)); // the correction reads its own copy of the body
    equal((await send()).status, 200, "admitted once the estimate was corrected");
    const error = await rejection(client.fetch(`${mock}/v1/chat/completions`, { method: "POST", body: chatBody("x", { padding: "x".repeat(4500) }) }));
    equal(error.name, "RateLimitError", "an estimate beyond what is left is still refused");
  },

  async "network failure rejects with a TypeError like fetch"({ ResilientClient }) {
    const client = new ResilientClient({ retry: { ...fast, maxRetries: 1 } });
    const error = await rejection(client.fetch("http://127.0.0.1:9/"));
    equal(error.name, "TypeError", "error name");
    equal(error.code, "NETWORK", "error code");
    equal(error.attempts, 2, "attempts");
  },

  async "bad options throw errors naming the field"({ ResilientClient }) {
    const cases = [
      [{ timeout: { attemptMs: -1 } }, "RangeError", "timeout.attemptMs"],
      [{ retry: { maxRetries: "3" } }, "TypeError", "retry.maxRetries"],
      [{ retry: { maxRetries: 11 } }, "RangeError", "retry.maxRetries"],
      [{ retry: { jitter: "sometimes" } }, "RangeError", "retry.jitter"],
      [{ breaker: "on" }, "TypeError", "breaker"],
      [{ retries: 3 }, "TypeError", "retries"],
      [{ rateLimit: {} }, "RangeError", "rateLimit"],
      [{ baseUrl: "not a url" }, "RangeError", "baseUrl"],
      ["fast", "TypeError", "options"],
    ];
    rejectsOptions(ResilientClient, cases);
    const client = new ResilientClient();
    if (globalThis.location === undefined) {
      // Outside a page there is nothing to resolve a relative URL against (in a page, fetch uses the page's URL).
      const error = await rejection(client.fetch("/relative/without/base"));
      equal(error.name, "TypeError", "relative URL without baseUrl");
      check(error.message.includes("baseUrl"), error.message);
    }
    const policyError = await rejection(client.fetch("http://127.0.0.1:9/", { resilience: { retry: { maxRetries: -2 } } }));
    check(policyError.message.includes("resilience.retry.maxRetries"), policyError.message);
    let onError;
    try {
      client.on("nope", () => {});
    } catch (e) {
      onError = e;
    }
    check(onError && onError.name === "TypeError", "on() rejects unknown event types");
  },

  async "metrics agree with what the upstream saw"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: fast });
    const before = await upstreamCount(mock);
    const fault = `status=500;times=1;key=${unique("metrics")}`;
    await client.fetch(`${mock}/v1/chat/completions`, chatInit("x", fault));
    await client.fetch(`${mock}/v1/chat/completions`, chatInit("y"));
    const sent = (await upstreamCount(mock)) - before;
    const stats = client.stats();
    equal(stats.requests + stats.retries, sent, "calls + retries = upstream requests");
    const text = client.metrics();
    check(text.includes("sturdy_llm_requests_total 2\n"), text);
    check(text.includes("sturdy_llm_retries_total 1\n"), text);
  },

  async "streams an OpenAI chat answer and ends at [DONE]"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    const stream = client.events(`${mock}/v1/chat/completions`, streamInit("stream me"));
    const data = [];
    for await (const event of stream) data.push(event.data);
    equal(data.at(-1), "[DONE]", "last event");
    const text = data.slice(0, -1).map((d) => JSON.parse(d).choices[0]?.delta?.content ?? "").join("");
    const json = await (await client.fetch(`${mock}/v1/chat/completions`, chatInit("stream me"))).json();
    equal(text, json.choices[0].message.content, "streamed text equals the JSON answer");
    equal((await stream.response).status, 200, "response");
  },

  async "streams an Anthropic answer through message_stop"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    const body = JSON.stringify({ model: "claude-x", max_tokens: 50, stream: true, messages: [{ role: "user", content: "hi" }] });
    const types = [];
    for await (const event of client.events(`${mock}/v1/messages`, { method: "POST", body })) types.push(event.event);
    equal(types[0], "message_start", "first event");
    equal(types.at(-1), "message_stop", "last event");
    check(types.includes("content_block_delta"), "deltas");
  },

  async "retries a 503 that comes before the first event"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: fast });
    const before = await upstreamCount(mock);
    const fault = `status=503;times=1;key=${unique("sse503")}`;
    let events = 0;
    for await (const _ of client.events(`${mock}/v1/chat/completions`, streamInit("x", fault))) events++;
    check(events > 5, `events ${events}`);
    equal((await upstreamCount(mock)) - before, 2, "one failed attempt, one streamed");
  },

  async "the idle timeout fires when a stream stalls"({ ResilientClient }, mock) {
    const client = new ResilientClient({ timeout: { idleMs: 300 } });
    let events = 0;
    const error = await rejection((async () => {
      for await (const _ of client.events(`${mock}/v1/chat/completions`, streamInit("x", "stall=3"))) events++;
    })());
    equal(error.name, "TimeoutError", "error name");
    equal(error.option, "timeout.idleMs", "which deadline");
    equal(events, 3, "the events before the stall were delivered");
    check(error.partialText.startsWith("You said"), `partial text: ${error.partialText}`);
  },

  async "a mid-stream reset is an IncompleteStreamError and is never replayed"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: fast });
    const before = await upstreamCount(mock);
    let events = 0;
    // 30 ms apart: a loaded browser reads each frame before the next (a reset drops what the
    // receiving socket still holds unread: at 5 ms apart Chromium under load was handed 3 of 5).
    const init = streamInit("x", "reset=6");
    init.headers["x-mock-chunk-delay-ms"] = "30";
    const error = await rejection((async () => {
      for await (const _ of client.events(`${mock}/v1/chat/completions`, init)) events++;
    })());
    equal(error.name, "IncompleteStreamError", "error name");
    equal(error.code, "INCOMPLETE_STREAM", "error code");
    // reset=6: the mock writes six frames and destroys the socket in the same tick as the sixth,
    // which Node has not flushed yet and drops: the five before it arrive, one event each.
    equal(events, 5, "the events written before the reset were delivered");
    check(error.partialText.startsWith("You said"), `partial ${JSON.stringify(error.partialText)}`);
    equal((await upstreamCount(mock)) - before, 1, "no replay after data was delivered");
  },

  async "timeout.firstByteMs bounds the time to the first event"({ ResilientClient }, mock) {
    const client = new ResilientClient({ timeout: { firstByteMs: 250 }, retry: false });
    const error = await rejection((async () => {
      // Headers arrive at once, the first event never does.
      for await (const _ of client.events(`${mock}/v1/chat/completions`, streamInit("x", "stall=0"))) {}
    })());
    equal(error.name, "TimeoutError", "error name");
    equal(error.option, "timeout.firstByteMs", "which deadline");
  },

  // The bug: a request's `resilience.timeout.idleMs` was parsed but ignored; events(), chatStream()
  // and chat() bounded a quiet body with the client's idleMs.
  async "a request's own timeouts override the client's in fetch, events, chat and chatStream"({ ResilientClient }, mock) {
    // The client's deadlines are 8 s, the request's 300 ms: a bound read from the client reports
    // timeoutMs 8000 and takes 8 s. The ceiling leaves 1.2 s for loopback and a loaded machine; the
    // floor allows a timer to fire a little early.
    const slow = { attemptMs: 8000, totalMs: 8000, firstByteMs: 8000, idleMs: 8000 };
    const url = `${mock}/v1/chat/completions`;
    const drain = async (iterable) => {
      for await (const _ of iterable);
    };
    // Each call gets the fault as a request header (fetch, events) or as its own target's (chat).
    const calls = {
      fetch: (timeout, fault) => new ResilientClient({ timeout: slow, retry: false })
        .fetch(url, chatInit(unique("t"), fault, { resilience: { timeout } }))
        .then((response) => response.text()),
      events: (timeout, fault) => drain(new ResilientClient({ timeout: slow, retry: false })
        .events(url, { ...streamInit(unique("t"), fault), resilience: { timeout } })),
      chat: (timeout, fault) => chatClient(fault).chat(chatRequest(timeout)),
      chatStream: (timeout, fault) => {
        const stream = chatClient(fault).chatStream(chatRequest(timeout));
        stream.result.catch(() => {});
        return drain(stream);
      },
    };
    const chatClient = (fault) => new ResilientClient({
      timeout: slow,
      retry: false,
      targets: [target(mock, unique("timeouts"), { headers: { "x-mock-fault": fault } })],
    });
    const chatRequest = (timeout) => ({ messages: [{ role: "user", content: unique("t") }], resilience: { timeout } });
    // [call, the request's deadline, the fault that runs into it]; fetch hands out its body unread,
    // so it has no idle bound of its own. A 1 s delay is past 300 ms and within the client's 8 s:
    // a bound not honoured lets the answer through, and the call does not reject.
    const cases = [
      ["fetch", "firstByteMs", "delay=1000"],
      ["fetch", "totalMs", "delay=1000"],
      ["events", "firstByteMs", "stall=0"],
      ["events", "idleMs", "stall=1"],
      ["events", "totalMs", "delay=1000"],
      ["chat", "firstByteMs", "delay=1000"],
      ["chat", "idleMs", "stall"],
      ["chat", "totalMs", "delay=1000"],
      ["chatStream", "firstByteMs", "stall=0"],
      ["chatStream", "idleMs", "stall=3"],
      ["chatStream", "totalMs", "delay=1000"],
    ];
    const openBefore = (await mockStats(mock)).inFlight;
    for (const [call, option, fault] of cases) {
      const started = performance.now();
      const thrown = await rejection(calls[call]({ [option]: 300 }, fault));
      const ms = performance.now() - started;
      // A chain of one target reports its target's error in `errors`.
      const error = thrown.name === "AllTargetsFailedError" ? thrown.errors[0] : thrown;
      const what = `${call} with ${option}: 300 (${error.name}: ${error.message})`;
      equal(error.name, "TimeoutError", what);
      equal(error.option, `timeout.${option}`, what);
      equal(error.timeoutMs, 300, what);
      check(ms >= 280 && ms < 1500, `${what} after ${Math.round(ms)} ms`);
    }
    // The mock keeps a delayed answer's request open until its delay ends: let them close, so that
    // a later scenario counting open requests starts from a quiet mock.
    for (let i = 0; i < 100 && (await mockStats(mock)).inFlight > openBefore; i++) await new Promise((r) => setTimeout(r, 20));
  },

  async "a request's own idleMs may also be looser than the client's"({ ResilientClient }, mock) {
    // Chunks 400 ms apart: past the client's 300 ms (so the client's bound would cut the stream after
    // its first event), well within the request's 1500 ms.
    const client = new ResilientClient({ timeout: { idleMs: 300 }, retry: false });
    const init = streamInit();
    init.body = chatBody(unique("loose"), { stream: true, stream_options: { include_usage: true }, max_tokens: 1 });
    init.headers["x-mock-chunk-delay-ms"] = "400";
    const events = [];
    for await (const event of client.events(`${mock}/v1/chat/completions`, { ...init, resilience: { timeout: { idleMs: 1500 } } })) events.push(event.data);
    // One word, the finish reason, the usage, [DONE].
    equal(events.length, 4, "every event");
    equal(events[3], "[DONE]", "to the end");
  },

  async "an in-band error event becomes an UpstreamError after the data before it"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    let events = 0;
    const error = await rejection((async () => {
      for await (const _ of client.events(`${mock}/v1/chat/completions`, streamInit("x", "mid-stream-error"))) events++;
    })());
    equal(error.name, "UpstreamError", "error name");
    equal(error.code, "UPSTREAM_STREAM_ERROR", "error code");
    equal(events, 2, "events before the error");
  },

  async "an error status surfaces as an UpstreamError with the status"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    const error = await rejection((async () => {
      for await (const _ of client.events(`${mock}/v1/chat/completions`, streamInit("x", "status=400"))) {}
    })());
    equal(error.name, "UpstreamError", "error name");
    equal(error.status, 400, "status");
  },

  async "breaking out of the loop cancels the request on the wire"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    const init = streamInit("x");
    init.headers["x-mock-chunk-delay-ms"] = "100";
    let events = 0;
    for await (const _ of client.events(`${mock}/v1/chat/completions`, init)) {
      if (++events === 2) break;
    }
    for (let i = 0; i < 50 && (await mockStats(mock)).inFlight > 0; i++) await new Promise((r) => setTimeout(r, 20));
    equal((await mockStats(mock)).inFlight, 0, "the upstream saw the connection close");
  },

  async "reconnects a GET stream with Last-Event-ID and the server's retry delay"({ ResilientClient }, mock) {
    const client = new ResilientClient();
    const fault = `reset=4;times=1;key=${unique("reconnect")}`;
    const ids = [];
    const stream = client.events(`${mock}/v1/events?count=6`, { headers: { "x-mock-fault": fault }, resilience: { reconnect: true } });
    for await (const event of stream) ids.push(event.id);
    equal(ids.join(","), "1,2,3,4,5,6", "every event once, in order, across the cut");
    const error = await rejection((async () => {
      for await (const _ of client.events(`${mock}/v1/chat/completions`, { ...streamInit("x"), resilience: { reconnect: true } })) {}
    })());
    equal(error.name, "TypeError", "reconnect is refused for POST");
  },

  async "a custom store object is used end to end: get and put"({ ResilientClient }, mock) {
    // The documented CacheStore interface, async as a remote store's would be (the client calls
    // get and put; delete is part of the interface for the store's owner).
    const entries = new Map();
    const calls = [];
    const store = {
      async get(key) {
        calls.push(["get", key]);
        return entries.get(key);
      },
      async put(key, entry, ttlMs) {
        calls.push(["put", key, ttlMs]);
        entries.set(key, entry);
      },
      async delete(key) {
        calls.push(["delete", key]);
        entries.delete(key);
      },
    };
    const client = new ResilientClient({ cache: { store, ttlMs: 60_000 } });
    const prompt = unique("custom-store");
    const init = () => ({ method: "POST", headers: { "content-type": "application/json", authorization: "Bearer sk-secret" }, body: chatBody(prompt, { temperature: 0 }) });
    const first = await client.fetch(`${mock}/v1/chat/completions`, init());
    equal(first.headers.get("x-cache"), "MISS", "first x-cache");
    const text = await first.text();
    await settle(() => entries.size === 1);
    const [key, entry] = [...entries][0];
    check(/^[0-9a-f]{64}$/.test(key), `the key is a SHA-256 in hex: ${key}`);
    const ttl = calls.find((c) => c[0] === "put")[2];
    // ttlMs is what remains of cache.ttlMs when the put runs: less the time since the answer came.
    check(ttl <= 60_000 && ttl >= 59_000, `put's ttlMs ${ttl}: cache.ttlMs 60000 less the time since the answer`);
    equal(entry.status, 200, "entry.status");
    check(Array.isArray(entry.headers) && entry.headers.every((h) => h[0].toLowerCase() !== "authorization"), "no credential stored");
    check(!new TextDecoder().decode(entry.body).includes("sk-secret") && !JSON.stringify(entry.headers).includes("sk-secret"), "no secret stored");
    equal(new TextDecoder().decode(entry.body), text, "entry.body is the answer");
    check(entry.storedAt <= entry.freshUntil && entry.freshUntil <= entry.staleUntil, "entry times");
    const before = await upstreamCount(mock);
    const second = await client.fetch(`${mock}/v1/chat/completions`, init());
    equal(second.headers.get("x-cache"), "HIT", "second x-cache");
    equal(await second.text(), text, "served from the store");
    equal(await upstreamCount(mock), before, "the upstream was not asked");
    // An entry the store still returns past its staleUntil is a miss, replaced by the new answer.
    entries.set(key, { ...entry, freshUntil: 1, staleUntil: 1 });
    const third = await client.fetch(`${mock}/v1/chat/completions`, init());
    equal(third.headers.get("x-cache"), "MISS", "an expired entry is a miss");
    await third.text();
    await settle(() => entries.get(key).staleUntil > 1);
    check(entries.get(key).staleUntil > Date.now(), "the entry was replaced by a fresh one");
  },

  async "streams longer than 4 MiB are neither stored nor shared"({ ResilientClient }, mock) {
    // The mock echoes up to 24 words of the prompt, one word per chunk: 24 words of 150,000
    // characters make a ~3.6 MB stream, of 190,000 a ~4.6 MB one (the limit, 4 MiB, is 4.19 MB).
    const client = new ResilientClient({ dedupe: true, cache: true, targets: [target(mock, unique("big"))] });
    const prompt = (size) => Array.from({ length: 24 }, (_, i) => String(i % 10).repeat(size)).join(" ") + ` ${unique("big")}`;
    const ask = (content) => client.chatStream({ messages: [{ role: "user", content }], temperature: 0 });
    const read = async (stream, onText = () => {}) => {
      let text = "";
      for await (const delta of stream) {
        text += delta.text;
        onText(text);
      }
      return { text, result: await stream.result };
    };
    // A late joiner: started once the first reader holds `at` characters; returns the upstream calls.
    const lateJoin = async (content, at) => {
      const before = await upstreamCount(mock);
      let joiner;
      const first = await read(ask(content), (text) => {
        if (text.length >= at && !joiner) joiner = read(ask(content));
      });
      const second = await joiner;
      equal(second.text, first.text, "the late joiner got the whole answer");
      return (await upstreamCount(mock)) - before;
    };
    const small = prompt(150_000);
    equal(await lateJoin(small, 3_000_000), 1, "under 4 MiB: a joiner after 3 MB shares the stream");
    await settle(() => client.stats().cache.entries === 1);
    equal((await read(ask(small))).result.cached, true, "under 4 MiB: stored and replayed");

    const big = prompt(190_000);
    equal(await lateJoin(big, 4_300_000), 2, "over 4 MiB: a joiner after 4.3 MB makes its own call");
    await new Promise((r) => setTimeout(r, 200));
    equal(client.stats().cache.entries, 1, "over 4 MiB: not stored");
    const again = await read(ask(big));
    equal(again.result.cached, false, "over 4 MiB: asked again, not replayed");
  },

  async "caches a deterministic answer: the second call is a HIT the upstream never sees"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: { ttlMs: 60_000 } });
    const events = [];
    client.on("cache", (e) => events.push(e.result));
    const body = chatBody(unique("cache"), { temperature: 0 });
    const first = await client.fetch(`${mock}/v1/chat/completions`, { method: "POST", body });
    equal(first.headers.get("x-cache"), "MISS", "first x-cache");
    const text = await first.text();
    await settle(() => events.includes("store"));
    const before = await upstreamCount(mock);
    // Same request, keys in another order and other whitespace: same canonical body, same entry.
    const parsed = JSON.parse(body);
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(parsed).reverse()), null, 2);
    const second = await client.fetch(`${mock}/v1/chat/completions`, { method: "POST", body: reordered });
    equal(second.headers.get("x-cache"), "HIT", "second x-cache");
    check(second.headers.get("age") !== null, "Age header");
    equal(await second.text(), text, "same body");
    equal(await upstreamCount(mock), before, "served without the upstream");
    const stats = client.stats().cache;
    equal(stats.hits, 1, "stats().cache.hits");
    equal(stats.entries, 1, "stats().cache.entries");
    check(client.metrics().includes('sturdy_llm_cache_lookups_total{result="hit"} 1'), "metrics");
    await client.clearCache();
    equal(client.stats().cache.entries, 0, "cleared");
  },

  async "never caches sampled answers, no-store, errors, or across API keys"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: true, retry: false });
    const url = `${mock}/v1/chat/completions`;
    const twice = async (init) => {
      await (await client.fetch(url, init)).text();
      await new Promise((r) => setTimeout(r, 30));
      return (await client.fetch(url, init)).headers.get("x-cache");
    };
    equal(await twice({ method: "POST", body: chatBody(unique("t"), { temperature: 0.7 }) }), null, "sampled: not even looked up");
    const deterministic = chatBody(unique("ns"), { temperature: 0 });
    equal(await twice({ method: "POST", body: deterministic, headers: { "cache-control": "no-store" } }), null, "request no-store");
    equal(await twice({ method: "POST", body: deterministic, headers: { "x-mock-fault": "status=500" } }), "MISS", "a 500 is not stored");
    const keyed = chatBody(unique("keys"), { temperature: 0 });
    await (await client.fetch(url, { method: "POST", body: keyed, headers: { authorization: "Bearer alice" } })).text();
    await new Promise((r) => setTimeout(r, 30));
    const bob = await client.fetch(url, { method: "POST", body: keyed, headers: { authorization: "Bearer bob" } });
    equal(bob.headers.get("x-cache"), "MISS", "another API key never sees alice's entry");
    const alice = await client.fetch(url, { method: "POST", body: keyed, headers: { authorization: "Bearer alice" } });
    equal(alice.headers.get("x-cache"), "HIT", "alice hits her own entry");
  },

  async "answers are never shared across credentials, whatever header carries them"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: true, retry: false });
    const url = `${mock}/v1/chat/completions`;
    const stored = [];
    client.on("cache", (e) => e.result === "store" && stored.push(e));
    // "sampled": the mock answers every request differently, so a shared answer shows.
    const ask = async (body, headers) => {
      const response = await client.fetch(url, { method: "POST", body, headers });
      return { cache: response.headers.get("x-cache"), text: await response.text() };
    };
    const headers = ["x-goog-api-key", "cookie", "proxy-authorization", "cf-aig-authorization", "ocp-apim-subscription-key", "openai-organization"];
    for (const name of headers) {
      const body = chatBody(unique(name), { temperature: 0 });
      const alice = await ask(body, { [name]: "alice", "x-mock-fault": "sampled" });
      await settle(() => stored.length === 1);
      stored.length = 0;
      const bob = await ask(body, { [name]: "bob", "x-mock-fault": "sampled" });
      equal(bob.cache, "MISS", `${name}: bob's request`);
      check(bob.text !== alice.text, `${name}: bob got alice's answer`);
      await settle(() => stored.length === 1);
      stored.length = 0;
      equal((await ask(body, { [name]: "alice", "x-mock-fault": "sampled" })).text, alice.text, `${name}: alice's own entry`);
      const again = await ask(body, new Headers({ [name]: "bob", "x-mock-fault": "sampled" }));
      equal(again.cache, "HIT", `${name}: bob's entry, headers given as a Headers object`);
      equal(again.text, bob.text, `${name}: bob's own entry`);
    }
    // A Request's own headers and the client's default headers count as well (a GET is cacheable).
    const health = `${mock}/health?${unique("request")}`;
    const fromRequest = async (key) => {
      const response = await client.fetch(new Request(health, { headers: { "x-goog-api-key": key } }));
      await response.text();
      return response.headers.get("x-cache");
    };
    equal(await fromRequest("alice"), "MISS", "Request: alice first");
    await settle(() => stored.length === 1);
    equal(await fromRequest("bob"), "MISS", "Request: bob is not served alice's entry");
    equal(await fromRequest("alice"), "HIT", "Request: alice's own entry");
    const store = new Map();
    const shared = { get: async (k) => store.get(k), put: async (k, e) => void store.set(k, e), delete: async (k) => void store.delete(k) };
    const withDefaults = (key) => new ResilientClient({ cache: { store: shared }, headers: { authorization: `Bearer ${key}` } });
    const cacheOf = async (c) => (await c.fetch(health)).headers.get("x-cache");
    const carol = withDefaults("carol");
    carol.on("cache", (e) => e.result === "store" && stored.push(e));
    stored.length = 0;
    equal(await cacheOf(carol), "MISS", "client headers: carol first");
    await settle(() => stored.length === 1);
    equal(await cacheOf(withDefaults("dave")), "MISS", "client headers: dave is not served carol's entry");
    equal(await cacheOf(withDefaults("carol")), "HIT", "client headers: carol's own entry");
  },

  async "concurrent identical calls with different credentials each make their own call"({ ResilientClient }, mock) {
    const client = new ResilientClient({ dedupe: true, retry: false });
    const url = `${mock}/v1/chat/completions`;
    const body = chatBody(unique("dedupe-keys"), { temperature: 0 });
    const call = (headers) =>
      client.fetch(url, { method: "POST", body, headers: { "x-mock-fault": "delay=150;sampled", ...headers } }).then((r) => r.text());
    let before = await upstreamCount(mock);
    const [alice, bob] = await Promise.all([call({ "x-goog-api-key": "alice" }), call({ "x-goog-api-key": "bob" })]);
    equal((await upstreamCount(mock)) - before, 2, "two upstream calls");
    check(alice !== bob, "each caller got its own answer");
    equal(client.stats().deduplicated, 0, "nothing shared");

    // Streams too.
    const streamBody = chatBody(unique("stream-keys"), { temperature: 0, stream: true });
    const stream = async (cookie) => {
      const events = [];
      for await (const e of client.events(url, { method: "POST", body: streamBody, headers: { cookie, "x-mock-fault": "sampled" } })) events.push(e.data);
      return events.join("");
    };
    before = await upstreamCount(mock);
    const streams = await Promise.all([stream("session=alice"), stream("session=bob")]);
    equal((await upstreamCount(mock)) - before, 2, "two upstream streams");
    check(streams[0] !== streams[1], "each stream is its caller's own");
    equal(client.stats().deduplicated, 0, "no stream shared");

    // Telemetry headers do not split identical calls: user-agent and the SDKs' x-stainless-*.
    before = await upstreamCount(mock);
    const [one, two] = await Promise.all([
      call({ "x-goog-api-key": "alice", "user-agent": "sdk/1", "x-stainless-retry-count": "0", "x-stainless-os": "Linux" }),
      call({ "x-goog-api-key": "alice", "user-agent": "sdk/2", "x-stainless-retry-count": "1" }),
    ]);
    equal((await upstreamCount(mock)) - before, 1, "one upstream call");
    equal(one, two, "the same answer");
    equal(client.stats().deduplicated, 1, "shared");
  },

  async "headers in a plain object with its own iterator are keyed as fetch reads them: through the iterator"({ ResilientClient }, mock) {
    // fetch reads a HeadersInit that has a Symbol.iterator as a list of pairs, whatever its prototype.
    const client = new ResilientClient({ retry: false });
    const url = `${mock}/v1/chat/completions`;
    const body = chatBody(unique("iterable-headers"), { temperature: 0 });
    const headers = (key) => ({
      "x-mock-fault": "delay=150;sampled",
      *[Symbol.iterator]() {
        yield ["x-goog-api-key", key];
        yield ["x-mock-fault", "delay=150;sampled"];
      },
    });
    const call = (key) => client.fetch(url, { method: "POST", body, headers: headers(key) }).then((r) => r.text());
    const before = await upstreamCount(mock);
    const [alice, bob] = await Promise.all([call("alice"), call("bob")]);
    equal((await upstreamCount(mock)) - before, 2, "two upstream calls");
    check(alice !== bob, "bob got alice's answer");
    equal(client.stats().deduplicated, 0, "nothing shared");
  },

  async "a caller's signal whose listener methods throw fails only its own call, never the instance"({ ResilientClient }, mock) {
    const deadline = (promise) =>
      Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve("still pending after 3 s"), 3000))]);
    const outcome = (promise) => deadline(promise.then((r) => r.status, (e) => `${e.name}: ${e.message}`));
    const signal = (method) => {
      const s = new AbortController().signal;
      s[method] = () => {
        throw new Error(`${method} refused`);
      };
      return s;
    };
    // A shared call (dedupe is on by default) gives the caller a copy its signal can cut.
    const shared = await outcome(new ResilientClient({}).fetch(`${mock}/health?${unique("listen")}`, { signal: signal("addEventListener") }));
    equal(shared, 200, "a shared call with a signal whose addEventListener throws");
    // A store call listens to the signal while it waits, and stops listening once it settles.
    const store = { get: async () => undefined, put: async () => {}, delete: async () => {} };
    const cached = new ResilientClient({ cache: { store } });
    const stopped = await outcome(cached.fetch(`${mock}/health?${unique("remove")}`, { signal: signal("removeEventListener") }));
    equal(stopped, 200, "a store call with a signal whose removeEventListener throws");
    equal(await outcome(new ResilientClient({}).fetch(`${mock}/health?${unique("after")}`)), 200, "a new client afterwards");
  },

  async "a request body over 4 Mi characters is neither keyed nor copied into wasm memory"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: true, retry: false });
    const body = JSON.stringify({ model: "mock-1", temperature: 0, messages: [{ role: "user", content: "x".repeat(6 << 20) }] });
    const before = client.stats().memory.wasmBytes;
    const response = await client.fetch(`${mock}/health?${unique("big-body")}`, { method: "POST", body });
    await response.arrayBuffer();
    const grown = client.stats().memory.wasmBytes - before;
    check(grown < 1 << 20, `wasm memory grew by ${grown} bytes for a ${body.length}-character body`);
    equal(response.headers.get("x-cache"), null, "not looked up in the cache");
  },

  async "telemetry headers do not split the cache"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: true });
    const stored = [];
    client.on("cache", (e) => e.result === "store" && stored.push(e));
    const url = `${mock}/v1/chat/completions`;
    const body = chatBody(unique("telemetry"), { temperature: 0 });
    const first = await client.fetch(url, {
      method: "POST",
      body,
      headers: { "user-agent": "OpenAI/JS 4.0", "x-stainless-os": "Linux", "x-stainless-retry-count": "0", traceparent: "00-a-b-01" },
    });
    await first.text();
    await settle(() => stored.length === 1);
    const second = await client.fetch(url, {
      method: "POST",
      body,
      headers: { "User-Agent": "other", "X-Stainless-Retry-Count": "2", "idempotency-key": "k2", "x-request-id": "r2" },
    });
    equal(second.headers.get("x-cache"), "HIT", "x-cache");
  },

  async "chat targets differing only in a header never share a cache entry"({ ResilientClient }, mock) {
    // One store shared by clients, as a KV namespace is shared by every isolate of a Worker.
    const entries = new Map();
    const store = {
      async get(key) { return entries.get(key); },
      async put(key, entry) { entries.set(key, entry); },
      async delete(key) { entries.delete(key); },
    };
    const name = unique("tenant");
    const tenant = (key) => {
      const client = new ResilientClient({ cache: { store }, targets: [target(mock, name, { headers: { "x-goog-api-key": key } })] });
      const stored = [];
      client.on("cache", (e) => e.result === "store" && stored.push(e));
      return { client, stored };
    };
    const request = { messages: [{ role: "user", content: name }], temperature: 0 };
    const both = async ({ client }) => {
      const answer = await client.chat(request);
      const stream = client.chatStream(request);
      for await (const _ of stream);
      return [answer.cached, (await stream.result).cached];
    };
    const alice = tenant("alice");
    equal(JSON.stringify(await both(alice)), "[false,false]", "alice asks first (chat, chatStream)");
    await settle(() => alice.stored.length === 2);
    equal(JSON.stringify(await both(tenant("bob"))), "[false,false]", "bob is not served alice's entries");
    equal(JSON.stringify(await both(tenant("alice"))), "[true,true]", "alice's own entries");
  },

  async "only-if-cached misses with a 504 and force caches any request"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: true });
    const url = `${mock}/v1/chat/completions`;
    const body = chatBody(unique("force"), { temperature: 1 });
    const miss = await client.fetch(url, { method: "POST", body, resilience: { cache: "only-if-cached" } });
    equal(miss.status, 504, "only-if-cached miss");
    await (await client.fetch(url, { method: "POST", body, resilience: { cache: "force" } })).text();
    await new Promise((r) => setTimeout(r, 30));
    const hit = await client.fetch(url, { method: "POST", body, resilience: { cache: "only-if-cached" } });
    equal(hit.headers.get("x-cache"), "HIT", "forced entry");
  },

  async "serves a stale entry when the upstream fails (staleIfErrorMs)"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: { ttlMs: 50, staleIfErrorMs: 60_000 }, retry: false });
    // The outage is the target's (a fault header would be part of the request, and of its key).
    const name = unique("stale");
    const url = `${mock}/t/${name}/v1/chat/completions`;
    const body = chatBody(name, { temperature: 0 });
    const fresh = await (await client.fetch(url, { method: "POST", body })).text();
    await new Promise((r) => setTimeout(r, 120));
    await setFaults(mock, { target: name, outage: true });
    const failing = await client.fetch(url, { method: "POST", body });
    await setFaults(mock, { target: name });
    equal(failing.headers.get("x-cache"), "STALE", "x-cache");
    equal(failing.status, 200, "the stored answer's status");
    equal(await failing.text(), fresh, "the stored answer");
  },

  async "a stream serves its stale recording when the upstream fails before the first event (staleIfErrorMs)"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: { ttlMs: 50, staleIfErrorMs: 60_000 }, retry: false });
    const stored = [];
    client.on("cache", (e) => e.result === "store" && stored.push(e));
    const name = unique("stale-stream");
    const url = `${mock}/t/${name}/v1/chat/completions`;
    const body = chatBody(name, { temperature: 0, stream: true });
    const collect = async () => {
      const stream = client.events(url, { method: "POST", body });
      const events = [];
      for await (const event of stream) events.push(event);
      return { events, cache: (await stream.response).headers.get("x-cache") };
    };
    const fresh = await collect();
    await settle(() => stored.length === 1);
    await new Promise((r) => setTimeout(r, 120));
    await setFaults(mock, { target: name, outage: true });
    const failing = await collect().finally(() => setFaults(mock, { target: name }));
    equal(failing.cache, "STALE", "x-cache");
    equal(JSON.stringify(failing.events), JSON.stringify(fresh.events), "the stored events");
  },

  async "a chatStream whose target fails before its first delta answers from the stale recording, free"({ ResilientClient }, mock) {
    const name = unique("stale-chat");
    const client = new ResilientClient({
      targets: [target(mock, name, { pricing: { inputPerMTok: 1, outputPerMTok: 2 } })],
      cache: { ttlMs: 50, staleIfErrorMs: 60_000 },
      retry: false,
    });
    const request = { messages: [{ role: "user", content: unique("stale-chat") }], temperature: 0 };
    const read = async () => {
      const stream = client.chatStream(request);
      let text = "";
      for await (const delta of stream) text += delta.text;
      return { text, result: await stream.result };
    };
    const fresh = await read();
    await settle(() => client.stats().cache.entries === 1);
    await new Promise((r) => setTimeout(r, 120));
    await setFaults(mock, { target: name, outage: true });
    const stale = await read().finally(() => setFaults(mock, { target: name }));
    equal(stale.text, fresh.text, "the stored answer");
    equal(stale.result.cached, true, "from the cache");
    equal(stale.result.costUsd, 0, "a stale answer costs nothing");
  },

  async "a store that never answers cannot hold a call past its deadline or its signal"({ ResilientClient }, mock) {
    const hanging = { get: () => new Promise(() => {}), put: async () => {}, delete: async () => {}, clear: () => new Promise(() => {}) };
    const url = `${mock}/v1/chat/completions`;
    const init = (extra = {}) => ({ method: "POST", body: chatBody(unique("hang"), { temperature: 0 }), ...extra });
    const timed = async (promise) => {
      const started = performance.now();
      const outcome = await promise.then((value) => ({ value }), (error) => ({ error }));
      return { ...outcome, ms: performance.now() - started };
    };
    // With timeout.totalMs, a lookup takes at most half of it: the upstream answers in the other half.
    const client = new ResilientClient({ cache: { store: hanging }, timeout: { totalMs: 1000 }, retry: false });
    const errors = [];
    client.on("error", (e) => errors.push(e.error));
    const answered = await timed(client.fetch(url, init()));
    equal(answered.value?.status, 200, `the upstream's answer (${answered.error})`);
    // 500 ms of lookup (a timer may fire a little early) plus a loopback answer; 1000 is the deadline.
    check(answered.ms >= 480 && answered.ms < 1000, `answered after ${answered.ms} ms`);
    equal(errors[0]?.name, "CacheStoreError", "error event");
    check(/get\(\) did not settle within (4[89]\d|500) ms/.test(errors[0].message), errors[0].message);
    // The lookup's time counts against the deadline: 500 ms of lookup + a 700 ms answer is too late.
    const late = await timed(client.fetch(url, init({ headers: { "x-mock-fault": "delay=700" } })));
    equal(late.error?.name, "TimeoutError", `a late answer (${late.value?.status})`);
    equal(late.error.timeoutMs, 1000, "the deadline as configured");
    check(late.ms < 1150, `timed out after ${late.ms} ms`);

    // Without a deadline, cache.timeoutMs bounds the lookup (and clearCache).
    rejectsOptions(ResilientClient, [
      [{ cache: { timeoutMs: 0 } }, "RangeError", "cache.timeoutMs"],
      [{ cache: { timeoutMs: 2 ** 31 } }, "RangeError", "cache.timeoutMs"],
    ]);
    const bounded = new ResilientClient({ cache: { store: hanging, timeoutMs: 100 } });
    const quick = await timed(bounded.fetch(url, init()));
    equal(quick.value?.status, 200, `answered (${quick.error})`);
    check(quick.ms >= 90 && quick.ms < 500, `answered after ${quick.ms} ms`);
    const cleared = await timed(bounded.clearCache());
    equal(cleared.error?.name, "CacheStoreError", "clearCache on a hanging store");
    check(cleared.ms >= 90 && cleared.ms < 500, `clearCache gave up after ${cleared.ms} ms`);

    // The caller's signal cuts the wait: a fetch, an event stream, already aborted or aborted later.
    const reason = new Error("caller gave up");
    const aborted = await timed(client.fetch(url, init({ signal: AbortSignal.abort(reason) })));
    check(aborted.error === reason, `already aborted: the signal's reason, got ${aborted.error?.name}`);
    const controller = new AbortController();
    setTimeout(() => controller.abort(reason), 50);
    const slow = new ResilientClient({ cache: { store: hanging } });
    const cut = await timed(slow.fetch(url, init({ signal: controller.signal })));
    check(cut.error === reason, `aborted while the store hangs: the signal's reason, got ${cut.error?.name}`);
    check(cut.ms < 400, `rejected after ${cut.ms} ms`);
    const streamController = new AbortController();
    setTimeout(() => streamController.abort(reason), 50);
    const events = slow.events(url, init({ body: chatBody(unique("hang-stream"), { temperature: 0, stream: true }), signal: streamController.signal }));
    const streamCut = await timed(events[Symbol.asyncIterator]().next());
    check(streamCut.error === reason, `an event stream aborted while the store hangs: the signal's reason, got ${streamCut.error?.name}`);
    check(streamCut.ms < 400, `the stream rejected after ${streamCut.ms} ms`);

    // Hundreds of calls at once against the hanging store all get their answer.
    const many = await Promise.all(
      Array.from({ length: 300 }, (_, i) => bounded.fetch(`${mock}/health?${unique(`many-${i}`)}`).then((r) => r.status)),
    );
    check(many.every((status) => status === 200), `300 concurrent calls: ${many.filter((x) => x !== 200).length} failed`);

    // A store whose put never settles does not keep a Worker's waitUntil alive past cache.timeoutMs.
    const stuck = new ResilientClient({ cache: { store: { ...hanging, get: async () => undefined, put: () => new Promise(() => {}) }, timeoutMs: 100 } });
    const background = [];
    const storeErrors = [];
    stuck.on("error", (e) => storeErrors.push(e.error));
    await (await stuck.fetch(url, init({ resilience: { waitUntil: (p) => background.push(p) } }))).text();
    equal(background.length, 1, "one background write");
    await timed(background[0]);
    check(storeErrors.some((e) => e.message.includes("put() did not settle within 100 ms")), `put's error event: ${storeErrors.map((e) => e.message)}`);
  },

  async "a store's invalid entries are misses with an error event, never a failed call"({ ResilientClient }, mock) {
    const now = Date.now();
    const good = { status: 200, headers: [["content-type", "text/plain"]], body: new TextEncoder().encode("stored"), storedAt: now, freshUntil: now + 60_000, staleUntil: now + 60_000 };
    const throwing = Object.defineProperty({ ...good }, "status", { get() { throw new Error("getter"); } });
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const invalid = {
      "status 999": { ...good, status: 999 },
      "status 99": { ...good, status: 99 },
      "status as a string": { ...good, status: "200" },
      "status 200.5": { ...good, status: 200.5 },
      "no status": { ...good, status: undefined },
      "headers not an array": { ...good, headers: { "content-type": "text/plain" } },
      "a header without a value": { ...good, headers: [["content-type"]] },
      "a header of numbers": { ...good, headers: [[1, 2]] },
      "a header with a CR": { ...good, headers: [["x-a\r", "b"]] },
      "a body of a number": { ...good, body: 42 },
      "no body": { ...good, body: undefined },
      "no storedAt": { ...good, storedAt: undefined },
      "times out of order": { ...good, freshUntil: now - 1 },
      "a negative time": { ...good, storedAt: -1 },
      "a throwing getter": throwing,
      "a revoked proxy": revoked.proxy,
      "a number": 7,
      "a sparse header list 2^32-1 long": { ...good, headers: new Array(2 ** 32 - 1) },
      "a body larger than maxBytes": { ...good, body: new Uint8Array(1025) },
    };
    const url = `${mock}/v1/chat/completions`;
    const ask = async (get) => {
      const client = new ResilientClient({ cache: { store: { get, put: async () => {}, delete: async () => {} }, maxBytes: 1024 }, retry: false });
      const errors = [];
      client.on("error", (e) => errors.push(e.error));
      const response = await client.fetch(url, { method: "POST", body: chatBody(unique("entry"), { temperature: 0 }) });
      return { response, text: await response.text(), errors };
    };
    for (const [what, entry] of Object.entries(invalid)) {
      const { response, text, errors } = await ask(async () => entry);
      equal(response.status, 200, `${what}: status`);
      equal(response.headers.get("x-cache"), "MISS", `${what}: x-cache`);
      check(text.includes("You said"), `${what}: the upstream's answer`);
      equal(errors[0]?.name, "CacheStoreError", `${what}: error event`);
    }
    for (const [what, get] of Object.entries({ "a throwing get": () => { throw new Error("sync"); }, "a rejecting get": async () => { throw "async"; } })) {
      const { response, errors } = await ask(get);
      equal(response.headers.get("x-cache"), "MISS", `${what}: x-cache`);
      equal(errors[0]?.name, "CacheStoreError", `${what}: error event`);
      check(errors[0].message.includes(what === "a throwing get" ? "sync" : "async"), errors[0].message);
    }
    // A store that calls the client from inside get() (re-entrant) is just slow.
    let inner;
    const reentrant = await ask(async () => {
      inner = await (await new ResilientClient({ cache: true }).fetch(`${mock}/health`)).text();
      return undefined;
    });
    equal(reentrant.response.status, 200, "a re-entrant store");
    check(inner.includes("ok"), "the inner call's answer");
    // Valid entries replay, a string body and a bodiless status included.
    const hit = await ask(async () => ({ ...good, body: "a string body" }));
    equal(hit.response.headers.get("x-cache"), "HIT", "a string body");
    equal(hit.text, "a string body", "its text");
    const empty = await ask(async () => ({ ...good, status: 204, body: new Uint8Array() }));
    equal(empty.response.status, 204, "a stored 204");
    equal(empty.errors.length, 0, "no error");
  },

  async "a cached 204 replays"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: true });
    const stored = [];
    client.on("cache", (e) => e.result === "store" && stored.push(e));
    const url = `${mock}/v1/chat/completions?${unique("204")}`;
    const init = { method: "OPTIONS", resilience: { cache: "force" } };
    equal((await client.fetch(url, init)).status, 204, "the upstream's 204");
    await settle(() => stored.length === 1);
    const hit = await client.fetch(url, init);
    equal(hit.headers.get("x-cache"), "HIT", "x-cache");
    equal(hit.status, 204, "status");
  },

  async "records a completed stream and replays the same events from the cache"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: true });
    const stored = [];
    client.on("cache", (e) => e.result === "store" && stored.push(e));
    const body = chatBody(unique("stream-cache"), { temperature: 0, stream: true });
    const collect = async (init) => {
      const stream = client.events(`${mock}/v1/chat/completions`, init);
      const events = [];
      for await (const event of stream) events.push(event);
      return { events, cache: (await stream.response).headers.get("x-cache") };
    };
    const first = await collect({ method: "POST", body });
    await settle(() => stored.length === 1);
    const before = await upstreamCount(mock);
    const second = await collect({ method: "POST", body });
    equal(second.cache, "HIT", "replayed from the cache");
    equal(JSON.stringify(second.events), JSON.stringify(first.events), "same events, same order");
    equal(await upstreamCount(mock), before, "the upstream was not asked");

    // A cut stream is never stored: the next identical request goes upstream.
    const cut = chatBody(unique("stream-cut"), { temperature: 0, stream: true });
    const headers = { "x-mock-fault": "reset=4" };
    await rejection(collect({ method: "POST", body: cut, headers }));
    await new Promise((r) => setTimeout(r, 50));
    const again = await collect({ method: "POST", body: cut });
    equal(again.cache, null, "not a cache hit");
    equal(stored.length, 2, "only the complete streams were stored");
  },

  async "identical deterministic streams share one upstream stream, each at its own pace"({ ResilientClient }, mock) {
    const client = new ResilientClient({ dedupe: true, retry: fast });
    const url = `${mock}/v1/chat/completions`;
    const slow = { "x-mock-chunk-delay-ms": "20" };
    const textOf = (events) =>
      events.slice(0, -1).map((e) => JSON.parse(e.data).choices[0]?.delta?.content ?? "").join("");
    const read = async (stream, { stopAfter = Infinity, onEvent = () => {} } = {}) => {
      const events = [];
      for await (const event of stream) {
        events.push(event);
        onEvent(events.length);
        if (events.length >= stopAfter) break;
      }
      return events;
    };
    const body = chatBody(unique("tee"), { temperature: 0, stream: true });
    const before = await upstreamCount(mock);
    // The leader stops after 3 events; a second caller starts at once, a third joins mid-way.
    const leader = client.events(url, { method: "POST", headers: slow, body });
    const second = client.events(url, { method: "POST", headers: slow, body });
    let late;
    const secondDone = read(second, {
      onEvent: (n) => n === 6 && (late = read(client.events(url, { method: "POST", headers: slow, body }))),
    });
    const leaderEvents = await read(leader, { stopAfter: 3 });
    const [secondEvents, lateEvents] = [await secondDone, await late];
    equal(leaderEvents.length, 3, "the leader stopped early");
    equal(secondEvents.at(-1).data, "[DONE]", "the second caller read to the end");
    equal(JSON.stringify(lateEvents), JSON.stringify(secondEvents), "a late joiner sees every event from the first");
    check(textOf(secondEvents).includes("You said"), "the answer");
    equal(JSON.stringify(secondEvents.slice(0, 3)), JSON.stringify(leaderEvents), "the same stream");
    equal((await upstreamCount(mock)) - before, 1, "one upstream stream for three callers");
    equal(client.stats().deduplicated, 2, "stats().deduplicated");
    equal((await second.response).status, 200, "a joiner's response");

    // Every caller cancelling cancels the upstream stream; the next identical request opens a new one.
    const cut = chatBody(unique("tee-cancel"), { temperature: 0, stream: true });
    const a = client.events(url, { method: "POST", headers: slow, body: cut });
    const b = client.events(url, { method: "POST", headers: slow, body: cut });
    await Promise.all([read(a, { stopAfter: 2 }), read(b, { stopAfter: 1 })]);
    const afterCancel = await upstreamCount(mock);
    const fresh = await read(client.events(url, { method: "POST", body: cut }));
    equal(fresh.at(-1).data, "[DONE]", "a complete stream after the others cancelled");
    equal((await upstreamCount(mock)) - afterCancel, 1, "a new upstream stream");

    // A cut reaches every reader of the shared stream, each with its own partial text.
    const reset = chatBody(unique("tee-reset"), { temperature: 0, stream: true });
    const failing = () => rejection(read(client.events(url, { method: "POST", headers: { "x-mock-fault": "reset=4" }, body: reset })));
    const errors = await Promise.all([failing(), failing()]);
    for (const error of errors) equal(error.name, "IncompleteStreamError", "each reader fails typed");

    // Sampled streams are never shared.
    const sampled = chatBody(unique("tee-sampled"), { temperature: 0.7, stream: true });
    const beforeSampled = await upstreamCount(mock);
    await Promise.all([read(client.events(url, { method: "POST", body: sampled })), read(client.events(url, { method: "POST", body: sampled }))]);
    equal((await upstreamCount(mock)) - beforeSampled, 2, "temperature 0.7 streams each reach the upstream");
  },

  async "a shared stream honours each caller's abort, before and after it opened"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: fast });
    const url = `${mock}/v1/chat/completions`;
    // The first caller aborts while the stream is still opening: the second opens it for itself.
    const opening = chatBody(unique("tee-abort-opening"), { temperature: 0, stream: true });
    const slowStart = { "x-mock-fault": "delay=300" };
    const early = new AbortController();
    const first = client.events(url, { method: "POST", headers: slowStart, body: opening, signal: early.signal });
    const second = client.events(url, { method: "POST", headers: slowStart, body: opening });
    setTimeout(() => early.abort(), 50);
    const drain = async (stream) => {
      const events = [];
      for await (const event of stream) events.push(event);
      return events;
    };
    equal((await rejection(drain(first))).name, "AbortError", "the aborting caller");
    equal((await drain(second)).at(-1).data, "[DONE]", "the other caller streams to the end");

    // An abort between two reads ends that caller's iteration at once; the other reads on.
    const live = chatBody(unique("tee-abort-live"), { temperature: 0, stream: true });
    const paced = { "x-mock-chunk-delay-ms": "20" };
    const stop = new AbortController();
    const a = client.events(url, { method: "POST", headers: paced, body: live, signal: stop.signal });
    const b = client.events(url, { method: "POST", headers: paced, body: live });
    const bDone = drain(b);
    const aEvents = [];
    const aError = await rejection((async () => {
      for await (const event of a) {
        aEvents.push(event);
        if (aEvents.length === 2) stop.abort();
      }
    })());
    equal(aError.name, "AbortError", "the aborted reader");
    equal(aEvents.length, 2, "no event after the abort");
    equal((await bDone).at(-1).data, "[DONE]", "the other reader");
  },

  async "identical chat streams cut together resume on a fresh upstream stream"({ ResilientClient }, mock) {
    const name = unique("tee-resume");
    const once = { headers: { "x-mock-fault": `times=1;key=${name};reset=6` } };
    const client = new ResilientClient({ dedupe: true, targets: [target(mock, name, once)], retry: fast });
    const messages = [{ role: "user", content: unique("tee-resume") }];
    const read = async (stream) => {
      let text = "";
      for await (const delta of stream) text += delta.text;
      return text;
    };
    const [x, y] = await Promise.all([
      read(client.chatStream({ messages, temperature: 0 })),
      read(client.chatStream({ messages, temperature: 0 })),
    ]);
    check(x.startsWith("You said") && x.endsWith("order."), x);
    equal(y, x, "both readers got the whole answer once");
    equal((await mockStats(mock)).byTarget[name].total, 2, "the cut stream, then one fresh stream for both");

    // Leaving a chatStream early settles its result (an AbortError) instead of leaving it pending.
    const left = client.chatStream({ messages: [{ role: "user", content: unique("left") }] });
    for await (const _ of left) break;
    equal((await rejection(left.result)).name, "AbortError", "result of a stream left early");
  },

  async "a listener that cancels a chat stream as it settles does not unsettle its result"({ ResilientClient }, mock) {
    const client = new ResilientClient({
      targets: [target(mock, unique("budget-cancel"))],
      // The call holds 37 tokens and uses 31: settling crosses 80% of 38.
      budget: { perUserDailyTokens: 38 },
    });
    const stream = client.chatStream({ messages: [{ role: "user", content: "hi" }], maxTokens: 32 });
    const crossed = [];
    client.on("budget", (e) => {
      crossed.push(e);
      stream.cancel(); // runs while the finished stream settles its budget
    });
    let text = "";
    for await (const delta of stream) text += delta.text;
    equal(crossed.length, 1, "budget events");
    const [event] = crossed;
    equal(event.type, "budget", "event type");
    equal(event.cap, "perUserDailyTokens", "the cap crossed");
    equal(event.used, 0.815, "used: 31 of 38 tokens, in per mille");
    equal((await stream.result).text, text, "result resolves with the answer it finished");
  },

  async "a budget event fires at 100% when the real usage reaches the cap"({ ResilientClient }, mock) {
    const client = new ResilientClient({ targets: [target(mock, unique("budget-full"))], budget: { perUserDailyTokens: 24 } });
    const events = [];
    client.on("budget", (e) => events.push(e));
    // 40 emoji: the estimate counts 40 characters (ceil(40 / 4) + 4 = 14), the mock 80 UTF-16 units
    // (20 tokens), so the call holds 14 + maxTokens 5 = 19 <= 24 and uses 20 + 5 = 25 >= 24.
    const result = await client.chat({ messages: [{ role: "user", content: "\u{1F600}".repeat(40) }], maxTokens: 5, user: "full" });
    equal(result.usage.inputTokens + result.usage.outputTokens, 25, "tokens used");
    equal(events.length, 1, "one event for the jump past both marks");
    equal(events[0].user, "full", "event user");
    equal(events[0].cap, "perUserDailyTokens", "event cap");
    equal(events[0].used, 1.041, "used: 25 of 24 tokens, in per mille");
    const error = await rejection(client.chat({ messages: [{ role: "user", content: "hi" }], maxTokens: 1, user: "full" }));
    equal(error.name, "BudgetExceededError", "the next call is refused");
    equal(error.remaining, 0, "nothing remains");
  },

  // The provider bills what it generated, delivered or not: a stream that ends early is charged its
  // input estimate and a token per 4 characters generated; one that never streamed gives its hold back.
  async "chatStream: a stream cancelled, aborted or cut after its answer started is charged what it generated"({ ResilientClient }, mock) {
    const cap = 100_000;
    const slow = { "x-mock-chunk-delay-ms": "20" };
    const make = (headers) => new ResilientClient({
      targets: [target(mock, unique("spent"), { headers, pricing: { inputPerMTok: 1, outputPerMTok: 2 } })],
      retry: false,
      budget: { perUserDailyTokens: cap },
    });
    // What the ledger holds against the user: the cap less what a refused call is told remains.
    const spent = async (client) => cap - (await rejection(client.chat({ messages: [{ role: "user", content: "x" }], maxTokens: cap }))).remaining;
    const messages = [{ role: "user", content: unique("spend") }];
    const expectCharged = async (client, read, how) => {
      const usage = client.stats().usage;
      check(read.text.length > 0, `${how}: some text was delivered`);
      check(usage.outputTokens >= Math.ceil(read.text.length / 4), `${how}: output charged for what was delivered: ${JSON.stringify(usage)} for ${read.text.length} characters`);
      check(usage.inputTokens > 0 && usage.costUsd > 0, `${how}: input and cost charged: ${JSON.stringify(usage)}`);
      equal(await spent(client), usage.inputTokens + usage.outputTokens, `${how}: the budget is charged the same tokens`);
    };

    // cancel() after three deltas.
    const cancelling = make(slow);
    const cancelled = cancelling.chatStream({ messages });
    const read = { text: "" };
    let deltas = 0;
    for await (const delta of cancelled) {
      read.text += delta.text;
      if (++deltas === 3) cancelled.cancel();
    }
    equal((await rejection(cancelled.result)).name, "AbortError", "a cancelled stream's result rejects");
    await expectCharged(cancelling, read, "cancelled");

    // The caller's signal after two deltas.
    const aborting = make(slow);
    const controller = new AbortController();
    const aborted = aborting.chatStream({ messages, signal: controller.signal });
    const abortedRead = { text: "" };
    deltas = 0;
    try {
      for await (const delta of aborted) {
        abortedRead.text += delta.text;
        if (++deltas === 2) controller.abort();
      }
    } catch (error) {
      equal(error.name, "AbortError", "iteration rejects with the abort");
    }
    await rejection(aborted.result);
    await expectCharged(aborting, abortedRead, "aborted");

    // Cut by the upstream (no resumption, no fallback): IncompleteStreamError, charged all the same.
    const cutting = make(cutAt(4));
    const cut = await readStream(cutting.chatStream({ messages }));
    equal(cut.error?.name, "IncompleteStreamError", "a cut stream fails");
    await expectCharged(cutting, cut, "cut");

    // A target that never streams an answer: nothing charged, the whole hold given back.
    const failing = make({ "x-mock-fault": "status=500" });
    const failed = await readStream(failing.chatStream({ messages }));
    check(failed.error !== undefined && failed.text === "", "the stream fails before any delta");
    const { inputTokens, outputTokens, costUsd } = failing.stats().usage;
    deepEqual([inputTokens, outputTokens, costUsd], [0, 0, 0], "nothing is charged");
    equal(await spent(failing), 0, "the hold is given back");
  },

  async "chatStream: 150 streams cut, resumed, continued, hedged, cancelled and aborted at random: the budget is charged exactly what stats() tallies"({ ResilientClient }, mock) {
    const cap = 10_000_000;
    const client = new ResilientClient({
      targets: [
        target(mock, unique("chaos-cut"), { headers: { ...cutAt(4), "x-mock-chunk-delay-ms": "2" }, prefill: true, pricing: { inputPerMTok: 1, outputPerMTok: 2 } }),
        target(mock, unique("chaos-ok"), { provider: "anthropic", model: "claude-x", headers: { "x-mock-chunk-delay-ms": "2" }, pricing: { inputPerMTok: 3, outputPerMTok: 4 } }),
      ],
      retry: { ...fast, maxRetries: 1 },
      fallback: { midStream: true },
      hedge: { afterMs: 15 },
      budget: { perUserDailyTokens: cap },
    });
    let seed = 11;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const outcomes = await Promise.all(Array.from({ length: 150 }, async (_, i) => {
      const controller = new AbortController();
      const stream = client.chatStream({ messages: [{ role: "user", content: `chaos ${i % 40}` }], signal: controller.signal });
      const [stopAt, cancel] = [Math.floor(random() * 10), random() < 0.5];
      let deltas = 0;
      try {
        for await (const _ of stream) if (++deltas === stopAt) cancel ? stream.cancel() : controller.abort();
      } catch {}
      return stream.result.then(() => "ok", (error) => error.name);
    }));
    check(outcomes.includes("ok") && outcomes.includes("AbortError"), `a mix of outcomes: ${outcomes}`);
    const { inputTokens, outputTokens } = client.stats().usage;
    check(outputTokens > 0, "output was charged");
    const refused = await rejection(client.chat({ messages: [{ role: "user", content: "x" }], maxTokens: cap }));
    equal(cap - refused.remaining, inputTokens + outputTokens, "the ledger holds what stats() tallies: no hold left behind, nothing charged twice");
  },

  async "a chat answered from the cache or a shared stream costs nothing"({ ResilientClient }, mock) {
    const name = unique("free");
    const client = new ResilientClient({
      dedupe: true,
      cache: true,
      targets: [target(mock, name, { pricing: { inputPerMTok: 1, outputPerMTok: 2 } })],
    });
    const messages = [{ role: "user", content: unique("free") }];
    const streams = [client.chatStream({ messages, temperature: 0 }), client.chatStream({ messages, temperature: 0 })];
    const results = await Promise.all(streams.map(async (s) => { for await (const _ of s); return s.result; }));
    const paid = results.filter((r) => r.costUsd > 0);
    equal(paid.length, 1, "one of two identical streams paid");
    equal(results[0].text, results[1].text, "both got the answer");
    await settle(() => client.stats().cache.entries === 1);
    const replay = client.chatStream({ messages, temperature: 0 });
    for await (const _ of replay);
    const hit = await replay.result;
    check(hit.cached, "answered from the cache");
    equal(hit.costUsd, 0, "a cache hit costs nothing");
    equal(client.stats().usage.costUsd, paid[0].costUsd, "the tally holds one call's cost");
  },

  async "chat answers from the first target with usage and cost"({ ResilientClient }, mock) {
    const name = unique("primary");
    const client = new ResilientClient({ targets: [target(mock, name, { pricing: { inputPerMTok: 2, outputPerMTok: 8 } })] });
    const result = await client.chat({ messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hello" }], maxTokens: 100 });
    check(result.text.startsWith('You said: "hello"'), result.text);
    equal(result.target, name, "target");
    equal(result.provider, "openai", "provider");
    equal(result.finishReason, "stop", "finishReason");
    check(result.usage.inputTokens > 0 && result.usage.outputTokens > 0, JSON.stringify(result.usage));
    const expected = (result.usage.inputTokens * 2 + result.usage.outputTokens * 8) / 1e6;
    check(Math.abs(result.costUsd - expected) < 1e-6, `cost ${result.costUsd} vs ${expected}`);
    equal(result.attempts, 1, "attempts");
    equal(result.cached, false, "cached");
    equal(client.stats().usage.outputTokens, result.usage.outputTokens, "stats().usage");
  },

  async "chat speaks Anthropic's Messages API"({ ResilientClient }, mock) {
    const client = new ResilientClient({ targets: [target(mock, unique("claude"), { provider: "anthropic", model: "claude-x" })] });
    const result = await client.chat({ messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "bonjour" }] });
    check(result.text.startsWith('You said: "bonjour"'), result.text);
    equal(result.provider, "anthropic", "provider");
    equal(result.finishReason, "stop", "finishReason, in OpenAI's words whichever provider answers");
  },

  async "chat writes every field of a tools request in each dialect, JSON and streamed"({ ResilientClient }, mock) {
    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
    const png = "iVBORw0KGgoAAAANSUhEUg==";
    const request = {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [
          { type: "text", text: "What time is it \"here\"?" },
          { type: "image", url: "https://example.com/a.png" },
          { type: "image", url: `data:image/png;base64,${png}` },
        ] },
        { role: "assistant", content: null, toolCalls: [{ id: "call_1", name: "get_time", arguments: '{"city":"Paris"}' }] },
        { role: "tool", toolCallId: "call_1", content: "12:34" },
      ],
      tools: [{ name: "get_time", description: "The local time in a city", parameters: schema }],
      toolChoice: "auto", maxTokens: 50, temperature: 0, topP: 0.5, stop: ["END"], seed: 7, user: "u1",
      providerOptions: { openai: { reasoning_effort: "low", seed: 8 }, anthropic: { top_k: 5 } },
      resilience: { cache: "bypass" },
    };
    const openai = {
      model: "mock-1",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [
          { type: "text", text: 'What time is it "here"?' },
          { type: "image_url", image_url: { url: "https://example.com/a.png" } },
          { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } },
        ] },
        { role: "assistant", content: null, tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_time", arguments: '{"city":"Paris"}' } },
        ] },
        { role: "tool", tool_call_id: "call_1", content: "12:34" },
      ],
      tools: [{ type: "function", function: { name: "get_time", description: "The local time in a city", parameters: schema } }],
      tool_choice: "auto", max_tokens: 50, temperature: 0, top_p: 0.5, stop: ["END"], user: "u1",
      reasoning_effort: "low", seed: 8, // providerOptions win
    };
    const anthropic = {
      model: "claude-x",
      max_tokens: 50,
      system: "Be brief.",
      messages: [
        { role: "user", content: [
          { type: "text", text: 'What time is it "here"?' },
          { type: "image", source: { type: "url", url: "https://example.com/a.png" } },
          { type: "image", source: { type: "base64", media_type: "image/png", data: png } },
        ] },
        { role: "assistant", content: [{ type: "tool_use", id: "call_1", name: "get_time", input: { city: "Paris" } }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "call_1", content: "12:34" }] },
      ],
      tools: [{ name: "get_time", description: "The local time in a city", input_schema: schema }],
      tool_choice: { type: "auto" }, temperature: 0, top_p: 0.5, stop_sequences: ["END"],
      metadata: { user_id: "u1" }, top_k: 5,
    };
    for (const [provider, model, expected, path] of [
      ["openai", "mock-1", openai, "/v1/chat/completions"],
      ["anthropic", "claude-x", anthropic, "/v1/messages"],
    ]) {
      const name = unique(provider);
      const client = new ResilientClient({ targets: [target(mock, name, { provider, model })] });
      const result = await client.chat(request);
      equal(typeof result.text, "string", `${provider}: an answer`);
      const last = await (await fetch(`${mock}/control/last?target=${encodeURIComponent(name)}`)).json();
      equal(last.path, path, `${provider}: path`);
      deepEqual(JSON.parse(last.body), expected, `${provider}: the JSON body, field by field`);
      const stream = client.chatStream(request);
      for await (const _ of stream);
      await stream.result;
      const streamed = JSON.parse((await (await fetch(`${mock}/control/last?target=${encodeURIComponent(name)}`)).json()).body);
      const streamFields = provider === "openai" ? { stream: true, stream_options: { include_usage: true } } : { stream: true };
      deepEqual(streamed, { ...expected, ...streamFields }, `${provider}: the streamed body, field by field`);
    }
  },

  async "chat with tools falls back from an OpenAI target to Anthropic and keeps the tool call, JSON and streamed"({ ResilientClient }, mock) {
    const down = unique("down");
    const claude = unique("claude");
    const client = new ResilientClient({
      targets: [target(mock, down), target(mock, claude, { provider: "anthropic", model: "claude-x" })],
      retry: false,
    });
    await setFaults(mock, { target: down, outage: true });
    const tools = [{ name: "get_time", parameters: { type: "object", properties: { city: { type: "string" } } } }];
    const messages = [{ role: "user", content: "What time is it in Paris?" }];
    const result = await client.chat({ messages, tools });
    equal(result.target, claude, "the backup answered");
    equal(result.finishReason, "tool_calls", "finishReason");
    equal(result.toolCalls.length, 1, "one tool call");
    equal(result.toolCalls[0].name, "get_time", "tool name");
    deepEqual(JSON.parse(result.toolCalls[0].arguments), { city: "Paris" }, "arguments");
    check(result.toolCalls[0].id.length > 0, "a tool call id");

    const stream = client.chatStream({ messages, tools });
    const pieces = [];
    for await (const delta of stream) for (const call of delta.toolCalls ?? []) pieces.push(call);
    const streamed = await stream.result;
    check(pieces.length > 1, `the arguments arrived in pieces: ${JSON.stringify(pieces)}`);
    equal(pieces[0].index, 0, "OpenAI's shape: index");
    equal(pieces[0].name, "get_time", "the first piece names the tool");
    equal(pieces[0].id, streamed.toolCalls[0].id, "the first piece carries the id");
    equal(pieces.map((p) => p.argumentsDelta).join(""), streamed.toolCalls[0].arguments, "the pieces make the arguments");
    deepEqual(streamed.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]), [["get_time", { city: "Paris" }]], "assembled");
    equal(streamed.finishReason, "tool_calls", "streamed finishReason");

    // The round trip: the tool's result goes back, through the same fallback, and the answer uses it.
    const answer = await client.chat({
      messages: [...messages, { role: "assistant", content: null, toolCalls: result.toolCalls },
        { role: "tool", toolCallId: result.toolCalls[0].id, content: "12:34 in Paris" }],
      tools,
    });
    check(answer.text.includes("12:34 in Paris"), `the answer used the tool's result: ${answer.text}`);
    equal(answer.finishReason, "stop", "the final answer's finishReason");
    await setFaults(mock, { target: down });
  },

  async "a chain of one target rejects with that target's own error"({ ResilientClient }, mock) {
    const client = new ResilientClient({
      targets: [target(mock, unique("only"), { headers: { "x-mock-fault": "status=429" } })],
      retry: false,
    });
    const error = await rejection(client.chat({ messages: [{ role: "user", content: "hi" }] }));
    equal(error.name, "UpstreamError", `${error.name}: ${error.message}`);
    equal(error.status, 429, "the target's own status");
  },

  async "chat falls back during an outage, the breaker opens, and traffic returns after recovery"({ ResilientClient }, mock) {
    const primary = unique("primary");
    const backup = unique("backup");
    const client = new ResilientClient({
      targets: [target(mock, primary), target(mock, backup)],
      retry: false,
      breaker: { failureThreshold: 2, resetTimeoutMs: 300 },
    });
    const hops = [];
    client.on("fallback", (e) => hops.push(`${e.from}->${e.to}`));
    await setFaults(mock, { target: primary, outage: true });
    const ask = () => client.chat({ messages: [{ role: "user", content: "status?" }] });
    equal((await ask()).target, backup, "first call: fallback");
    equal((await ask()).target, backup, "second call: fallback, breaker opens");
    const primaryBefore = (await mockStats(mock)).byTarget[primary]?.total;
    equal((await ask()).target, backup, "third call: the open breaker skips the primary");
    equal((await mockStats(mock)).byTarget[primary]?.total, primaryBefore, "the primary saw nothing");
    equal(client.stats().breakers.find((b) => b.key === `target:${primary}`)?.state, "open", "primary breaker open");
    await setFaults(mock, { target: primary });
    await new Promise((r) => setTimeout(r, 350));
    equal((await ask()).target, primary, "after recovery the primary answers again");
    equal(hops.length, 3, `fallback events: ${hops.join(" ")}`);
  },

  async "an exhausted quota is not retried and falls back; an auth error stops the chain"({ ResilientClient }, mock) {
    const broke = unique("broke");
    const backup = unique("backup");
    const quota = new ResilientClient({
      targets: [target(mock, broke, { headers: { "x-mock-fault": "error=insufficient_quota" } }), target(mock, backup)],
      retry: { maxRetries: 3, baseDelayMs: 10 },
    });
    equal((await quota.chat({ messages: [{ role: "user", content: "x" }] })).target, backup, "answered by the backup");
    equal((await mockStats(mock)).byTarget[broke].total, 1, "the quota error was not retried");
    const denied = unique("denied");
    const spare = unique("spare");
    const auth = new ResilientClient({
      targets: [target(mock, denied, { headers: { "x-mock-fault": "status=401" } }), target(mock, spare)],
    });
    const error = await rejection(auth.chat({ messages: [{ role: "user", content: "x" }] }));
    equal(error.name, "UpstreamError", "error name");
    equal(error.kind, "auth", "error kind");
    equal(error.status, 401, "status");
    equal((await mockStats(mock)).byTarget[spare], undefined, "no fallback on an auth error");
  },

  async "at most 5 targets are tried per call"({ ResilientClient }, mock) {
    const names = Array.from({ length: 7 }, (_, i) => unique(`chain${i}`));
    const client = new ResilientClient({
      targets: names.map((name) => target(mock, name, { headers: { "x-mock-fault": "status=503" } })),
      retry: false,
    });
    const error = await rejection(client.chat({ messages: [{ role: "user", content: "x" }] }));
    equal(error.name, "AllTargetsFailedError", "error name");
    equal(error.errors.map((e) => e.target).join(), names.slice(0, 5).join(), "the first five, in order");
    const streamed = client.chatStream({ messages: [{ role: "user", content: "x" }] });
    const streamError = await rejection((async () => { for await (const _ of streamed); })());
    equal(streamError.errors.length, 5, "chatStream: five targets tried");
    const byTarget = (await mockStats(mock)).byTarget;
    for (const name of names.slice(0, 5)) equal(byTarget[name]?.total, 2, `${name} asked once per call`);
    for (const name of names.slice(5)) equal(byTarget[name], undefined, `${name} never asked`);
  },

  async "when every target fails the error lists each one"({ ResilientClient }, mock) {
    const a = unique("a");
    const b = unique("b");
    const client = new ResilientClient({ targets: [target(mock, a), target(mock, b)], retry: false });
    await setFaults(mock, { target: a, outage: true });
    await setFaults(mock, { target: b, outage: true });
    const error = await rejection(client.chat({ messages: [{ role: "user", content: "x" }] }));
    equal(error.name, "AllTargetsFailedError", "error name");
    equal(error.errors.length, 2, "one error per target");
    equal(error.errors[1].target, b, "errors name their target");
    await setFaults(mock, { target: a });
    await setFaults(mock, { target: b });
  },

  async "100 concurrent chats against a budget for 10 never overshoot"({ ResilientClient }, mock) {
    const name = unique("budget");
    // Each call holds its worst case: the input estimate (ceil(2/4) + 4 = 5 tokens) plus maxTokens 95.
    const client = new ResilientClient({ targets: [target(mock, name)], budget: { perUserDailyTokens: 1000 } });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 100 }, () => client.chat({ messages: [{ role: "user", content: "hi" }], maxTokens: 95, user: "u1" })),
    );
    const ok = outcomes.filter((o) => o.status === "fulfilled").length;
    const refused = outcomes.filter((o) => o.status === "rejected" && o.reason.name === "BudgetExceededError");
    equal(ok, 10, "calls admitted");
    equal(refused.length, 90, "calls refused");
    equal(refused[0].reason.cap, "perUserDailyTokens", "which cap");
    equal((await mockStats(mock)).byTarget[name].total, 10, "requests the upstream saw");
    equal(client.stats().rejected.budget, 90, "stats().rejected.budget");
    const other = await client.chat({ messages: [{ role: "user", content: "hi" }], maxTokens: 95, user: "u2" });
    equal(other.target, name, "budgets are per user");
  },

  async "chatStream streams deltas and resolves its result"({ ResilientClient }, mock) {
    const name = unique("stream");
    const client = new ResilientClient({ targets: [target(mock, name)] });
    const stream = client.chatStream({ messages: [{ role: "user", content: "stream please" }] });
    let text = "";
    let deltas = 0;
    for await (const delta of stream) {
      text += delta.text;
      deltas++;
    }
    const result = await stream.result;
    const json = await client.chat({ messages: [{ role: "user", content: "stream please" }] });
    equal(text, json.text, "streamed text equals the JSON answer");
    equal(result.text, text, "result.text");
    check(deltas > 5, `deltas ${deltas}`);
    equal(result.target, name, "result.target");
    check(result.usage.outputTokens > 0, "usage from the stream");
  },

  async "chatStream falls back before the first delta, never after"({ ResilientClient }, mock) {
    const down = unique("down");
    const backup = unique("backup");
    const client = new ResilientClient({ targets: [target(mock, down), target(mock, backup)], retry: false });
    await setFaults(mock, { target: down, outage: true });
    const stream = client.chatStream({ messages: [{ role: "user", content: "x" }] });
    let text = "";
    for await (const delta of stream) text += delta.text;
    equal((await stream.result).target, backup, "answered by the backup");
    check(text.startsWith("You said"), text);
    await setFaults(mock, { target: down });

    const cut = unique("cut");
    const spare = unique("spare");
    const cutting = new ResilientClient({
      targets: [target(mock, cut, { headers: { "x-mock-fault": "reset=8" } }), target(mock, spare)],
    });
    const broken = cutting.chatStream({ messages: [{ role: "user", content: "x" }] });
    let partial = "";
    const error = await rejection((async () => {
      for await (const delta of broken) partial += delta.text;
    })());
    equal(error.name, "IncompleteStreamError", "error name");
    equal(error.partialText, partial, "the partial text is attached");
    equal((await mockStats(mock)).byTarget[spare], undefined, "no fallback after data was delivered");
    equal((await rejection(broken.result)).name, "IncompleteStreamError", "result rejects too");
  },

  async "chatStream resumes a cut stream without repeating or altering a word"({ ResilientClient }, mock) {
    const messages = [{ role: "user", content: unique("resume") }];
    const expected = (await new ResilientClient({ targets: [target(mock, unique("plain"))] }).chat({ messages })).text;
    const read = async (stream) => {
      let text = "";
      for await (const delta of stream) text += delta.text;
      return text;
    };
    // The first connection is cut after 6 chunks; the stream resumes on the same target.
    const name = unique("resumed");
    const once = { headers: { "x-mock-fault": `times=1;key=${name};reset=6` } };
    const client = new ResilientClient({ targets: [target(mock, name, once)], retry: fast });
    const retries = [];
    client.on("retry", (e) => retries.push(e));
    const stream = client.chatStream({ messages });
    equal(await read(stream), expected, "every word once, in order");
    const result = await stream.result;
    equal(result.text, expected, "result.text");
    equal(result.attempts, 2, "two attempts");
    equal(retries.map((e) => e.reason).join(), "cut", "a retry event for the cut");
    equal((await mockStats(mock)).byTarget[name].total, 2, "two upstream requests");

    // An answer that comes out differently the second time is not spliced: the cut stands.
    const sampledName = unique("sampled");
    const sampled = { headers: { "x-mock-fault": "sampled;reset=6" } };
    const sampling = new ResilientClient({ targets: [target(mock, sampledName, sampled)], retry: fast });
    const diverging = sampling.chatStream({ messages });
    let partial = "";
    const error = await rejection((async () => {
      for await (const delta of diverging) partial += delta.text;
    })());
    equal(error.name, "IncompleteStreamError", "error name");
    check(error.message.includes("does not start with the text already delivered"), error.message);
    equal(error.partialText, partial, "partialText is what was delivered");
    check(partial.startsWith("Take "), partial);
    equal((await mockStats(mock)).byTarget[sampledName].total, 2, "one resumption, then no more");

    // resumeStreams: false keeps the cut.
    const off = unique("off");
    const noResume = new ResilientClient({
      targets: [target(mock, off, { headers: { "x-mock-fault": `times=1;key=${off};reset=6` } })],
      retry: { ...fast, resumeStreams: false },
    });
    equal((await rejection(read(noResume.chatStream({ messages })))).name, "IncompleteStreamError", "not resumed");

    // So does a request's own `resilience.retry: false`.
    const own = unique("own");
    const perRequest = new ResilientClient({
      targets: [target(mock, own, { headers: { "x-mock-fault": `times=1;key=${own};reset=6` } })],
      retry: fast,
    });
    const noRetry = perRequest.chatStream({ messages, resilience: { retry: false } });
    equal((await rejection(read(noRetry))).name, "IncompleteStreamError", "not resumed per request");
    equal((await mockStats(mock)).byTarget[own].total, 1, "one upstream request");
  },

  // Mid-stream fallback (fallback.midStream): a primary whose streams are cut after 6 chunks, every
  // time, so that resuming on it fails too; the next target that can prefill continues the answer.
  async "mid-stream fallback: a cut the primary cannot resume is continued by an Anthropic backup, every word once"({ ResilientClient }, mock) {
    const messages = [{ role: "user", content: unique("midstream") }];
    const expected = (await new ResilientClient({ targets: [target(mock, unique("plain"))] }).chat({ messages })).text;
    const [primary, backup] = [unique("cut-primary"), unique("claude-backup")];
    const pricing = { inputPerMTok: 1, outputPerMTok: 2 };
    const client = new ResilientClient({
      targets: [
        target(mock, primary, { headers: cutAt(6), pricing }),
        target(mock, backup, { provider: "anthropic", model: "claude-x", pricing: { inputPerMTok: 3, outputPerMTok: 15 } }),
      ],
      retry: { ...fast, maxRetries: 1 },
      fallback: { midStream: true },
    });
    const fallbacks = [];
    client.on("fallback", (e) => fallbacks.push(e));
    const stream = client.chatStream({ messages });
    const { text } = await readStream(stream);
    equal(text, expected, "the deltas make the whole answer, every word once");
    const result = await stream.result;
    equal(result.text, expected, "result.text");
    equal(result.target, backup, "result.target is the last writer");
    equal(result.model, "claude-x", "result.model");
    equal(result.parts.length, 2, "two parts");
    const [first, second] = result.parts;
    deepEqual([first.target, first.model, first.start], [primary, "mock-1", 0], "the first part");
    deepEqual([second.target, second.model, second.start, second.end], [backup, "claude-x", first.end, expected.length], "the second");
    check(first.end > 0 && first.end < expected.length, `the primary wrote a part: ${first.end}`);
    check(first.costUsd > 0 && second.costUsd > 0, `each part is charged: ${JSON.stringify(result.parts)}`);
    check(Math.abs(result.costUsd - first.costUsd - second.costUsd) < 1e-12, "the call costs the sum");
    const byModel = Object.fromEntries(client.stats().costs.byModel.map((line) => [line.model, line.costUsd]));
    check(Math.abs(byModel["mock-1"] - first.costUsd) < 1e-12, `stats per model count the primary: ${JSON.stringify(byModel)}`);
    check(Math.abs(byModel["claude-x"] - second.costUsd) < 1e-12, "and the backup");
    deepEqual(fallbacks.map((e) => [e.from, e.to, e.reason]), [[primary, backup, "INCOMPLETE_STREAM"]], "one fallback event at the move");
    equal((await mockStats(mock)).byTarget[primary].total, 2, "the primary was asked, then resumed once");
    // The backup got the same conversation plus the text delivered, as a prefill without its
    // trailing whitespace (Anthropic refuses it), and no prompt text of ours.
    const sent = JSON.parse((await (await fetch(`${mock}/control/last?target=${backup}`)).json()).body);
    deepEqual(sent.messages, [...messages, { role: "assistant", content: expected.slice(0, first.end).trimEnd() }], "the prefill");

    // A primary that samples (every answer different) is resumed after the cut, but its new answer
    // does not start with the text delivered: the backup continues instead. The mock's backup does
    // not know that start either, so it writes its whole answer after it; what counts is that the
    // caller gets every delta once and result.parts says who wrote which.
    const sampling = new ResilientClient({
      targets: [
        target(mock, unique("sampling"), { headers: { ...cutAt(6), "x-mock-fault": "sampled;reset=6" } }),
        target(mock, unique("claude"), { provider: "anthropic", model: "claude-x" }),
      ],
      retry: { ...fast, maxRetries: 1 },
      fallback: { midStream: true },
    });
    const diverged = sampling.chatStream({ messages });
    const read = await readStream(diverged);
    equal(read.error, undefined, "completed");
    const continued = await diverged.result;
    equal(continued.text, read.text, "result.text is what was handed out");
    equal(continued.parts.length, 2, "two parts");
    check(read.text.startsWith("Take "), read.text);
    equal(read.text.slice(continued.parts[1].start), expected, "the backup's part");
  },

  async "mid-stream fallback is opt-in, skips a target that cannot prefill, and never follows a tool-call delta"({ ResilientClient }, mock) {
    const messages = [{ role: "user", content: unique("midstream-off") }];
    const expected = (await new ResilientClient({ targets: [target(mock, unique("plain"))] }).chat({ messages })).text;
    const cutting = (name) => target(mock, name, { headers: cutAt(6) });
    // Off (the default): the cut stands, as before.
    const [off, offBackup] = [unique("off"), unique("off-backup")];
    const plain = new ResilientClient({ targets: [cutting(off), target(mock, offBackup, { provider: "anthropic" })], retry: false });
    const stopped = await readStream(plain.chatStream({ messages }));
    equal(stopped.error?.name, "IncompleteStreamError", "without midStream the cut stands");
    equal(stopped.error.partialText, stopped.text, "partialText");
    equal((await mockStats(mock)).byTarget[offBackup], undefined, "the backup was never asked");

    // An OpenAI-compatible target without prefill is skipped; one with prefill: true continues.
    const [primary, noPrefill, withPrefill] = [unique("p"), unique("no-prefill"), unique("with-prefill")];
    const client = new ResilientClient({
      targets: [cutting(primary), target(mock, noPrefill), target(mock, withPrefill, { prefill: true })],
      retry: false,
      fallback: { midStream: true },
    });
    const stream = client.chatStream({ messages });
    equal((await readStream(stream)).text, expected, "continued on the target that can prefill");
    deepEqual((await stream.result).parts.map((p) => p.target), [primary, withPrefill], "who wrote what");
    equal((await mockStats(mock)).byTarget[noPrefill], undefined, "the target without prefill was skipped");
    const sent = JSON.parse((await (await fetch(`${mock}/control/last?target=${withPrefill}`)).json()).body);
    equal(sent.messages.at(-1).content, (await stream.result).text.slice(0, (await stream.result).parts[0].end), "sent whole: no trimming for OpenAI");

    // After a tool-call delta: no continuation (a half-written call cannot be continued).
    const [caller, callerBackup] = [unique("caller"), unique("caller-backup")];
    const tools = [{ name: "get_time", description: "The local time in a city", parameters: { type: "object", properties: { city: { type: "string" } } } }];
    const calling = new ResilientClient({
      targets: [target(mock, caller, { headers: cutAt(2) }), target(mock, callerBackup, { provider: "anthropic" })],
      retry: false,
      fallback: { midStream: true },
    });
    const called = await readStream(calling.chatStream({ messages: [{ role: "user", content: "What time is it in Paris?" }], tools }));
    check(called.toolDeltas > 0, "a tool-call delta was delivered");
    equal(called.error?.name, "IncompleteStreamError", "the stream fails as before");
    equal((await mockStats(mock)).byTarget[callerBackup], undefined, "no continuation was asked for");

    // Options are checked, naming the field.
    rejectsOptions(ResilientClient, [
      [{ fallback: { midStream: "yes" } }, "TypeError", "fallback.midStream"],
      [{ targets: [target(mock, "x", { prefill: 1 })] }, "TypeError", "targets[0].prefill"],
    ]);
  },

  async "mid-stream fallback: a continuation cut in turn moves on along the chain, bounded by it"({ ResilientClient }, mock) {
    const messages = [{ role: "user", content: unique("midstream-again") }];
    const expected = (await new ResilientClient({ targets: [target(mock, unique("plain"))] }).chat({ messages })).text;
    const names = [unique("a"), unique("b"), unique("c"), unique("d")];
    const client = new ResilientClient({
      targets: [
        target(mock, names[0], { headers: cutAt(6) }),
        // Anthropic frames: message_start, content_block_start, ping, then a delta each.
        target(mock, names[1], { provider: "anthropic", headers: cutAt(6) }),
        target(mock, names[2], { provider: "anthropic" }),
        target(mock, names[3], { provider: "anthropic" }),
      ],
      retry: false,
      fallback: { midStream: true },
    });
    const hops = [];
    client.on("fallback", (e) => hops.push(`${e.from}->${e.to}`));
    const stream = client.chatStream({ messages });
    equal((await readStream(stream)).text, expected, "three writers, every word once");
    const result = await stream.result;
    deepEqual(result.parts.map((p) => p.target), names.slice(0, 3), "who wrote what");
    equal(result.parts.map((p) => result.text.slice(p.start, p.end)).join(""), expected, "the parts tile the text");
    deepEqual(hops, [`${names[0]}->${names[1]}`, `${names[1]}->${names[2]}`], "a fallback event per move");
    equal((await mockStats(mock)).byTarget[names[3]], undefined, "the last target was not needed");

    // Every target cuts: the stream fails once the chain is used up, with every word delivered once.
    const cuts = Array.from({ length: 3 }, () => unique("cuts"));
    const hopeless = new ResilientClient({
      targets: cuts.map((name, i) => target(mock, name, { provider: i ? "anthropic" : "openai", headers: cutAt(5) })),
      retry: false,
      fallback: { midStream: true },
    });
    const failed = await readStream(hopeless.chatStream({ messages }));
    equal(failed.error?.name, "IncompleteStreamError", "the last cut stands");
    equal(failed.error.partialText, failed.text, "partialText is everything delivered");
    check(expected.startsWith(failed.text), `nothing twice: ${JSON.stringify(failed.text)}`);
    for (const name of cuts) equal((await mockStats(mock)).byTarget[name].total, 1, `${name} asked once`);
  },

  async "mid-stream fallback: a cancel or an abort during the move ends it; limits and budgets hold at the move"({ ResilientClient }, mock) {
    const messages = [{ role: "user", content: unique("midstream-attack") }];
    const expected = (await new ResilientClient({ targets: [target(mock, unique("plain"))] }).chat({ messages })).text;
    const chain = (extra = {}) => [
      target(mock, unique("cut"), { headers: cutAt(6) }),
      target(mock, unique("backup"), { provider: "anthropic", headers: { "x-mock-fault": "delay=200" }, ...extra }),
    ];
    // cancel() as the move starts: iteration ends, result rejects with an AbortError, the
    // continuation's request is not left open.
    const openBefore = (await mockStats(mock)).inFlight;
    const cancelling = new ResilientClient({ targets: chain(), retry: false, fallback: { midStream: true } });
    const cancelled = cancelling.chatStream({ messages });
    cancelling.on("fallback", (e) => e.reason === "INCOMPLETE_STREAM" && cancelled.cancel());
    const read = await readStream(cancelled);
    equal(read.error, undefined, "a cancelled stream just ends");
    check(expected.startsWith(read.text), "what was delivered is the start of the answer");
    equal((await rejection(cancelled.result)).name, "AbortError", "result rejects with an AbortError");
    for (let i = 0; i < 50 && (await mockStats(mock)).inFlight > openBefore; i++) await new Promise((r) => setTimeout(r, 20));
    equal((await mockStats(mock)).inFlight, openBefore, "no request left open");

    // An abort during the move rejects with the signal's reason, iteration and result alike.
    const controller = new AbortController();
    const reason = new Error("stop now");
    const aborting = new ResilientClient({ targets: chain(), retry: false, fallback: { midStream: true } });
    aborting.on("fallback", (e) => e.reason === "INCOMPLETE_STREAM" && setTimeout(() => controller.abort(reason), 50));
    const aborted = aborting.chatStream({ messages, signal: controller.signal });
    equal((await readStream(aborted)).error, reason, "iteration rejects with the reason");
    equal(await rejection(aborted.result), reason, "so does result");

    // A delivered text near limits.maxResponseBytes: the continuation may not take the answer
    // past it; the error carries every word delivered, once.
    const bounded = new ResilientClient({ targets: chain(), retry: false, fallback: { midStream: true }, limits: { maxResponseBytes: 40 } });
    const large = await readStream(bounded.chatStream({ messages }));
    equal(large.error?.code, "RESPONSE_TOO_LARGE", "past the bound");
    equal(large.error.partialText, large.text, "partialText is what was delivered");
    check(new TextEncoder().encode(large.text).length <= 40 && expected.startsWith(large.text), JSON.stringify(large.text));

    // A budget that cannot hold the continuation: the stream fails with BudgetExceededError and
    // the text delivered, the backup never asked, and the hold given back.
    const backup = unique("budget-backup");
    const budgeted = new ResilientClient({
      targets: [target(mock, unique("cut"), { headers: cutAt(6) }), target(mock, backup, { provider: "anthropic" })],
      retry: false,
      fallback: { midStream: true },
      budget: { perRequestTokens: 150 },
    });
    const refused = await readStream(budgeted.chatStream({ messages, maxTokens: 100 }));
    equal(refused.error?.name, "BudgetExceededError", "the budget ends it");
    equal(refused.error.cap, "perRequestTokens", "which cap");
    equal(refused.error.partialText, refused.text, "with the text delivered");
    equal((await mockStats(mock)).byTarget[backup], undefined, "the backup was never asked");
    equal(budgeted.stats().rejected.budget, 1, "counted as a budget rejection");
  },

  async "mid-stream fallback: each fallback event gives the reason of the move it announces"({ ResilientClient }, mock) {
    const messages = [{ role: "user", content: unique("midstream-reasons") }];
    const [cut, failing, last] = [unique("cut"), unique("failing"), unique("last")];
    const client = new ResilientClient({
      targets: [
        target(mock, cut, { headers: cutAt(6) }),
        target(mock, failing, { prefill: true, headers: { "x-mock-fault": "status=500" } }),
        target(mock, last, { provider: "anthropic" }),
      ],
      retry: false,
      fallback: { midStream: true },
    });
    const hops = [];
    client.on("fallback", (e) => hops.push([e.from, e.to, e.reason]));
    const stream = client.chatStream({ messages });
    equal((await readStream(stream)).error, undefined, "continued");
    deepEqual((await stream.result).parts.map((p) => p.target), [cut, last], "who wrote what");
    // The move past the target that answered 500 is for its answer (a status, not a stream), not
    // for the first cut.
    deepEqual(hops, [[cut, failing, "INCOMPLETE_STREAM"], [failing, last, "UPSTREAM_STATUS"]], "the reasons");
  },

  async "mid-stream fallback: cancel() during a slow continuation's start cancels its request at once"({ ResilientClient }, mock) {
    const messages = [{ role: "user", content: unique("midstream-slow-cancel") }];
    const backup = unique("slow-backup");
    const client = new ResilientClient({
      targets: [target(mock, unique("cut"), { headers: cutAt(6) }), target(mock, backup, { provider: "anthropic", headers: { "x-mock-fault": "delay=3000" } })],
      retry: false,
      fallback: { midStream: true },
    });
    const stream = client.chatStream({ messages });
    let cancelledAt;
    client.on("fallback", () => setTimeout(() => { cancelledAt = Date.now(); stream.cancel(); }, 100));
    equal((await readStream(stream)).error, undefined, "a cancelled stream just ends");
    equal((await rejection(stream.result)).name, "AbortError", "result rejects with an AbortError");
    const abandoned = async () => (await mockStats(mock)).byTarget[backup]?.abandoned ?? 0;
    for (let i = 0; i < 50 && (await abandoned()) < 1; i++) await new Promise((r) => setTimeout(r, 20));
    equal(await abandoned(), 1, "the continuation's request was cancelled on the wire");
    check(Date.now() - cancelledAt < 1500, `at once, not when the backup answered (${Date.now() - cancelledAt} ms)`);
  },

  async "a chat answer that stalls after its headers is asked again, then falls back"({ ResilientClient }, mock) {
    const stalls = unique("stalls");
    const backup = unique("backup");
    const client = new ResilientClient({
      targets: [target(mock, stalls, { headers: { "x-mock-fault": "stall" } }), target(mock, backup)],
      timeout: { idleMs: 300 },
      retry: { ...fast, maxRetries: 1 },
    });
    const retries = [];
    client.on("retry", (e) => retries.push(e.reason));
    const open = async () => (await mockStats(mock)).inFlight;
    const openBefore = await open();
    const result = await client.chat({ messages: [{ role: "user", content: "x" }] });
    equal(result.target, backup, "answered by the backup");
    equal((await mockStats(mock)).byTarget[stalls].total, 2, "the stalling target was asked twice");
    equal(retries.join(), "timeout", "one retry, for the timeout");
    for (let i = 0; i < 50 && (await open()) > openBefore; i++) await new Promise((r) => setTimeout(r, 20));
    equal(await open(), openBefore, "the connections given up on were closed");

    const once = unique("stalls-once");
    const recovering = new ResilientClient({
      targets: [target(mock, once, { headers: { "x-mock-fault": `times=1;key=${once};stall` } }), target(mock, backup)],
      timeout: { idleMs: 300 },
    });
    const recovered = await recovering.chat({ messages: [{ role: "user", content: "x" }] });
    equal(recovered.target, once, "answered by the same target the second time");
    equal(recovered.attempts, 2, "two attempts");

    // With the request's own `resilience.retry: false` the chain moves on at once.
    const direct = unique("stalls-direct");
    const moving = new ResilientClient({
      targets: [target(mock, direct, { headers: { "x-mock-fault": "stall" } }), target(mock, backup)],
      timeout: { idleMs: 300 },
    });
    const movedOn = await moving.chat({ messages: [{ role: "user", content: "x" }], resilience: { retry: false } });
    equal(movedOn.target, backup, "answered by the backup");
    equal((await mockStats(mock)).byTarget[direct].total, 1, "the stalling target was asked once");
  },

  async "aborting a chat while its body is read is an AbortError, with no fallback"({ ResilientClient }, mock) {
    const stalls = unique("stalls");
    const backup = unique("backup");
    const client = new ResilientClient({ targets: [target(mock, stalls, { headers: { "x-mock-fault": "stall" } }), target(mock, backup)] });
    const hops = [];
    client.on("fallback", (e) => hops.push(e));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const error = await rejection(client.chat({ messages: [{ role: "user", content: "x" }], signal: controller.signal }));
    equal(error.name, "AbortError", "error name");
    equal(hops.length, 0, "no fallback after an abort");
    equal((await mockStats(mock)).byTarget[backup], undefined, "the backup was not asked");
  },

  async "chat options are validated"({ ResilientClient }, mock) {
    const cases = [
      [{ targets: [{ provider: "gemini", baseUrl: mock, model: "m" }] }, "RangeError", "targets[0].provider"],
      [{ targets: [{ provider: "openai", baseUrl: mock }] }, "TypeError", "targets[0].model"],
      [{ targets: [{ provider: "openai", baseUrl: "nope", model: "m" }] }, "RangeError", "targets[0].baseUrl"],
      [{ targets: "openai" }, "TypeError", "targets"],
      [{ budget: { perUserDailyTokens: -1 } }, "RangeError", "budget.perUserDailyTokens"],
    ];
    rejectsOptions(ResilientClient, cases);
    const client = new ResilientClient({ targets: [target(mock, unique("v"))] });
    equal((await rejection(client.chat({ messages: [] }))).name, "TypeError", "empty messages");
    equal((await rejection(client.chat({ messages: [{ role: "robot", content: "x" }] }))).name, "RangeError", "bad role");
    equal((await rejection(new ResilientClient().chat({ messages: [{ role: "user", content: "x" }] }))).name, "TypeError", "no targets");
  },

  async "a chat request whose messages are a revoked Proxy or throw when read is a TypeError naming the field"({ ResilientClient }, mock) {
    const client = new ResilientClient({ targets: [target(mock, unique("hostile"))], retry: false });
    const { proxy: revoked, revoke } = Proxy.revocable([], {});
    revoke();
    const throwing = [{ role: "user", content: "a" }, { role: "user", content: "b" }];
    Object.defineProperty(throwing, 1, { get() { throw new Error("planted"); } });
    const throwingContent = [{ role: "user", get content() { throw new Error("planted"); } }];
    for (const [messages, field] of [[revoked, "request.messages"], [throwing, "request.messages[1]"], [throwingContent, "request.messages[0].content"]]) {
      const error = await rejection(client.chat({ messages }));
      equal(error.name, "TypeError", `error for ${field}`);
      check(error.message.startsWith(`${field} could not be read`), `names ${field}: ${error.message}`);
      // Read with the rest of the request, once: chatStream() throws at once, as for its messages.
      let thrown;
      try {
        client.chatStream({ messages: [{ role: "user", content: "x" }], resilience: revoked });
      } catch (error) {
        thrown = error;
      }
      equal(thrown?.name, "TypeError", "a revoked resilience in chatStream");
      check(thrown.message.startsWith("resilience could not be read"), `names resilience: ${thrown.message}`);
      equal((await rejection(client.chat({ messages: [{ role: "user", content: "x" }], resilience: revoked }))).name, "TypeError", "and in chat()");
    }
    equal((await client.chat({ messages: [{ role: "user", content: "still fine" }] })).target.startsWith("hostile"), true, "the client still answers");
  },

  async "a thousand calls with a revoked Proxy as resilience leave the instance healthy"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: false });
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const hostile = [
      { resilience: proxy },
      { signal: new Proxy(new AbortController().signal, { get() { throw new Error("planted"); } }) },
      { headers: proxy },
    ];
    for (let i = 0; i < 1000; i++) {
      try {
        await client.fetch(`${mock}/v1/chat/completions`, hostile[i % hostile.length]);
      } catch (error) {
        check(!(error instanceof WebAssembly.RuntimeError), `call ${i}: ${error}`);
      }
    }
    const input = new Proxy(new Request(`${mock}/health`), {
      get(request, key) {
        if (key === "method") throw new Error("planted");
        const value = Reflect.get(request, key);
        return typeof value === "function" ? value.bind(request) : value;
      },
    });
    const error = await rejection(client.fetch(input));
    check(error.message.startsWith("input.method could not be read"), error.message);
    equal((await new ResilientClient().fetch(`${mock}/health`)).status, 200, "a fresh client");
    equal((await client.fetch(`${mock}/health`)).status, 200, "the same client");
  },

  // Before, a fetch failure seen before the abort itself (the order is the runtime's: Chromium showed
  // it on a hedged chat aborted mid-race) rejected with a NETWORK TypeError instead of the reason.
  async "an abort whose fetch failure is seen before the abort itself still rejects with the signal's reason"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: false, targets: [target(mock, unique("abort-order"))] });
    const original = globalThis.fetch;
    let controller;
    // The fetch fails, then, in the same task, the caller aborts.
    globalThis.fetch = () =>
      new Promise((_, reject) =>
        setTimeout(() => {
          reject(new TypeError("fetch failed"));
          controller.abort(new Error("gave up"));
        }, 20),
      );
    const outcomes = [];
    try {
      for (const call of [
        (signal) => client.fetch(`${mock}/health`, { signal }),
        (signal) => client.chat({ messages: [{ role: "user", content: "hi" }], signal }),
      ]) {
        controller = new AbortController();
        const error = await rejection(call(controller.signal));
        outcomes.push(error === controller.signal.reason ? "reason" : `${error.name} ${error.code}`);
      }
    } finally {
      globalThis.fetch = original;
    }
    deepEqual(outcomes, ["reason", "reason"], "fetch() and chat() reject with the signal's reason");
  },

  async "a global fetch replaced by one that throws at once is a network error, not a crash"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: false });
    const original = globalThis.fetch;
    globalThis.fetch = () => {
      throw new Error("planted");
    };
    let error;
    try {
      error = await rejection(client.fetch(`${mock}/health`));
    } finally {
      globalThis.fetch = original;
    }
    equal(error.name, "TypeError", "error");
    check(error.message.includes("planted"), error.message);
    equal((await client.fetch(`${mock}/health`)).status, 200, "the client still answers");
  },

  async "a global fetch that resolves with a Response whose fields throw is a network error, not a crash"({ ResilientClient }, mock) {
    const original = globalThis.fetch;
    const planted = (field) => async (...args) => {
      const response = await original(...args);
      return new Proxy(response, {
        get(target, key) {
          if (key === field) throw new Error(`planted ${field}`);
          const value = Reflect.get(target, key, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    };
    const outcomes = [];
    try {
      for (const field of ["status", "ok", "headers", "body"]) {
        for (const options of [{ retry: false }, { retry: false, cache: true }]) {
          globalThis.fetch = planted(field);
          const call = new ResilientClient(options).fetch(`${mock}/health?${unique(field)}`);
          const settled = await Promise.race([
            call.then((r) => `answered ${r.status}`, (e) => `${e.name}: ${e.message}`),
            new Promise((resolve) => setTimeout(() => resolve("still pending after 3 s"), 3000)),
          ]);
          outcomes.push([field, settled]);
        }
      }
    } finally {
      globalThis.fetch = original;
    }
    for (const [field, settled] of outcomes) check(/^TypeError: .*planted/.test(settled), `${field}: ${settled}`);
    equal((await new ResilientClient().fetch(`${mock}/health`)).status, 200, "a fresh client");
  },

  async "a sparse messages array with a huge length is refused before anything is allocated"({ ResilientClient }, mock) {
    const client = new ResilientClient({ targets: [target(mock, unique("sparse"))] });
    const before = client.stats().memory.wasmBytes;
    for (const length of [1e8, 2e8, 2 ** 32 - 1]) {
      const messages = [];
      messages.length = length;
      const error = await rejection(client.chat({ messages }));
      equal(error.name, "RangeError", `length ${length}`);
      check(error.message.includes("request.messages must be an array of at most 10000 items"), error.message);
    }
    const tooMuch = await rejection(client.chat({ messages: [{ role: "user", content: "x".repeat(2 ** 23 + 1) }] }));
    check(tooMuch.message.startsWith("request.messages[0].content must be within 8388608 characters"), tooMuch.message);
    const huge = await rejection(client.chat({ messages: [{ role: "user", content: "x" }], user: "u".repeat(2 ** 24) }));
    check(huge.message.includes("request.user must be a string of at most 65536 characters"), huge.message);
    equal(client.stats().memory.wasmBytes, before, "wasm memory");
  },

  async "options set on Object.prototype are not read"({ ResilientClient }, mock) {
    const name = unique("proto");
    const polluted = { maxRetries: 7, resilience: { retry: false }, role: "system", scope: "client" };
    Object.assign(Object.prototype, polluted);
    try {
      const client = new ResilientClient({ retry: { baseDelayMs: 1, maxDelayMs: 1 }, targets: [target(mock, name)] });
      let attempts = 0;
      client.on("request", () => attempts++);
      const response = await client.fetch(`${mock}/v1/chat/completions`, chatInit("p", `status=503;key=${name}`));
      equal(response.status, 503, "status");
      equal(attempts, 3, "attempts (maxRetries 2, the default; resilience.retry not inherited)");
      // An inherited value is no unknown key either, and a message's role is its own.
      const error = await rejection(client.chat({ messages: [{ content: "no role" }] }));
      check(error.message.includes("request.messages[0].role"), error.message);
    } finally {
      for (const key of Object.keys(polluted)) delete Object.prototype[key];
    }
  },

  async "a listener may call the client from inside every event, and a throwing one breaks nothing"({ ResilientClient }, mock) {
    const types = ["request", "response", "retry", "breaker", "cache", "rateLimited", "fallback", "budget", "error"];
    const name = unique("reenter");
    const client = new ResilientClient({
      cache: true,
      retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 1 },
      breaker: { failureThreshold: 1, resetTimeoutMs: 60000 },
      rateLimit: { requestsPerMinute: 60000, burst: 1, maxWaitMs: 5000 },
      targets: [target(mock, `${name}-a`), target(mock, `${name}-b`)],
      budget: { perUserDailyTokens: 50 },
    });
    const seen = new Set();
    const calls = [];
    for (const type of types) {
      client.on(type, () => {
        // The first event of each type calls every method (the calls' own events call nothing).
        if (seen.has(type)) throw new Error("a listener that throws");
        seen.add(type);
        client.stats();
        client.metrics();
        client.on(type, () => {})();
        const settled = (call) => calls.push(call.then((value) => value, (error) => error));
        settled(client.clearCache());
        settled(client.fetch(`${mock}/health?${type}`).then((r) => r.status));
        settled(client.chat({ messages: [{ role: "user", content: type }], user: "other", maxTokens: 1 }).then((r) => r.target));
        throw new Error("a listener that throws");
      });
    }
    const deterministic = chatInit("same", undefined, { body: chatBody("same", { temperature: 0 }) });
    await client.fetch(`${mock}/v1/chat/completions`, deterministic);
    equal((await client.fetch(`${mock}/v1/chat/completions`, deterministic)).status, 200, "cached or not");
    equal((await client.fetch(`${mock}/v1/chat/completions`, chatInit("r", "status=503"))).status, 503, "retried, then breaker");
    await rejection(client.fetch(`${mock}/v1/chat/completions`));
    await setFaults(mock, { target: `${name}-a`, outage: true });
    try {
      equal((await client.chat({ messages: [{ role: "user", content: "fall back" }], maxTokens: 5 })).target, `${name}-b`, "fell back");
    } finally {
      await setFaults(mock, { target: `${name}-a` });
    }
    // 15 prompt tokens and 20 generated, after 8: past 80% of 50 (a budget event).
    equal((await client.chat({ messages: [{ role: "user", content: "spend ".repeat(10) }], maxTokens: 20 })).target, `${name}-b`, "budget");
    const results = await Promise.all(calls);
    check(results.every((r) => !(r instanceof WebAssembly.RuntimeError)), "no trap");
    check(results.includes(200) && results.includes(`${name}-b`), `the re-entrant calls answered: ${results}`);
    for (const type of types) check(seen.has(type), `a ${type} event was seen (${[...seen]})`);
    check(calls.length >= types.length * 3, `re-entrant calls were made (${calls.length})`);
  },

  async "a listener that fetches on every request event does not nest calls until the stack overflows"({ ResilientClient }) {
    const client = new ResilientClient({ retry: false, breaker: false });
    let n = 0;
    let depth = 0;
    let deepest = 0;
    let failures = 0;
    const done = new Promise((resolve) => {
      client.on("request", () => {
        deepest = Math.max(deepest, ++depth);
        if (++n < 300) client.fetch(`http://127.0.0.1:9/${n}`).catch(() => failures++);
        else resolve();
        depth--;
      });
    });
    await rejection(client.fetch("http://127.0.0.1:9/first"));
    await done;
    equal(deepest, 1, "listeners nested");
    equal(new ResilientClient().stats().requests, 0, "a fresh client");
  },

  async "SseParser and ResilientClient used after free() throw a FREED TypeError"({ ResilientClient, SseParser }) {
    const parser = new SseParser();
    parser.free();
    parser.free();
    const codeOf = (work) => {
      try {
        work();
      } catch (error) {
        return `${error.name} ${error.code}`;
      }
      return "no error";
    };
    equal(codeOf(() => parser.feed(new Uint8Array([100]))), "TypeError FREED", "feed");
    equal(codeOf(() => parser.end()), "TypeError FREED", "end");
    equal(codeOf(() => parser.lastEventId), "TypeError FREED", "lastEventId");
    const client = new ResilientClient();
    client.free();
    client.free();
    equal(codeOf(() => client.stats()), "TypeError FREED", "stats");
    equal(codeOf(() => client.on("request", () => {})), "TypeError FREED", "on");
    equal(codeOf(() => client.events("http://127.0.0.1:9/")), "TypeError FREED", "events");
    for (const call of [() => client.fetch("http://127.0.0.1:9/"), () => client.fetcher("http://127.0.0.1:9/"), () => client.chat({}), () => client.clearCache()]) {
      const error = await rejection(call());
      equal(`${error.name} ${error.code}`, "TypeError FREED", "a promise method rejects");
    }
  },

  async "a chat answer past limits.maxResponseBytes fails its target with RESPONSE_TOO_LARGE, and the chain moves on"({ ResilientClient }, mock) {
    const big = unique("big");
    const spare = unique("spare");
    const huge = target(mock, big, { headers: { "x-mock-fault": "huge=1024" } });
    const limits = { maxResponseBytes: 256 * 1024 };
    const alone = new ResilientClient({ targets: [huge], limits });
    // A chain of one target rejects with that target's own error.
    const error = await rejection(alone.chat({ messages: [{ role: "user", content: "x" }] }));
    equal(error.name, "UpstreamError", "error name");
    equal(error.code, "RESPONSE_TOO_LARGE", "error code");
    equal(error.limit, 256 * 1024, "error.limit");
    equal(error.option, "limits.maxResponseBytes", "error.option");
    check(error.message.includes("262144 bytes") && error.message.includes("limits.maxResponseBytes"), error.message);
    equal((await mockStats(mock)).byTarget[big].total, 1, "an answer too large is not asked for again");

    const chain = new ResilientClient({ targets: [huge, target(mock, spare)], limits });
    equal((await chain.chat({ messages: [{ role: "user", content: "x" }] })).target, spare, "the next target answered");

    // The request's own limit raises the client's.
    const raised = await alone.chat({
      messages: [{ role: "user", content: "x" }],
      resilience: { limits: { maxResponseBytes: 2 << 20 } },
    });
    equal(raised.text.length, 1024 * 1024, "the whole answer within the raised limit");
  },

  async "a stream line past limits.maxEventBytes fails with RESPONSE_TOO_LARGE without taking wasm memory"({ ResilientClient }, mock) {
    const client = new ResilientClient({ limits: { maxEventBytes: 64 * 1024 } });
    const before = client.stats().memory.wasmBytes;
    // 16 MiB on one unterminated line, after one ordinary chunk.
    const stream = client.events(`${mock}/v1/chat/completions`, streamInit("x", "huge=16384"));
    const data = [];
    const error = await rejection((async () => {
      for await (const event of stream) data.push(event.data);
    })());
    equal(error.code, "RESPONSE_TOO_LARGE", `error code (${error.message})`);
    equal(error.name, "UpstreamError", "error name");
    equal(error.option, "limits.maxEventBytes", "error.option");
    check(error.message.includes("65536 bytes") && error.message.includes("limits.maxEventBytes"), error.message);
    equal(data.length, 1, "the event before the long line was delivered");
    const grown = client.stats().memory.wasmBytes - before;
    check(grown <= 1 << 20, `wasm memory grew by ${grown} bytes for a 16 MiB line`);

    // Past the bound before the first delta: nothing was delivered, so a chat stream moves on.
    const big = unique("big");
    const spare = unique("spare");
    const chat = new ResilientClient({
      targets: [target(mock, big, { headers: { "x-mock-fault": "huge=1024;huge-after=0" } }), target(mock, spare)],
      limits: { maxEventBytes: 64 * 1024 },
    });
    const fellBack = chat.chatStream({ messages: [{ role: "user", content: "x" }] });
    for await (const delta of fellBack) check(typeof delta.text === "string", "delta");
    equal((await fellBack.result).target, spare, "answered by the next target");

    // After a delta, the stream fails (with the text so far) and result rejects the same way.
    const late = new ResilientClient({
      targets: [target(mock, big, { headers: { "x-mock-fault": "huge=1024;huge-after=3" } }), target(mock, spare)],
      limits: { maxEventBytes: 64 * 1024 },
    });
    const cut = late.chatStream({ messages: [{ role: "user", content: "x" }] });
    let text = "";
    const streamError = await rejection((async () => {
      for await (const delta of cut) text += delta.text;
    })());
    equal(streamError.code, "RESPONSE_TOO_LARGE", `stream error (${streamError.message})`);
    equal(streamError.partialText, text, "partialText");
    check(text.startsWith("w0 "), `deltas before: ${text}`);
    equal((await rejection(cut.result)).code, "RESPONSE_TOO_LARGE", "result rejects too");

    // The generated text a stream keeps is bounded by limits.maxResponseBytes.
    const short = new ResilientClient({ targets: [target(mock, unique("long"))], limits: { maxResponseBytes: 40 } });
    const long = short.chatStream({ messages: [{ role: "user", content: "x" }] });
    let got = "";
    const tooLong = await rejection((async () => {
      for await (const delta of long) got += delta.text;
    })());
    equal(tooLong.code, "RESPONSE_TOO_LARGE", `text bound (${tooLong.message})`);
    equal(tooLong.option, "limits.maxResponseBytes", "error.option");
    equal(tooLong.partialText, got, "partialText is what was delivered");
    check(got.length > 0 && got.length <= 40, `delivered ${got.length} bytes`);
  },

  async "the copies the client reads (to cache, for usage) stop at limits.maxResponseBytes; the caller's body does not"({ ResilientClient }, mock) {
    const client = new ResilientClient({ cache: true, limits: { maxResponseBytes: 64 * 1024 } });
    const stored = [];
    client.on("cache", (event) => event.result === "store" && stored.push(event.url));
    const init = (fault) => ({ ...chatInit("cache me", fault), resilience: { cache: "force" } });
    const url = `${mock}/t/${unique("cached")}/v1/chat/completions`;
    // The caller's own body is not bounded: the caller reads it.
    equal((await (await client.fetch(url, init("huge=256"))).json()).choices[0].message.content.length, 256 * 1024, "the caller's body");
    await new Promise((r) => setTimeout(r, 100));
    equal(stored.length, 0, "a body past the limit is not stored");
    equal((await client.fetch(url, init("huge=256"))).headers.get("x-cache"), "MISS", "asked again");
    await (await client.fetch(url, init("huge=8"))).text();
    await settle(() => stored.length === 1);

    // A JSON answer past the limit is not read for its usage: the tokens-per-minute estimate stands.
    const limited = new ResilientClient({ rateLimit: { tokensPerMinute: 1000, maxWaitMs: 0 }, limits: { maxResponseBytes: 100 } });
    const body = chatBody("hi", { padding: "x".repeat(3000) }); // estimated ~750 tokens; ~600 bytes answered
    const send = () => limited.fetch(`${mock}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
    check((await (await send()).json()).usage.total_tokens < 100, "the caller's body is whole");
    await new Promise((r) => setTimeout(r, 50));
    equal((await rejection(send())).name, "RateLimitError", "the estimate stands");
  },

  async "limits are validated, naming the option"({ ResilientClient, SseParser }, mock) {
    rejectsOptions(ResilientClient, [
      [{ limits: { maxEventBytes: 0 } }, "RangeError", "limits.maxEventBytes"],
      [{ limits: { maxResponseBytes: 1.5 } }, "RangeError", "limits.maxResponseBytes"],
      [{ limits: { maxResponseBytes: 2 ** 31 } }, "RangeError", "limits.maxResponseBytes"],
      [{ limits: { maxBytes: 1 } }, "TypeError", "limits.maxBytes"],
      [{ limits: 5 }, "TypeError", "limits"],
    ]);
    const client = new ResilientClient();
    const error = await rejection(client.fetch(`${mock}/health`, { resilience: { limits: { maxEventBytes: "1" } } }));
    equal(error.name, "TypeError", "error name");
    check(error.message.includes("resilience.limits.maxEventBytes"), error.message);
    let thrown;
    try {
      new SseParser({ maxEventBytes: -1 });
    } catch (e) {
      thrown = e;
    }
    check(thrown?.name === "RangeError" && thrown.message.includes("maxEventBytes"), `SseParser option: ${thrown}`);
  },

  async "SseParser with maxEventBytes throws RESPONSE_TOO_LARGE on a longer line, until the stream ends"({ SseParser, ResilientClient }) {
    const parser = new SseParser({ maxEventBytes: 1024 });
    const encode = (text) => new TextEncoder().encode(text);
    equal(parser.feed(encode("data: ok\n\n")).length, 1, "an ordinary event");
    const line = new Uint8Array(4 << 20).fill(120); // 4 MiB of "x", in one chunk
    const attempt = (chunk) => {
      try {
        parser.feed(chunk);
      } catch (error) {
        return error;
      }
    };
    const wasm = new ResilientClient(); // the same wasm instance: its memory
    const before = wasm.stats().memory.wasmBytes;
    const error = attempt(line);
    const grown = wasm.stats().memory.wasmBytes - before;
    check(grown <= 256 * 1024, `wasm memory grew by ${grown} bytes: the chunk was copied in whole`);
    equal(error?.code, "RESPONSE_TOO_LARGE", "error code");
    check(error.message.includes("1024 bytes") && error.message.includes("maxEventBytes"), error.message);
    equal(attempt(encode("\n\ndata: lost\n\n"))?.code, "RESPONSE_TOO_LARGE", "the stream stays failed");
    parser.end();
    equal(JSON.stringify(parser.feed(encode("data: next\n\n"))), JSON.stringify([{ event: "message", data: "next", id: "" }]), "the next stream parses");
    // A long ID over many small events: every event carries it.
    const id = "i".repeat(1000);
    const events = new SseParser().feed(encode(`id: ${id}\n\n` + "data\n\n".repeat(3) + "id: 2\ndata\n\ndata\n\n"));
    equal(events.map((e) => (e.id === id ? "long" : e.id)).join(), "long,long,long,2,2", "ids");
  },

  async "SseParser splits events across chunks"({ SseParser }) {
    const parser = new SseParser();
    const bytes = new TextEncoder().encode("\uFEFFdata: a\r\n\r\nid: 7\nevent: x\ndata: b\n\n");
    const events = [];
    for (const byte of bytes) events.push(...parser.feed(Uint8Array.of(byte)));
    events.push(...parser.end());
    equal(JSON.stringify(events), JSON.stringify([
      { event: "message", data: "a", id: "" },
      { event: "x", data: "b", id: "7" },
    ]), "events");
    equal(parser.lastEventId, "7", "lastEventId");
  },

  async "a memory-cache entry is visible as soon as the caller has read the whole body"({ ResilientClient }, mock) {
    const url = `${mock}/v1/chat/completions`;
    const ask = (client, body) => client.fetch(url, { method: "POST", body });
    // The next call right after the body: no pause for the background write.
    const client = new ResilientClient({ cache: true, retry: false });
    // A long answer (the mock echoes the prompt) comes in many chunks: the copy stored is read
    // beside the caller's, chunk by chunk.
    const body = chatBody(`${unique("visible")} ${"word ".repeat(50_000)}`, { temperature: 0 });
    const before = await upstreamCount(mock);
    const first = await ask(client, body);
    equal(first.headers.get("x-cache"), "MISS", "first x-cache");
    const answer = await first.json();
    const second = await ask(client, body);
    equal(second.headers.get("x-cache"), "HIT", "the call after the whole body");
    equal(JSON.stringify(await second.json()), JSON.stringify(answer), "same answer");
    equal(client.stats().cache.entries, 1, "stats().cache.entries");
    // An identical call made before the body is read joins the write under way (dedupe on: workerd
    // leaves it off unless asked, as here, within one request).
    const joiner = new ResilientClient({ cache: true, retry: false, dedupe: true });
    const gapBody = chatBody(unique("gap"), { temperature: 0 });
    const unread = await ask(joiner, gapBody);
    const joined = await ask(joiner, gapBody);
    equal(joined.headers.get("x-cache"), "HIT", "the call before the body was read");
    equal(await joined.text(), await unread.text(), "same body");
    equal(await upstreamCount(mock), before + 2, "one upstream call per prompt");
  },

  async "chat writes prompt-cache marks as Anthropic cache_control, field by field, and drops them for OpenAI"({ ResilientClient }, mock) {
    const schema = { type: "object", properties: { q: { type: "string" } } };
    const doc = "All about caching. ".repeat(200);
    const request = {
      messages: [
        { role: "system", content: [{ type: "text", text: doc, cache: true }, { type: "text", text: "Answer briefly." }] },
        { role: "user", content: "What is in it?", cache: true },
        { role: "assistant", content: "A document." },
        { role: "user", content: [{ type: "text", text: "More?" }, { type: "image", url: "https://example.com/a.png", cache: true }] },
      ],
      tools: [{ name: "lookup", description: "Look a word up", parameters: schema, cache: true }],
      maxTokens: 10,
    };
    const mark = { cache_control: { type: "ephemeral" } };
    const anthropic = {
      model: "claude-x",
      max_tokens: 10,
      system: [{ type: "text", text: doc, ...mark }, { type: "text", text: "Answer briefly." }],
      messages: [
        { role: "user", content: [{ type: "text", text: "What is in it?", ...mark }] },
        { role: "assistant", content: "A document." },
        { role: "user", content: [{ type: "text", text: "More?" }, { type: "image", source: { type: "url", url: "https://example.com/a.png" }, ...mark }] },
      ],
      tools: [{ name: "lookup", description: "Look a word up", input_schema: schema, ...mark }],
    };
    const openai = {
      model: "mock-1",
      messages: [
        { role: "system", content: [{ type: "text", text: doc }, { type: "text", text: "Answer briefly." }] },
        { role: "user", content: "What is in it?" },
        { role: "assistant", content: "A document." },
        { role: "user", content: [{ type: "text", text: "More?" }, { type: "image_url", image_url: { url: "https://example.com/a.png" } }] },
      ],
      tools: [{ type: "function", function: { name: "lookup", description: "Look a word up", parameters: schema } }],
      max_tokens: 10,
    };
    for (const [provider, model, expected] of [["anthropic", "claude-x", anthropic], ["openai", "mock-1", openai]]) {
      const name = unique(provider);
      const client = new ResilientClient({ targets: [target(mock, name, { provider, model })] });
      await client.chat(request);
      const last = await (await fetch(`${mock}/control/last?target=${encodeURIComponent(name)}`)).json();
      deepEqual(JSON.parse(last.body), expected, `${provider}: the JSON body, field by field`);
    }
    // More than Anthropic's 4 breakpoints: refused when the request is read, naming the fifth.
    const client = new ResilientClient({ targets: [target(mock, unique("marks"), { provider: "anthropic", model: "claude-x" })] });
    const before = await upstreamCount(mock);
    const five = { messages: [{ role: "user", content: [1, 2, 3, 4, 5].map((i) => ({ type: "text", text: `p${i}`, cache: true })) }] };
    const error = await rejection(client.chat(five));
    equal(error.name, "RangeError", "five marks");
    check(error.message.includes("request.messages[0].content[4].cache") && error.message.includes("mark 5") && error.message.includes("at most 4"), error.message);
    const tooMany = { ...request, tools: [...request.tools, { name: "more", parameters: schema, cache: true }] };
    const toolError = await rejection(client.chat(tooMany));
    check(toolError.name === "RangeError" && toolError.message.includes("request.tools[1].cache"), toolError.message);
    equal(await upstreamCount(mock), before, "nothing sent");
  },

  async "prompt caching: cached usage and cost on a second call, both dialects, and the savings in stats"({ ResilientClient }, mock) {
    // Anthropic, Sonnet's prices ($3 in, $15 out; reads and writes default to $0.30 and $3.75).
    const claude = unique("claude");
    const client = new ResilientClient({
      targets: [target(mock, claude, { provider: "anthropic", model: "claude-x", pricing: { inputPerMTok: 3, outputPerMTok: 15 } })],
    });
    const messages = [
      { role: "system", content: "x".repeat(4000), cache: true },
      { role: "user", content: "What is in it?" },
    ];
    // The mock: prompt ceil(4014 / 4) = 1004 tokens, the marked system prompt floor(4000 / 4) = 1000.
    const first = await client.chat({ messages, maxTokens: 10, user: "amy" });
    deepEqual(first.usage, { inputTokens: 1004, outputTokens: 10, cachedInputTokens: 0, cacheWriteTokens: 1000 }, "first usage");
    // 4 × $3 + 1000 × $3.75 + 10 × $15 per Mtok = 3912 µ$.
    equal(first.costUsd, 0.003912, "first cost");
    const stream = client.chatStream({ messages, maxTokens: 10, user: "amy" });
    for await (const _ of stream);
    const second = await stream.result;
    deepEqual(second.usage, { inputTokens: 1004, outputTokens: 10, cachedInputTokens: 1000, cacheWriteTokens: 0 }, "second usage, streamed");
    // 4 × $3 + 1000 × $0.30 + 10 × $15 = 462 µ$.
    equal(second.costUsd, 0.000462, "second cost");
    // Saved: 1000 × ($3 − $0.30) on the read, less 1000 × ($3.75 − $3) on the write = 1950 µ$.
    const amy = client.stats().costs.byUser.find((row) => row.user === "amy");
    deepEqual(amy, {
      user: "amy", inputTokens: 2008, outputTokens: 20, cachedInputTokens: 1000, cacheWriteTokens: 1000,
      costUsd: 0.004374, cacheSavedUsd: 0.00195,
    }, "stats per user");
    const byModel = client.stats().costs.byModel.find((row) => row.model === "claude-x");
    equal(byModel.cacheSavedUsd, 0.00195, "stats per model");
    equal(client.stats().usage.cachedInputTokens, 1000, "stats().usage");
    const metrics = client.metrics();
    check(metrics.includes('sturdy_llm_cache_saved_microdollars{model="claude-x"} 1950\n'), metrics);
    check(metrics.includes('sturdy_llm_tokens_total{model="claude-x",direction="cache_write"} 1000\n'), metrics);

    // OpenAI: gpt-4o's prices ($2.50 in, $1.25 cached, $10 out); caching is automatic.
    const gpt = unique("gpt");
    const openai = new ResilientClient({
      targets: [target(mock, gpt, { pricing: { inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 1.25 } })],
    });
    const ask = (question) => openai.chat({ messages: [{ role: "system", content: "y".repeat(5000) }, { role: "user", content: question }], maxTokens: 10 });
    const cold = await ask("hi");
    deepEqual(cold.usage, { inputTokens: 1251, outputTokens: 10, cachedInputTokens: 0, cacheWriteTokens: 0 }, "OpenAI first usage");
    // 1251 × $2.50 + 10 × $10 = 3227.5 µ$, rounded up.
    equal(cold.costUsd, 0.003228, "OpenAI first cost");
    const warm = await ask("hello");
    // The 1250-token system prefix was seen: 1152 tokens cached (steps of 128), part of the 1252 input tokens.
    deepEqual(warm.usage, { inputTokens: 1252, outputTokens: 10, cachedInputTokens: 1152, cacheWriteTokens: 0 }, "OpenAI second usage");
    // 100 × $2.50 + 1152 × $1.25 + 10 × $10 = 1790 µ$.
    equal(warm.costUsd, 0.00179, "OpenAI second cost");
    equal(openai.stats().usage.cacheSavedUsd, 0.00144, "OpenAI saved 1152 × $1.25");
    const priced = (pricing) => ({ targets: [target(mock, "p", { pricing: { inputPerMTok: 1, outputPerMTok: 1, ...pricing } })] });
    rejectsOptions(ResilientClient, [
      [priced({ cachedInputPerMTok: -1 }), "RangeError", "targets[0].pricing.cachedInputPerMTok"],
      [priced({ cacheWritePerMTok: "3.75" }), "TypeError", "targets[0].pricing.cacheWritePerMTok"],
      [priced({ cachedPerMTok: 1 }), "TypeError", "cachedPerMTok"],
    ]);
  },

  async "embed: of 100 texts with 90 cached, one upstream call carries exactly the 10 misses, in order, and the answer matches an uncached run"({ ResilientClient }, mock) {
    const name = unique("emb");
    const embedTarget = target(mock, name, { embeddingModel: "emb-1", pricing: { inputPerMTok: 1, outputPerMTok: 1, embeddingPerMTok: 20 } });
    const texts = Array.from({ length: 100 }, (_, i) => `chunk ${i}: ${name} paragraph number ${i * 7}`);
    const missing = new Set([3, 11, 25, 26, 40, 57, 63, 78, 90, 99]);
    const client = new ResilientClient({ cache: true, retry: false, targets: [embedTarget] });
    const warm = await client.embed({ input: texts.filter((_, i) => !missing.has(i)) });
    equal(warm.cached, 0, "the warm-up's cached count");
    const before = await upstreamCount(mock);
    const result = await client.embed({ input: texts });
    equal(await upstreamCount(mock), before + 1, "upstream calls for the batch of 100");
    const sent = JSON.parse((await (await fetch(`${mock}/control/last?target=${name}`)).json()).body);
    deepEqual(sent.input, texts.filter((_, i) => missing.has(i)), "the texts sent upstream");
    equal(sent.encoding_format, "base64", "encoding_format asked for");
    equal(sent.model, "emb-1", "the target's embeddingModel");
    equal(result.cached, 90, "cached");
    equal(result.target, name, "target");
    equal(result.model, "emb-1", "model");
    const tokens = texts.filter((_, i) => missing.has(i)).reduce((n, t) => n + Math.ceil(t.length / 4), 0);
    equal(result.usage.inputTokens, tokens, "input tokens of the misses");
    equal(result.costUsd, Math.ceil(tokens * 20) / 1e6, "cost at embeddingPerMTok");
    equal(result.embeddings.length, 100, "one vector per input");
    check(result.embeddings.every((v) => v instanceof Float32Array && v.length === 64), "Float32Array vectors of 64");
    const uncached = await new ResilientClient({ retry: false, targets: [embedTarget] }).embed({ input: texts });
    equal(uncached.cached, 0, "no cache, nothing cached");
    result.embeddings.forEach((v, i) => deepEqual(Array.from(v), Array.from(uncached.embeddings[i]), `vector ${i}`));
    const again = await client.embed({ input: texts });
    equal(again.cached, 100, "everything cached the third time");
    equal(again.usage.inputTokens, 0, "no tokens billed");
    equal(again.costUsd, 0, "costs nothing");
    equal(await upstreamCount(mock), before + 2, "no upstream call for a fully cached batch");
  },

  async "embed: identical texts in one call are embedded once; a string input is a list of one"({ ResilientClient }, mock) {
    const name = unique("emb-dup");
    const client = new ResilientClient({ retry: false, targets: [target(mock, name, { embeddingModel: "e" })] });
    const result = await client.embed({ input: ["alpha", "beta", "alpha", "alpha", "beta"] });
    const sent = JSON.parse((await (await fetch(`${mock}/control/last?target=${name}`)).json()).body);
    deepEqual(sent.input, ["alpha", "beta"], "unique texts sent");
    equal(result.embeddings.length, 5, "one vector per input");
    deepEqual(Array.from(result.embeddings[3]), Array.from(result.embeddings[0]), "same text, same vector");
    deepEqual(Array.from(result.embeddings[4]), Array.from(result.embeddings[1]), "same text, same vector");
    const one = await client.embed({ input: "alpha", dimensions: 8 });
    equal(one.embeddings.length, 1, "a string input");
    equal(one.embeddings[0].length, 8, "dimensions honoured");
    equal(JSON.parse((await (await fetch(`${mock}/control/last?target=${name}`)).json()).body).dimensions, 8, "dimensions sent");
  },

  async "embed: a text cached under another credential, model or dimensions is a miss"({ ResilientClient }, mock) {
    const name = unique("emb-key");
    // One store shared by two clients, as a KV namespace would be.
    const entries = new Map();
    const store = { get: (k) => entries.get(k), put: (k, v) => void entries.set(k, v), delete: (k) => void entries.delete(k) };
    const make = (apiKey) =>
      new ResilientClient({ cache: { store }, retry: false, targets: [target(mock, name, { apiKey, embeddingModel: "e" })] });
    const [first, sameKey, otherKey] = [make("sk-one"), make("sk-one"), make("sk-two")];
    const input = ["shared text", "another shared text"];
    equal((await first.embed({ input })).cached, 0, "first call");
    check(entries.size === 2, `two entries stored, got ${entries.size}`);
    const stored = [...entries.values()][0];
    check(stored.body instanceof Uint8Array && stored.body.length === 64 * 4, "stored as float32 bytes");
    equal((await sameKey.embed({ input })).cached, 2, "same credential, another client");
    equal((await otherKey.embed({ input })).cached, 0, "another credential");
    equal((await first.embed({ input, model: "e-2" })).cached, 0, "another model");
    equal((await first.embed({ input, dimensions: 32 })).cached, 0, "other dimensions");
    equal((await first.embed({ input: [...input, "new"] })).cached, 2, "the first two again");
  },

  async "embed: skips Anthropic and targets without an embedding model, falls back from a failing target"({ ResilientClient }, mock) {
    const [down, up] = [unique("emb-down"), unique("emb-up")];
    const fallbacks = [];
    const client = new ResilientClient({
      retry: false,
      targets: [
        { name: "claude", provider: "anthropic", baseUrl: `${mock}/t/claude`, apiKey: "k", model: "c", embeddingModel: "x" },
        target(mock, unique("emb-none")),
        target(mock, down, { embeddingModel: "e", headers: { "x-mock-fault": "status=503" } }),
        target(mock, up, { embeddingModel: "e" }),
      ],
    });
    client.on("fallback", (e) => fallbacks.push(e));
    const result = await client.embed({ input: ["fall", "back"] });
    equal(result.target, up, "answering target");
    deepEqual(fallbacks.map((e) => e.reason), ["NO_EMBEDDINGS", "NO_EMBEDDINGS", "SERVER"], "fallback reasons");
    const stats = await mockStats(mock);
    equal(stats.byTarget.claude, undefined, "nothing sent to Anthropic");
    equal(stats.byTarget[down].byStatus["503"], 1, "the failing target was asked once");
    // A model named by the request makes a target without embeddingModel usable.
    const named = await new ResilientClient({ targets: [target(mock, up)] }).embed({ input: "x", model: "m-2" });
    equal(named.model, "m-2", "the request's model");
    const claude = { provider: "anthropic", baseUrl: `${mock}/t/claude`, model: "c" };
    const failing = target(mock, down, { embeddingModel: "e", headers: { "x-mock-fault": "status=503" } });
    const all = await rejection(new ResilientClient({ retry: false, targets: [claude, failing] }).embed({ input: "x" }));
    equal(all.name, "AllTargetsFailedError", "every target failed");
    deepEqual(all.errors.map((e) => e.code), ["NO_EMBEDDINGS", "SERVER"], "each target's reason");
  },

  async "embed: numbers when the server ignores base64, answers placed by index, a malformed answer fails the target"({ ResilientClient }, mock) {
    const [odd, broken, plain] = [unique("emb-odd"), unique("emb-broken"), unique("emb-plain")];
    const input = ["first text", "second text", "third text"];
    const reference = await new ResilientClient({ targets: [target(mock, plain, { embeddingModel: "e" })] }).embed({ input });
    const headers = { "x-mock-encoding": "float", "x-mock-order": "reverse" };
    const floats = await new ResilientClient({ targets: [target(mock, odd, { embeddingModel: "e", headers })] }).embed({ input });
    floats.embeddings.forEach((v, i) => deepEqual(Array.from(v), Array.from(reference.embeddings[i]), `vector ${i}`));
    const client = new ResilientClient({
      retry: false,
      targets: [target(mock, broken, { embeddingModel: "e", headers: { "x-mock-fault": "malformed" } }), target(mock, plain, { embeddingModel: "e" })],
    });
    const moved = await client.embed({ input });
    equal(moved.target, plain, "the chain moved on");
    const error = await rejection(new ResilientClient({ retry: false, targets: [target(mock, broken, { embeddingModel: "e", headers: { "x-mock-fault": "malformed" } })] }).embed({ input }));
    equal(error.code, "UNREADABLE_ANSWER", "the only target's error");
  },

  async "embed: an answer past limits.maxResponseBytes fails its target with RESPONSE_TOO_LARGE, and the chain moves on"({ ResilientClient }, mock) {
    const [big, spare] = [unique("emb-big"), unique("emb-spare")];
    const huge = target(mock, big, { embeddingModel: "e", headers: { "x-mock-fault": "huge=1024" } });
    const limits = { maxResponseBytes: 256 * 1024 };
    const error = await rejection(new ResilientClient({ targets: [huge], limits }).embed({ input: "x" }));
    equal(error.code, "RESPONSE_TOO_LARGE", "error code");
    equal((await mockStats(mock)).byTarget[big].total, 1, "an answer too large is not asked for again");
    const chain = new ResilientClient({ targets: [huge, target(mock, spare, { embeddingModel: "e" })], limits });
    equal((await chain.embed({ input: "x" })).target, spare, "the next target answered");
  },

  async "embed: requests are checked, budgets hold the misses"({ ResilientClient }, mock) {
    const client = new ResilientClient({
      cache: true,
      budget: { perUserDailyTokens: 40 },
      targets: [target(mock, unique("emb-budget"), { embeddingModel: "e" })],
    });
    for (const [request, name, field] of [
      [{ input: 5 }, "TypeError", "request.input"],
      [{ input: ["ok", 7] }, "TypeError", "request.input[1]"],
      // OpenAI refuses a whole batch for one empty input.
      [{ input: ["ok", ""] }, "RangeError", "request.input[1]"],
      [{ input: "x", dimensions: 0 }, "RangeError", "request.dimensions"],
      [{ input: "x", colour: "red" }, "TypeError", "colour"],
    ]) {
      const error = await rejection(client.embed(request));
      equal(error.name, name, `error for ${JSON.stringify(request)}`);
      check(error.message.includes(field), `message names ${field}: ${error.message}`);
    }
    const text = "x".repeat(100); // 25 tokens
    equal((await client.embed({ input: text, user: "u" })).usage.inputTokens, 25, "tokens billed");
    equal((await client.embed({ input: text, user: "u" })).cached, 1, "cached: no tokens needed");
    const over = await rejection(client.embed({ input: "y".repeat(100), user: "u" }));
    equal(over.name, "BudgetExceededError", "past the daily cap");
    equal((await client.embed({ input: "y".repeat(100), user: "v" })).cached, 0, "another user's budget");
    const controller = new AbortController();
    controller.abort(new Error("stop embedding"));
    const before = await upstreamCount(mock);
    for (const aborting of [client, new ResilientClient({ targets: [target(mock, unique("emb-abort"), { embeddingModel: "e" })] })]) {
      const aborted = await rejection(aborting.embed({ input: "z", signal: controller.signal }));
      equal(aborted.message, "stop embedding", "rejects with the signal's reason");
    }
    equal(await upstreamCount(mock), before, "nothing sent once aborted");
  },

  async "cache.semantic options are checked, naming the field"({ ResilientClient }, mock) {
    const openai = { name: "o", provider: "openai", baseUrl: `${mock}/v1`, model: "mock-1", embeddingModel: "emb-1" };
    const { embeddingModel, ...noEmbeddingModel } = openai;
    const anthropic = { name: "a", provider: "anthropic", baseUrl: mock, model: "mock-1" };
    const semantic = (options, targets = [openai, anthropic]) => ({ targets, cache: { semantic: options } });
    rejectsOptions(ResilientClient, [
      [semantic({}), "TypeError", "cache.semantic.threshold"],
      [semantic({ threshold: 1.5 }), "RangeError", "cache.semantic.threshold"],
      [semantic({ threshold: -0.1 }), "RangeError", "cache.semantic.threshold"],
      [semantic({ threshold: "0.9" }), "TypeError", "cache.semantic.threshold"],
      [semantic({ threshold: 0.9, as: "always" }), "RangeError", "cache.semantic.as"],
      [semantic({ threshold: 0.9, maxEntries: 0 }), "RangeError", "cache.semantic.maxEntries"],
      [semantic({ threshold: 0.9, maxEntries: 1.5 }), "RangeError", "cache.semantic.maxEntries"],
      [semantic({ threshold: 0.9, maxBytes: -1 }), "RangeError", "cache.semantic.maxBytes"],
      [semantic({ threshold: 0.9, embeddingTarget: "nope" }), "RangeError", "cache.semantic.embeddingTarget"],
      [semantic({ threshold: 0.9, embeddingTarget: "a" }), "RangeError", "cache.semantic.embeddingTarget"],
      [semantic({ threshold: 0.9 }, [anthropic]), "TypeError", "cache.semantic"],
      [semantic({ threshold: 0.9 }, []), "TypeError", "cache.semantic"],
      [semantic({ threshold: 0.9 }, [noEmbeddingModel, anthropic]), "TypeError", "cache.semantic"],
      [semantic({ threshold: 0.9, embeddingTarget: "o" }, [noEmbeddingModel]), "RangeError", "cache.semantic.embeddingTarget"],
      [semantic({ threshold: 0.9, typo: 1 }), "TypeError", "cache.semantic.typo"],
      [semantic(true), "TypeError", "cache.semantic"],
    ]);
    new ResilientClient(semantic({ threshold: 0.9, embeddingTarget: "o", as: "first", maxEntries: 10, maxBytes: 1 << 20 })).free();
    new ResilientClient(semantic({ threshold: 0 })).free();
  },
  async "semantic cache: with every target down, a paraphrase is answered from the cache and marked; an unrelated question, another system prompt or another user still fails"({ ResilientClient }, mock) {
    const [a, b] = [unique("sem-a"), unique("sem-b")];
    const client = new ResilientClient({
      retry: false,
      dedupe: true, // on in workerd too (off there by default): a lookup waits for the store under way
      // Off so that each failure below is the targets' own 503 (embeddings share a target's breaker).
      breaker: false,
      targets: [target(mock, a, { embeddingModel: "emb-1" }), target(mock, b)],
      cache: { semantic: { threshold: 0.8 } },
    });
    const events = [];
    client.on("cache", (event) => events.push(event));
    const ask = (content, { system = "Be brief.", user } = {}) =>
      client.chat({ messages: [{ role: "system", content: system }, { role: "user", content }], user });
    const question = "What is the capital city of France?";
    const first = await ask(question);
    equal(first.cached, false, "first answer cached");
    const asBob = await ask(question, { user: "bob" });
    // The chat endpoints go down, embeddings still work (the mock's bag-of-words vectors).
    const down = { outage: true, paths: ["/v1/chat/completions"] };
    await setFaults(mock, { target: a, ...down });
    await setFaults(mock, { target: b, ...down });
    try {
      const paraphrase = await ask("Which city is the capital of France?");
      equal(paraphrase.cached, "semantic", "paraphrase cached");
      check(Math.abs(paraphrase.similarity - 0.866) < 0.001, `similarity ${paraphrase.similarity}`);
      equal(paraphrase.text, first.text, "the cached answer");
      equal(paraphrase.target, a, "target");
      equal(paraphrase.costUsd, 0, "costUsd");
      equal(paraphrase.attempts, 0, "attempts");
      deepEqual(events.filter((e) => e.result === "semantic").map((e) => e.url), [`${mock}/t/${a}/v1/chat/completions`], "cache events");
      // Below the threshold (0.67: another country), unrelated, or anything else different: the chain's error.
      for (const [content, options, what] of [
        ["What is the capital city of Germany?", {}, "a close but different question"],
        ["How do bees make honey?", {}, "an unrelated question"],
        [question, { system: "Be verbose." }, "another system prompt"],
        [question, { user: "alice" }, "another user"],
      ]) {
        const error = await rejection(ask(content, options));
        equal(error.name, "AllTargetsFailedError", what);
        equal(error.errors.map((e) => e.status).join(), "503,503", `${what}: each target's error`);
      }
      equal((await ask("Which city is the capital of France?", { user: "bob" })).text, asBob.text, "bob's own entry");
      await client.clearCache();
      equal((await rejection(ask(question))).name, "AllTargetsFailedError", "after clearCache()");
    } finally {
      await setFaults(mock, { target: a });
      await setFaults(mock, { target: b });
    }
  },

  async "semantic cache: as \"first\" answers a paraphrase without asking any target; a chatStream() answer is stored too"({ ResilientClient }, mock) {
    const name = unique("sem-first");
    const client = new ResilientClient({
      retry: false,
      dedupe: true,
      targets: [target(mock, name, { embeddingModel: "emb-1" })],
      cache: { semantic: { threshold: 0.8, as: "first" } },
    });
    const ask = (content) => client.chat({ messages: [{ role: "user", content }] });
    const chatCalls = async () => (await mockStats(mock)).byTarget[name]?.byPath["/v1/chat/completions"] ?? 0;
    const first = await ask("What is the capital city of France?");
    equal(first.cached, false, "first");
    equal(await chatCalls(), 1, "chat calls after the first question");
    const again = await ask("Which city is the capital of France?");
    equal(again.cached, "semantic", "paraphrase");
    equal(again.text, first.text, "the cached answer");
    equal(await chatCalls(), 1, "no chat call for the paraphrase");
    equal((await ask("How do bees make honey?")).cached, false, "an unrelated question");
    equal(await chatCalls(), 2, "chat calls after an unrelated question");
    const stream = client.chatStream({ messages: [{ role: "user", content: "Why is the sky blue at noon?" }] });
    let streamed = "";
    for await (const delta of stream) streamed += delta.text;
    equal((await stream.result).text, streamed, "stream result");
    const fromStream = await ask("Why is the sky so blue at noon?");
    equal(fromStream.cached, "semantic", "a paraphrase of the streamed question");
    equal(fromStream.text, streamed, "the streamed answer");
    equal(await chatCalls(), 3, "chat calls in all");
  },

  async "semantic cache: an embedding that fails never fails the call"({ ResilientClient }, mock) {
    const name = unique("sem-noembed");
    const client = new ResilientClient({
      retry: false,
      targets: [target(mock, name, { embeddingModel: "emb-1" })],
      cache: { semantic: { threshold: 0.8, as: "first" } },
    });
    const errors = [];
    client.on("error", (event) => errors.push(event.error));
    await setFaults(mock, { target: name, outage: true, paths: ["/v1/embeddings"] });
    try {
      const answer = await client.chat({ messages: [{ role: "user", content: "What is the capital city of France?" }] });
      equal(answer.cached, false, "answered by the target");
      check(answer.text.includes("capital city of France"), answer.text);
      const semantic = errors.filter((e) => e.message.includes("cache.semantic"));
      equal(semantic.length, 1, "one error event for the embedding");
      equal(semantic[0].name, "CacheStoreError", "error name");
    } finally {
      await setFaults(mock, { target: name });
    }
  },

  async "a chat target learns the provider's rate limit from its headers and moves on instead of earning 429s"({ ResilientClient }, mock) {
    for (const provider of ["openai", "anthropic"]) {
      const count429 = async (name) => (await mockStats(mock)).byTarget[name]?.byStatus?.["429"] ?? 0;
      const run = async (learnLimits) => {
        const [limited, backup] = [unique(`limited-${provider}`), unique("backup")];
        // Two requests a minute on the primary: the third would wait ~60 s, past maxWaitMs.
        await setFaults(mock, { target: limited, limit: "2/1m" });
        const client = new ResilientClient({
          targets: [target(mock, limited, { provider, model: "mock-1", learnLimits }), target(mock, backup)],
          retry: false,
        });
        const answered = [];
        for (let i = 0; i < 4; i++) answered.push((await client.chat({ messages: [{ role: "user", content: "x" }] })).target);
        await setFaults(mock, { target: limited });
        return { client, limited, backup, answered, too_many: await count429(limited) };
      };
      const learning = await run(undefined);
      equal(learning.answered.join(), [learning.limited, learning.limited, learning.backup, learning.backup].join(), `${provider}: who answered`);
      equal(learning.too_many, 0, `${provider}: 429s received while learning`);
      const [learned] = learning.client.stats().learnedLimits;
      equal(learned?.key, `target:${learning.limited}`, `${provider}: stats().learnedLimits key`);
      equal(learned.remainingRequests, 0, `${provider}: remainingRequests`);
      equal(learned.remainingTokens, null, `${provider}: remainingTokens (not reported)`);
      check(learned.resetInMs > 5000 && learned.resetInMs <= 60_000, `${provider}: resetInMs ${learned.resetInMs}`);
      equal(learning.client.stats().rejected.rateLimit, 2, `${provider}: refused on the learned limit`);
      check(learning.client.metrics().includes(`sturdy_llm_learned_remaining_requests{key="target:${learning.limited}"} 0`), "metrics()");
      const blind = await run(false);
      equal(blind.too_many, 2, `${provider}: 429s received with learnLimits: false`);
      equal(blind.client.stats().learnedLimits.length, 0, `${provider}: nothing learned when opted out`);
    }
    rejectsOptions(ResilientClient, [
      [{ targets: [{ ...target(mock, "t"), learnLimits: "no" }] }, "TypeError", "targets[0].learnLimits"],
      [{ fallback: { maxWaitMs: -1 } }, "RangeError", "fallback.maxWaitMs"],
      [{ fallback: { midstream: true } }, "TypeError", "midstream"],
    ]);
  },

  async "a full outage of every target is waited out for the first one back"({ ResilientClient }, mock) {
    const [a, b] = [unique("out-a"), unique("out-b")];
    const options = (maxWaitMs) => ({
      targets: [target(mock, a), target(mock, b)],
      retry: false,
      breaker: { failureThreshold: 1, resetTimeoutMs: 400 },
      fallback: { maxWaitMs },
    });
    const ask = (client, signal) => client.chat({ messages: [{ role: "user", content: "x" }], signal });
    const down = (outage) => Promise.all([a, b].map((name) => setFaults(mock, { target: name, outage })));
    await down(true);
    // Without waiting: the 503s opened both breakers, and the call fails at once with the first one back.
    let started = Date.now();
    const error = await rejection(ask(new ResilientClient(options(0))));
    equal(error.name, "AllTargetsFailedError", "maxWaitMs 0");
    check(error.retryAfterMs > 0 && error.retryAfterMs <= 400, `retryAfterMs ${error.retryAfterMs}`);
    check(Date.now() - started < 300, "failed at once");
    // With waiting: the call sleeps until target a's probe, which the recovered upstream answers.
    started = Date.now();
    const recovery = new Promise((resolve) => setTimeout(() => resolve(down(false)), 150));
    const answer = await ask(new ResilientClient(options(2000)));
    await recovery;
    equal(answer.target, a, "the first target back answered");
    check(Date.now() - started >= 300, `waited ${Date.now() - started} ms`);
    // The caller's signal cuts the wait.
    await down(true);
    const controller = new AbortController();
    const cut = rejection(ask(new ResilientClient(options(5000)), controller.signal));
    setTimeout(() => controller.abort(new Error("enough")), 100);
    equal((await cut).message, "enough", "aborted with the signal's reason");
    await down(false);
  },

  // Before, `stream: false` in chatStream() (or `true` in chat()) reached the body and the answer could not be
  // read; `model` ran another (unpriced, unbudgeted) model under the target's name.
  async "chat: providerOptions may not set model, messages, stream or stream_options, named in the error"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: false, targets: [target(mock, unique("reserved"))] });
    const messages = [{ role: "user", content: "hi" }];
    for (const [dialect, key, value] of [
      ["openai", "stream", true],
      ["openai", "stream_options", { include_usage: false }],
      ["anthropic", "stream", false],
      ["openai", "model", "another-model"],
      ["anthropic", "messages", []],
    ]) {
      const providerOptions = { [dialect]: { reasoning_effort: "low", [key]: value } };
      for (const call of [() => client.chat({ messages, providerOptions }), async () => client.chatStream({ messages, providerOptions }).result]) {
        const error = await rejection(call());
        equal(error.name, "TypeError", `${dialect}.${key}`);
        check(error.message.includes(`request.providerOptions.${dialect}.${key}`), error.message);
      }
    }
    const answer = await client.chat({ messages, providerOptions: { openai: { reasoning_effort: "low" } } });
    check(answer.text.length > 0, "other options are sent");
  },

  // Before, a cached client read such a signal through a getter that did not catch: the throw escaped the wasm
  // as an uncaught exception (the Node process ended) and the call never settled.
  async "a signal that throws when read rejects chat() and embed() of a cached client with a TypeError, and the client lives"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: false, cache: {}, targets: [target(mock, unique("proxy-signal"), { embeddingModel: "emb-1" })] });
    const hostile = () => new Proxy(new AbortController().signal, { get() { throw new Error("a getter on the signal"); } });
    const messages = [{ role: "user", content: "hi" }];
    for (const [what, call] of [
      ["chat", () => client.chat({ messages, signal: hostile() })],
      ["embed", () => client.embed({ input: ["a", "b"], signal: hostile() })],
    ]) {
      const error = await rejection(call());
      equal(error.name, "TypeError", what);
      check(error.message.includes("signal"), `${what}: ${error.message}`);
    }
    check((await client.chat({ messages })).text.length > 0, "chat after");
    equal((await client.embed({ input: ["a", "b"] })).embeddings.length, 2, "embed after");
  },

  // Before, an empty part cost nothing against the bound: one shared array of 10,000 empty parts in each of
  // 400 messages took 300 MiB of wasm memory for good (and 10,000 such messages more than wasm32 can hold).
  async "chat: each message and content part counts against the request's character bound, so their number is bounded"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: false, targets: [target(mock, unique("parts"))] });
    const before = client.stats().memory.wasmBytes;
    const content = Array(10_000).fill({ type: "text", text: "" });
    const error = await rejection(client.chat({ messages: Array(10_000).fill({ role: "user", content }) }));
    equal(error.name, "RangeError", error.message);
    check(/request\.messages\[\d+\]\.content\[\d+\] is past 8388608 characters/.test(error.message), error.message);
    const grown = client.stats().memory.wasmBytes - before;
    check(grown <= 64 * 2 ** 20, `wasm memory grew by ${grown} bytes`);
    const calls = Array(128).fill({ id: "", name: "", arguments: "" });
    const history = Array(5000).fill({ role: "assistant", content: null, toolCalls: calls });
    const tooMany = await rejection(client.chat({ messages: [...history, { role: "user", content: "hi" }] }));
    equal(tooMany.name, "RangeError", tooMany.message);
    check(/toolCalls\[\d+\] is past/.test(tooMany.message), tooMany.message);
    check((await client.chat({ messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }] })).text.length > 0, "a request within the bound");
  },

  // Before, a toJSON giving back undefined read as "must be a string, got undefined".
  async "chat: a JSON value whose toJSON gives back nothing is a TypeError saying JSON.stringify cannot write it"({ ResilientClient }, mock) {
    const client = new ResilientClient({ retry: false, targets: [target(mock, unique("tojson"))] });
    const messages = [{ role: "user", content: "hi" }];
    for (const [request, path] of [
      [{ messages, tools: [{ name: "f", parameters: { toJSON: () => undefined } }] }, "request.tools[0].parameters"],
      [{ messages, providerOptions: { openai: { toJSON: () => () => 1 } } }, "request.providerOptions.openai"],
    ]) {
      const error = await rejection(client.chat(request));
      equal(error.name, "TypeError", path);
      check(error.message.startsWith(`${path} must be an object JSON.stringify can write`), error.message);
    }
  },

  // Before, "bypass" (go to the upstream, never share) still answered from the semantic cache.
  async "semantic cache: a call with resilience.cache \"bypass\" is neither answered from it nor stored in it"({ ResilientClient }, mock) {
    const name = unique("sem-bypass");
    const client = new ResilientClient({
      retry: false,
      targets: [target(mock, name, { embeddingModel: "emb-1" })],
      cache: { semantic: { threshold: 0.8, as: "first" } },
    });
    const ask = (content, resilience) => client.chat({ messages: [{ role: "user", content }], resilience });
    const chatCalls = async () => (await mockStats(mock)).byTarget[name]?.byPath["/v1/chat/completions"] ?? 0;
    equal((await ask("What is the capital city of France?")).cached, false, "first");
    equal((await ask("Which city is the capital of France?")).cached, "semantic", "a paraphrase");
    equal((await ask("Which city is the capital of France?", { cache: "bypass" })).cached, false, "bypass");
    equal(await chatCalls(), 2, "the bypassing call went to the target");
    equal((await ask("How do bees make honey?", { cache: "bypass" })).cached, false, "bypass, another question");
    equal((await ask("How do bees make honey?")).cached, false, "its answer was not stored");
    equal(await chatCalls(), 4, "chat calls in all");
  },
  async "hedge: a late primary loses to the next target, cancelled on the wire, no failure, its budget hold back"({ ResilientClient }, mock) {
    const name = unique("hedge");
    const [a, b] = [`${name}-a`, `${name}-b`];
    await setFaults(mock, { target: a, latencyMs: 3000 });
    const client = new ResilientClient({
      retry: false,
      breaker: { failureThreshold: 1 },
      targets: [target(mock, a), target(mock, b)],
      hedge: { afterMs: 100 },
      // Room for two holds of a call at once (~110 tokens each: maxTokens 100), not three: a hold
      // left behind would leave no room for the second call's hedge.
      budget: { perUserDailyTokens: 280 },
    });
    const events = [];
    client.on("hedge", (e) => events.push(e));
    client.on("fallback", (e) => events.push(e));
    const ask = (content) => client.chat({ messages: [{ role: "user", content }], maxTokens: 100 });
    const started = Date.now();
    const result = await ask("who answers first?");
    check(Date.now() - started < 2500, `answered in ${Date.now() - started} ms, not after the primary's 3 s`);
    equal(result.target, b, "the hedge's answer");
    deepEqual(events, [{ type: "hedge", from: a, to: b, afterMs: 100, winner: b }], "events");
    // The primary's request was aborted: the mock saw its connection closed before the answer.
    for (let i = 0; i < 100 && !(await mockStats(mock)).byTarget[a]?.abandoned; i++) await new Promise((r) => setTimeout(r, 20));
    equal((await mockStats(mock)).byTarget[a]?.abandoned, 1, "the primary's request cancelled on the wire");
    const stats = client.stats();
    deepEqual(stats.hedges, { started: 1, won: 1 }, "stats().hedges");
    equal(stats.failures, 0, "the cancelled primary is no failure");
    const breaker = stats.breakers.find((x) => x.key === `target:${a}`);
    equal(breaker?.state ?? "closed", "closed", "the primary's breaker");
    equal(breaker?.failures ?? 0, 0, "the primary's breaker counted nothing");
    // The hedge's budget hold was given back: the next call can hold two again, and hedges.
    equal((await ask("and again?")).target, b, "second call");
    deepEqual(client.stats().hedges, { started: 2, won: 2 }, "stats().hedges after two calls");
    check(/\nsturdy_llm_hedges_started_total 2\n[^]*\nsturdy_llm_hedges_won_total 2\n/.test(client.metrics()), "metrics()");
    await setFaults(mock, { target: a });
  },

  async "hedge: chatStream races to the first delta; hedge: false per request; none when the primary is in time or alone"({ ResilientClient }, mock) {
    const name = unique("hedge-stream");
    const [a, b] = [`${name}-a`, `${name}-b`];
    await setFaults(mock, { target: a, latencyMs: 1500 });
    const client = new ResilientClient({ retry: false, targets: [target(mock, a), target(mock, b)], hedge: { afterMs: 50 } });
    const events = [];
    client.on("hedge", (e) => events.push(e));
    const stream = client.chatStream({ messages: [{ role: "user", content: "stream it" }] });
    let text = "";
    for await (const delta of stream) text += delta.text;
    const result = await stream.result;
    equal(result.target, b, "streamed by the hedge");
    equal(result.text, text, "the text streamed");
    deepEqual(events, [{ type: "hedge", from: a, to: b, afterMs: 50, winner: b }], "hedge event");
    // hedge: false on the request: the slow primary answers, nothing else is asked.
    const before = (await mockStats(mock)).byTarget[b]?.total ?? 0;
    const plain = await client.chat({ messages: [{ role: "user", content: "no hedge" }], hedge: false });
    equal(plain.target, a, "hedge: false waits for the primary");
    equal((await mockStats(mock)).byTarget[b]?.total ?? 0, before, "the backup was not asked");
    // A primary in time is not hedged.
    await setFaults(mock, { target: a });
    equal((await client.chat({ messages: [{ role: "user", content: "in time" }], hedge: { afterMs: 1000 } })).target, a, "in time");
    equal(events.length, 1, "no more hedges");
    // A chain of one target has nothing to hedge with.
    await setFaults(mock, { target: a, latencyMs: 300 });
    const alone = new ResilientClient({ retry: false, targets: [target(mock, a)], hedge: { afterMs: 0 } });
    equal((await alone.chat({ messages: [{ role: "user", content: "alone" }] })).target, a, "alone");
    deepEqual(alone.stats().hedges, { started: 0, won: 0 }, "no hedge on a chain of one");
    // Nor a call whose budget cannot hold a second worst case (~105 tokens each) while both run.
    const targets = [target(mock, a), target(mock, b)];
    const tight = new ResilientClient({ retry: false, targets, hedge: { afterMs: 0 }, budget: { perUserDailyTokens: 200 } });
    equal((await tight.chat({ messages: [{ role: "user", content: "tight" }], maxTokens: 100 })).target, a, "no room to hedge");
    deepEqual(tight.stats().hedges, { started: 0, won: 0 }, "no hedge past the budget");
    equal(tight.stats().rejected.budget, 0, "a hedge the budget refused is no rejection");
    await setFaults(mock, { target: a });
  },

  // Before, a hedge that won cancelled its losing call even when identical calls had joined it: they
  // were released and sent it again from scratch (twice the wait, twice the upstream calls).
  async "hedge: a losing call that identical calls joined goes on for them, in chat() and chatStream(), hedged or not"({ ResilientClient }, mock) {
    const name = unique("hedge-dedupe");
    const [a, b] = [`${name}-a`, `${name}-b`];
    await setFaults(mock, { target: a, slowRate: 1, slowMs: 1000 });
    const client = new ResilientClient({ retry: false, dedupe: true, targets: [target(mock, a), target(mock, b)], hedge: { afterMs: 50 } });
    const asked = async () => {
      const byTarget = (await mockStats(mock)).byTarget;
      return [byTarget[a]?.total ?? 0, byTarget[b]?.total ?? 0];
    };
    const streamed = async (stream) => {
      let text = "";
      for await (const delta of stream) text += delta.text;
      const result = await stream.result;
      equal(result.text, text, "the text streamed is the result's");
      return result;
    };
    // temperature 0: deterministic, so identical calls in flight share one upstream call.
    const request = (content, extra) => ({ messages: [{ role: "user", content }], temperature: 0, ...extra });
    const ways = {
      "chat()": (content, extra) => client.chat(request(content, extra)),
      "chatStream()": (content, extra) => streamed(client.chatStream(request(content, extra))),
    };
    for (const [way, ask] of Object.entries(ways)) {
      // Both hedge: both are answered by the one hedge, and the slow call is dropped once neither wants it.
      let before = await asked();
      const both = await Promise.all([ask(`${way} both hedge`), ask(`${way} both hedge`)]);
      deepEqual(both.map((r) => r.target), [b, b], `${way}: both answered by the hedge`);
      check(both.every((r) => r.text.length > 0 && r.text === both[0].text), `${way}: whole answers`);
      deepEqual((await asked()).map((n, i) => n - before[i]), [1, 1], `${way}: one call to each target`);
      // Only the first hedges: the second joined its call to the slow target and gets that call's answer.
      before = await asked();
      const [hedged, plain] = await Promise.all([ask(`${way} one hedges`), ask(`${way} one hedges`, { hedge: false })]);
      equal(hedged.target, b, `${way}: the hedging call, answered by the hedge`);
      equal(plain.target, a, `${way}: the call that does not hedge, answered by the slow target`);
      check(plain.text.length > 0, `${way}: a whole answer`);
      deepEqual((await asked()).map((n, i) => n - before[i]), [1, 1], `${way}: the slow call was not sent again`);
    }
    const stats = client.stats();
    equal(stats.failures, 0, "no failure");
    equal(stats.breakers.find((x) => x.key === `target:${a}`)?.failures ?? 0, 0, "the slow target's breaker counted nothing");
    await setFaults(mock, { target: a });
  },

  async "hedge: \"p95\" waits for 20 first tokens, then hedges past the primary's own p95"({ ResilientClient }, mock) {
    const name = unique("hedge-p95");
    const [a, b] = [`${name}-a`, `${name}-b`];
    const client = new ResilientClient({ retry: false, targets: [target(mock, a), target(mock, b)], hedge: { afterMs: "p95" } });
    const events = [];
    client.on("hedge", (e) => events.push(e));
    const ask = (i) => client.chat({ messages: [{ role: "user", content: `question ${i}` }] });
    // Before 20 first tokens are known there is no p95, so no hedge, however late.
    await setFaults(mock, { target: a, latencyMs: 400 });
    equal((await ask(0)).target, a, "a late primary, unhedged");
    await setFaults(mock, { target: a });
    for (let i = 1; i < 20; i++) equal((await ask(i)).target, a, `fast answer ${i}`);
    equal(events.length, 0, "no hedge while learning");
    // 20 known (one of 400 ms, 19 fast): the p95 is a fast one; a late primary is now hedged.
    await setFaults(mock, { target: a, latencyMs: 3000 });
    equal((await ask(20)).target, b, "hedged past the p95");
    equal(events.length, 1, "one hedge");
    check(events[0].afterMs < 400, `the delay is the p95 of the fast answers: ${events[0].afterMs} ms`);
    await setFaults(mock, { target: a });
  },

  async "hedge: an abort during the race cancels both and rejects with the reason; a zero delay starts both at once"({ ResilientClient }, mock) {
    const name = unique("hedge-abort");
    const [a, b] = [`${name}-a`, `${name}-b`];
    await setFaults(mock, { target: a, latencyMs: 3000 });
    await setFaults(mock, { target: b, latencyMs: 3000 });
    const client = new ResilientClient({ retry: false, targets: [target(mock, a), target(mock, b)], hedge: { afterMs: 50 } });
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    setTimeout(() => controller.abort(reason), 300);
    const started = Date.now();
    const error = await rejection(client.chat({ messages: [{ role: "user", content: "abort me" }], signal: controller.signal }));
    equal(error, reason, "rejects with the signal's reason");
    check(Date.now() - started < 2000, "at once");
    const abandoned = async () => {
      const stats = await mockStats(mock);
      return [stats.byTarget[a]?.abandoned ?? 0, stats.byTarget[b]?.abandoned ?? 0];
    };
    for (let i = 0; i < 100 && (await abandoned()).join() !== "1,1"; i++) await new Promise((r) => setTimeout(r, 20));
    deepEqual(await abandoned(), [1, 1], "both requests cancelled on the wire");
    equal(client.stats().hedges.started, 1, "the hedge had started");
    // afterMs 0: the backup is asked at once too, and the faster wins.
    await setFaults(mock, { target: b });
    const events = [];
    client.on("hedge", (e) => events.push(e));
    equal((await client.chat({ messages: [{ role: "user", content: "both" }], hedge: { afterMs: 0 } })).target, b, "afterMs 0");
    equal(events[0]?.afterMs, 0, "afterMs in the event");
    await setFaults(mock, { target: a });
  },

  // Before, the caller's abort also failed each fetch in flight, and a failure seen before the abort
  // itself was counted against the upstream: a breaker failure per attempt (two in a hedge race).
  async "an abort by the caller counts no breaker failure, in a hedge race or outside one"({ ResilientClient }, mock) {
    const name = unique("abort-breaker");
    const [a, b] = [`${name}-a`, `${name}-b`];
    await setFaults(mock, { target: a, latencyMs: 3000 });
    await setFaults(mock, { target: b, latencyMs: 3000 });
    const client = new ResilientClient({
      retry: false,
      breaker: { failureThreshold: 1 },
      targets: [target(mock, a), target(mock, b)],
      hedge: { afterMs: 50 },
    });
    const aborted = async (ms, call) => {
      const controller = new AbortController();
      const reason = new Error("caller gave up");
      setTimeout(() => controller.abort(reason), ms);
      equal(await rejection(call(controller.signal)), reason, "rejects with the signal's reason");
    };
    const messages = [{ role: "user", content: "abort me" }];
    await aborted(300, (signal) => client.chat({ messages, signal }));
    const stream = (signal) => client.chatStream({ messages, signal }).result;
    await aborted(300, stream);
    equal(client.stats().hedges.started, 2, "both were aborted during a race");
    await aborted(30, (signal) => client.chat({ messages, signal, hedge: false }));
    await aborted(30, (signal) => client.chatStream({ messages, signal, hedge: false }).result);
    const breakers = client.stats().breakers;
    for (const name of [a, b]) {
      const breaker = breakers.find((x) => x.key === `target:${name}`);
      deepEqual([breaker?.state ?? "closed", breaker?.failures ?? 0], ["closed", 0], `${name}'s breaker counted nothing`);
    }
    await setFaults(mock, { target: a });
    await setFaults(mock, { target: b });
  },

  async "hedge: 100 hedged calls at once all answer, with no failure counted and no connection left open"({ ResilientClient }, mock) {
    const name = unique("hedge-many");
    const [a, b] = [`${name}-a`, `${name}-b`];
    // (A browser sends at most 6 at once to one host: there, many primaries answer before their
    // hedge gets a connection.)
    await setFaults(mock, { target: a, latencyMs: 200 });
    const client = new ResilientClient({ retry: false, targets: [target(mock, a), target(mock, b)], hedge: { afterMs: 30 } });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => client.chat({ messages: [{ role: "user", content: `many ${i}` }] })),
    );
    check(results.every((r) => r.target === a || r.target === b), "every call answered");
    const stats = client.stats();
    equal(stats.failures, 0, "no failure counted");
    check(stats.hedges.won <= stats.hedges.started && stats.hedges.started <= 100, JSON.stringify(stats.hedges));
    equal(results.filter((r) => r.target === b).length, stats.hedges.won, "hedges won = answers by the backup");
    for (let i = 0; i < 100 && (await mockStats(mock)).inFlight > 0; i++) await new Promise((r) => setTimeout(r, 20));
    equal((await mockStats(mock)).inFlight, 0, "no request left open at the mock");
    await setFaults(mock, { target: a });
  },

  async "hedge: bad values are refused, naming the field"({ ResilientClient }) {
    const targets = [{ name: "x", provider: "openai", baseUrl: "http://127.0.0.1:9/v1", model: "m" }];
    rejectsOptions(ResilientClient, [
      [{ targets, hedge: { afterMs: -1 } }, "RangeError", "hedge.afterMs"],
      [{ targets, hedge: { afterMs: NaN } }, "RangeError", "hedge.afterMs"],
      [{ targets, hedge: { afterMs: 1e12 } }, "RangeError", "hedge.afterMs"],
      [{ targets, hedge: { afterMs: Infinity } }, "RangeError", "hedge.afterMs"],
      [{ targets, hedge: { afterMs: "p50" } }, "TypeError", "hedge.afterMs"],
      [{ targets, hedge: {} }, "TypeError", "hedge.afterMs"],
      [{ targets, hedge: true }, "TypeError", "hedge"],
      [{ targets, hedge: null }, "TypeError", "hedge"],
      [{ targets, hedge: { afterMs: 10, after: 1 } }, "TypeError", "hedge.after"],
    ]);
    const client = new ResilientClient({ targets });
    const messages = [{ role: "user", content: "hi" }];
    for (const [hedge, name] of [[{ afterMs: NaN }, "RangeError"], [{ afterMs: -5 }, "RangeError"], ["soon", "TypeError"]]) {
      const error = await rejection(client.chat({ messages, hedge }));
      equal(error.name, name, `request hedge ${JSON.stringify(hedge)}`);
      check(error.message.includes("request.hedge"), error.message);
    }
  },

  async "hedge: at most one per call, even when the chain moves on past a hedge that failed"({ ResilientClient }, mock) {
    const name = unique("hedge-once");
    const [a, b, c, d] = ["a", "b", "c", "d"].map((x) => `${name}-${x}`);
    const fault = (value) => ({ headers: { "x-mock-fault": value } });
    const client = new ResilientClient({
      retry: false,
      targets: [target(mock, a, fault("delay=200;status=503")), target(mock, b, fault("delay=300;status=500")), target(mock, c, fault("delay=600")), target(mock, d)],
      hedge: { afterMs: 50 },
    });
    const events = [];
    client.on("hedge", (e) => events.push(e));
    const result = await client.chat({ messages: [{ role: "user", content: "one hedge" }] });
    equal(result.target, c, "the late third target answers, unhedged");
    deepEqual(events, [{ type: "hedge", from: a, to: b, afterMs: 50, winner: null }], "one hedge event");
    deepEqual(client.stats().hedges, { started: 1, won: 0 }, "one hedge started");
    equal((await mockStats(mock)).byTarget[d], undefined, "the fourth target was not asked");
  },

  async "hedge: none to a target whose breaker is open (it would fail at once and spend the call's one hedge)"({ ResilientClient }, mock) {
    const name = unique("hedge-open");
    const [a, b] = [`${name}-a`, `${name}-b`];
    await setFaults(mock, { target: a, latencyMs: 300 });
    await setFaults(mock, { target: b, outage: true });
    const client = new ResilientClient({
      retry: false,
      breaker: { failureThreshold: 1, resetTimeoutMs: 60_000 },
      targets: [target(mock, a), target(mock, b)],
      hedge: { afterMs: 30 },
    });
    const messages = [{ role: "user", content: "hedge to an open breaker?" }];
    // The first call's hedge fails at once (503) and opens b's breaker; a answers, late.
    equal((await client.chat({ messages })).target, a);
    equal(client.stats().breakers.find((x) => x.key === `target:${b}`)?.state, "open", "b's breaker opened");
    // The second is not hedged: b is not asked, a answers.
    equal((await client.chat({ messages })).target, a);
    deepEqual(client.stats().hedges, { started: 1, won: 0 }, "one hedge, in the first call");
    equal((await mockStats(mock)).byTarget[b].total, 1, "b was asked once");
  },

  async "hedge: the loser leaves no listener on the caller's signal (a long-lived signal kept one per hedged call)"({ ResilientClient }, mock) {
    const name = unique("hedge-signal");
    const [a, b] = [`${name}-a`, `${name}-b`];
    await setFaults(mock, { target: a, latencyMs: 1000 });
    const client = new ResilientClient({ retry: false, targets: [target(mock, a), target(mock, b)], hedge: { afterMs: 30 } });
    // One signal for every call, never aborted (a UI's stop button), counting its listeners.
    const signal = new AbortController().signal;
    let listening = 0;
    const [add, remove] = [signal.addEventListener, signal.removeEventListener];
    signal.addEventListener = function (...args) {
      if (args[0] === "abort") listening++;
      return add.apply(this, args);
    };
    signal.removeEventListener = function (...args) {
      if (args[0] === "abort") listening--;
      return remove.apply(this, args);
    };
    const messages = [{ role: "user", content: "who listens?" }];
    equal((await client.chat({ messages, signal })).target, b, "chat(): the hedge answered");
    const stream = client.chatStream({ messages, signal });
    for await (const _ of stream);
    equal((await stream.result).target, b, "chatStream(): the hedge answered");
    deepEqual(client.stats().hedges, { started: 2, won: 2 }, "both hedged");
    equal(listening, 0, "no abort listener left on the signal");
    await setFaults(mock, { target: a });
  },

  async "hedge: cancel() during a chatStream's race cancels both requests at once, gives both budget holds back, counts no failure"({ ResilientClient }, mock) {
    const name = unique("hedge-cancel");
    const [a, b] = [`${name}-a`, `${name}-b`];
    await setFaults(mock, { target: a, latencyMs: 2000 });
    await setFaults(mock, { target: b, latencyMs: 2000 });
    // Room for two holds at once (~105 tokens each), not three: a hold left behind stops the next hedge.
    const client = new ResilientClient({
      retry: false,
      targets: [target(mock, a), target(mock, b)],
      hedge: { afterMs: 30 },
      budget: { perUserDailyTokens: 250 },
    });
    const abandoned = async () => {
      const stats = await mockStats(mock);
      return [stats.byTarget[a]?.abandoned ?? 0, stats.byTarget[b]?.abandoned ?? 0].join();
    };
    for (let i = 1; i <= 2; i++) {
      const stream = client.chatStream({ messages: [{ role: "user", content: `cancel ${i}` }], maxTokens: 100 });
      await new Promise((r) => setTimeout(r, 200));
      equal(client.stats().hedges.started, i, `call ${i} hedged (the budget holds both)`);
      const started = Date.now();
      stream.cancel();
      let deltas = 0;
      for await (const _ of stream) deltas++;
      equal(deltas, 0, "nothing handed out");
      equal((await rejection(stream.result)).name, "AbortError", "result rejects with an AbortError");
      check(Date.now() - started < 1000, `iteration ended at once, not when the upstream answered (${Date.now() - started} ms)`);
      for (let n = 0; n < 50 && (await abandoned()) !== `${i},${i}`; n++) await new Promise((r) => setTimeout(r, 20));
      equal(await abandoned(), `${i},${i}`, "both requests cancelled on the wire");
      check(Date.now() - started < 1500, "before the upstream answered");
    }
    const stats = client.stats();
    equal(stats.failures, 0, "a cancel is no failure");
    deepEqual(stats.hedges, { started: 2, won: 0 }, "no winner");
    await setFaults(mock, { target: a });
    await setFaults(mock, { target: b });
  },
};
