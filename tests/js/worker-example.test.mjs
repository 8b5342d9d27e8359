// The example Worker (examples/worker) in workerd, with its KV and Durable Object bindings, against
// the mock LLM: JSON and streamed answers in OpenAI's format, fallback, a cache hit served from KV,
// per-user limits shared through the Durable Object, and /stats; and what makes it safe to deploy:
// callers authenticate with a bearer token, the user is the token's (not a header), /stats shows the
// caller's own row, max_tokens is clamped, a per-user daily budget applies, and an upstream failure
// reaches the caller as a generic error with a request id. The OpenAI SDK, pointed at the Worker, keeps
// everything it sends: a tool-call round trip (JSON and streamed) survives a fallback to an Anthropic
// target, and content parts, stop, response_format and tool_choice reach the upstream.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { startWorker } from "./workerd/harness.mjs";
import { startMockLlm } from "../../www/mock-llm.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const USERS = ["bob", "carol", "dave", "erin", "mallory", "frank", "grace", "heidi", "tina", "tony", "tom", "toby", "tess", "tara", ...Array.from({ length: 8 }, (_, i) => `user-${i}`)];
/** Each user's bearer token (the CLIENT_TOKENS secret maps it back to the user). */
const TOKEN = Object.fromEntries(USERS.map((user) => [user, `tok-${user}-${"0123456789abcdef".repeat(3)}`]));
const ADMIN_TOKEN = `admin-${"fedcba9876543210".repeat(3)}`;
const MAX_TOKENS = 12; // the mock answers ~30 words, one token each: a clamp shows in the answer
const DAILY_TOKENS = 300;
let mock;
let mf;
let origin; // the Worker's address: requests go over HTTP (Node's fetch re-sends a string body on a 401)

before(async () => {
  mock = await startMockLlm();
  // Base URLs as each provider's SDK takes them: OpenAI's with the version path, Anthropic's without.
  const targets = [
    ...["primary", "backup"].map((name) => ({ name, provider: "openai", baseUrl: `${mock.url}/t/${name}/v1`, model: "mock-1" })),
    { name: "claude", provider: "anthropic", baseUrl: `${mock.url}/t/claude`, model: "mock-claude" },
  ];
  mf = await startWorker(join(here, "../../examples/worker/src/index.js"), "example-worker", {
    kvNamespaces: ["LLM_CACHE"],
    durableObjects: { RESILIENCE: "ResilienceState" },
    bindings: {
      TARGETS: JSON.stringify(targets),
      PRIMARY_API_KEY: "sk-primary",
      CLIENT_TOKENS: JSON.stringify(Object.fromEntries(USERS.map((user) => [TOKEN[user], user]))),
      ADMIN_TOKEN,
      USER_REQUESTS_PER_MINUTE: "3",
      USER_DAILY_TOKENS: String(DAILY_TOKENS),
      MAX_TOKENS: String(MAX_TOKENS),
      RESILIENCE_OPTIONS: JSON.stringify({ rateLimit: { requestsPerMinute: 3, maxWaitMs: 0 } }),
    },
  });
  origin = (await mf.ready).origin;
});
after(async () => {
  await mf?.dispose();
  await mock?.close();
});

function post(body, headers = {}) {
  return fetch(`${origin}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "auto", messages: [{ role: "user", content: "hello proxy" }], ...body }),
  });
}
let users = 0;
const ask = (body, user = `user-${users++}`, headers = {}) => post(body, { authorization: `Bearer ${TOKEN[user]}`, ...headers });
const statsAs = (token) => fetch(`${origin}/stats`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

test("example worker: a JSON answer in OpenAI's format", async () => {
  const response = await ask({});
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.ok(body.choices[0].message.content.startsWith('You said: "hello proxy"'));
  assert.equal(response.headers.get("x-target"), "primary");
});

test("example worker: a streamed answer passes through intact", async () => {
  const json = await (await ask({})).json();
  const response = await ask({ stream: true });
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  const events = (await response.text()).split("\n\n").filter(Boolean).map((e) => e.replace(/^data: /, ""));
  assert.equal(events.at(-1), "[DONE]");
  const text = events.slice(0, -1).map((e) => JSON.parse(e).choices[0].delta.content ?? "").join("");
  assert.equal(text, json.choices[0].message.content);
});

test("example worker: falls back to the backup during an outage", async () => {
  mock.setFaults({ target: "primary", outage: true });
  try {
    const response = await ask({});
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-target"), "backup");
  } finally {
    mock.setFaults({ target: "primary" });
  }
});

test("example worker: a deterministic answer is served from KV the second time", async () => {
  const body = { temperature: 0, messages: [{ role: "user", content: `cache me ${Date.now()}` }] };
  // The same user: `user` is part of the request, so of its cache key.
  const first = await ask(body, "erin");
  assert.equal(first.headers.get("x-cache"), "MISS");
  const text = (await first.json()).choices[0].message.content;
  const seen = mock.stats().total;
  let second;
  for (let i = 0; i < 20; i++) {
    second = await ask(body, "erin");
    if (second.headers.get("x-cache") === "HIT") break;
    await second.text();
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(second.headers.get("x-cache"), "HIT");
  assert.equal((await second.json()).choices[0].message.content, text);
  assert.equal(mock.stats().total, seen, "the upstream was not asked");
});

test("example worker: per-user limits, shared through the Durable Object", async () => {
  const statuses = [];
  for (let i = 0; i < 4; i++) {
    const response = await ask({}, "carol");
    statuses.push(response.status);
    await response.text();
  }
  assert.deepEqual(statuses, [200, 200, 200, 429]);
  assert.equal((await ask({}, "dave")).status, 200);
  // The statuses alone would pass without the Durable Object (the isolate's own bucket has the same
  // 3 a minute): the object's own bucket for carol must be the one spent.
  const namespace = await mf.getDurableObjectNamespace("RESILIENCE");
  const board = namespace.get(namespace.idFromName("global"));
  const take = async (key) => (await board.fetch("https://resilience-state/", { method: "POST", body: JSON.stringify({ op: "take", key, tokens: 0 }) })).json();
  const carol = await take("client|carol");
  assert.equal(carol.ok, false, `carol's shared bucket is empty: ${JSON.stringify(carol)}`);
  assert.ok(carol.retryAfterMs > 0 && carol.retryAfterMs <= 20_000, `one request back in 60 s / 3: ${carol.retryAfterMs} ms`);
  assert.equal((await take("client|erin-never-asked")).ok, true, "a key nobody used has its full bucket");
});

test("example worker: /stats shows a user their own row, the admin everything", async () => {
  const own = await (await statsAs(TOKEN.carol)).json();
  assert.equal(own.user, "carol");
  assert.ok(own.inputTokens > 0 && own.outputTokens > 0, JSON.stringify(own));
  assert.equal(JSON.stringify(own).includes("erin"), false, "no other user's row");
  const stats = await (await statsAs(ADMIN_TOKEN)).json();
  assert.ok(stats.requests > 0);
  assert.ok(Array.isArray(stats.breakers));
  assert.ok(stats.costs.byUser.some((row) => row.user === "carol"));
});

test("example worker: an anonymous call, a wrong token or a malformed header is a 401", async () => {
  const seen = mock.stats().total;
  for (const headers of [
    {},
    { authorization: "Bearer wrong-token-wrong-token-wrong-token-wrong" },
    { authorization: `Bearer ${TOKEN.bob}x` },
    { authorization: `Bearer ${TOKEN.bob.slice(0, -1)}` },
    { authorization: TOKEN.bob },
    { authorization: `Basic ${TOKEN.bob}` },
    { authorization: `Bearer ${"a".repeat(4_000)}` },
    { "x-user-id": "bob" },
  ]) {
    const response = await post({}, headers);
    const body = await response.json();
    assert.equal(response.status, 401, JSON.stringify(headers).slice(0, 80));
    assert.equal(response.headers.get("www-authenticate"), "Bearer");
    assert.equal(body.choices, undefined);
  }
  assert.equal(mock.stats().total, seen, "nothing was sent upstream");
});

test("example worker: /stats without a valid token is a 401", async () => {
  for (const token of [undefined, "not-a-token", `${ADMIN_TOKEN}0`]) {
    const response = await statsAs(token);
    assert.equal(response.status, 401, String(token));
    assert.equal(JSON.stringify(await response.json()).includes("carol"), false);
  }
});

test("example worker: the x-user-id header is ignored: rotating it does not bypass the limit", async () => {
  const statuses = [];
  for (let i = 0; i < 4; i++) {
    const response = await ask({}, "mallory", { "x-user-id": `rotated-${i}` });
    statuses.push(response.status);
    await response.text();
  }
  assert.deepEqual(statuses, [200, 200, 200, 429]);
  // Nor does it spend someone else's: bob, named in mallory's header above, still has his whole limit.
  const bob = [];
  for (let i = 0; i < 3; i++) bob.push((await ask({}, "bob", { "x-user-id": "mallory" })).status);
  assert.deepEqual(bob, [200, 200, 200]);
});

test("example worker: max_tokens is clamped to MAX_TOKENS", async () => {
  for (const [asked, expected] of [[100_000, MAX_TOKENS], [undefined, MAX_TOKENS], [5, 5]]) {
    const response = await ask({ max_tokens: asked, messages: [{ role: "user", content: `clamp ${asked}` }] }, "grace");
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.usage.completion_tokens, expected, `max_tokens ${asked}`);
    assert.equal(body.choices[0].message.content.split(" ").length, expected);
    assert.equal(body.choices[0].finish_reason, "length");
  }
  for (const asked of [0, -1, 1.5, "12", 1e400]) {
    assert.equal((await ask({ max_tokens: asked }, "grace")).status, 400, `max_tokens ${asked}`);
  }
});

test("example worker: a body over MAX_REQUEST_BYTES is a 413 and a malformed one a 400, before any upstream call", async () => {
  const seen = mock.stats().total;
  const huge = await ask({ messages: [{ role: "user", content: "x".repeat(300 * 1024) }] }, "heidi");
  assert.equal(huge.status, 413);
  assert.ok(huge.headers.get("x-request-id"));
  for (const body of [{ messages: "hi" }, { messages: [] }, { messages: [{ role: "tool", content: "x" }] },
    { messages: [{ role: "user", content: { $: 1 } }] }, { temperature: "hot" }]) {
    assert.equal((await ask(body, "heidi")).status, 400, JSON.stringify(body));
  }
  const notJson = await fetch(`${origin}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${TOKEN.heidi}` }, body: "{" });
  assert.equal(notJson.status, 400);
  assert.equal(mock.stats().total, seen, "nothing was sent upstream");
});

test("example worker: an upstream failure is a generic error with a request id, its text only in the log", async () => {
  mock.setFaults({ target: "primary", errorRate: 1, errorStatuses: [401] });
  try {
    for (const stream of [false, true]) {
      const response = await ask({ stream }, "dave");
      const text = await response.text();
      const id = response.headers.get("x-request-id");
      assert.match(id ?? "", /^[0-9a-f-]{36}$/);
      assert.ok(text.includes(id), `the body names the request id: ${text}`);
      for (const leak of ["mock fault", "Unauthorized", "invalid_api_key", "sk-primary"]) {
        assert.equal(text.includes(leak), false, `"${leak}" reached the caller: ${text}`);
      }
      if (!stream) {
        assert.equal(response.status, 502);
        assert.equal(JSON.parse(text).error.request_id, id);
      }
    }
  } finally {
    mock.setFaults({ target: "primary" });
  }
});

test("example worker: a user's daily token budget, once spent, is a 429", async () => {
  // ~800 characters: the mock counts 200 prompt tokens, the budget holds them (+4) plus max_tokens.
  const long = { messages: [{ role: "user", content: "budget ".repeat(114) }] };
  const first = await ask(long, "frank");
  assert.equal(first.status, 200, await first.clone().text());
  assert.ok((await first.json()).usage.total_tokens > DAILY_TOKENS / 2);
  const second = await ask(long, "frank");
  const body = await second.json();
  assert.equal(second.status, 429);
  assert.equal(body.error.type, "budget_exceeded");
  assert.match(body.error.message, /perUserDailyTokens/);
  assert.ok(second.headers.get("x-request-id"));
  // Another user's budget is their own.
  assert.equal((await ask(long, "heidi")).status, 200);
});

/** The OpenAI SDK as a user of the proxy configures it: the Worker's /v1 as its base URL, the user's token as its key. */
const sdk = (user) => new OpenAI({ apiKey: TOKEN[user], baseURL: `${origin}/v1`, maxRetries: 0 });
const GET_TIME = {
  type: "function",
  function: {
    name: "get_time",
    description: "The local time in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const ASK_TIME = [{ role: "user", content: "What time is it in Paris?" }];

/**
 * Runs `body` with both OpenAI-compatible targets down: the chain ends at the Anthropic one. Every
 * attempt (retries and fallbacks included) spends one of the user's 3 requests a minute, so each leg
 * of a round trip is asked by its own user.
 */
async function onlyClaude(body) {
  for (const target of ["primary", "backup"]) mock.setFaults({ target, outage: true });
  try {
    await body();
  } finally {
    for (const target of ["primary", "backup"]) mock.setFaults({ target });
  }
}

test("example worker: the OpenAI SDK's tool-call round trip survives a fallback to Anthropic", async () => {
  await onlyClaude(async () => {
    const { data: first, response } = await sdk("tina").chat.completions.create({ model: "auto", messages: ASK_TIME, tools: [GET_TIME] }).withResponse();
    assert.equal(response.headers.get("x-target"), "claude");
    const [choice] = first.choices;
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.tool_calls.length, 1);
    const [call] = choice.message.tool_calls;
    assert.equal(call.type, "function");
    assert.ok(call.id, "the call has an id");
    assert.equal(call.function.name, "get_time");
    assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });

    const messages = [...ASK_TIME, choice.message, { role: "tool", tool_call_id: call.id, content: "12:34 in Paris" }];
    const { data: answer, response: second } = await sdk("tony").chat.completions.create({ model: "auto", messages, tools: [GET_TIME] }).withResponse();
    assert.equal(second.headers.get("x-target"), "claude");
    assert.equal(answer.choices[0].finish_reason, "stop");
    assert.equal(answer.choices[0].message.tool_calls, undefined);
    assert.ok(answer.choices[0].message.content.includes("12:34 in Paris"), answer.choices[0].message.content);
  });
});

test("example worker: the OpenAI SDK's streamed tool-call round trip survives a fallback to Anthropic", async () => {
  await onlyClaude(async () => {
    const stream = await sdk("tom").chat.completions.create({
      model: "auto", messages: ASK_TIME, tools: [GET_TIME], stream: true, stream_options: { include_usage: true },
    });
    const pieces = [];
    const finishes = [];
    let usage;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        pieces.push(...(c.delta.tool_calls ?? []));
        if (c.finish_reason) finishes.push(c.finish_reason);
      }
      usage = chunk.usage ?? usage;
    }
    assert.deepEqual(finishes, ["tool_calls"]);
    assert.ok(usage?.completion_tokens > 0, `a usage chunk: ${JSON.stringify(usage)}`);
    assert.ok(pieces.length > 1, `the arguments arrived in pieces: ${JSON.stringify(pieces)}`);
    assert.ok(pieces.every((p) => p.index === 0));
    const [head, ...rest] = pieces;
    assert.equal(head.type, "function");
    assert.ok(head.id, "the first piece carries the id");
    assert.equal(head.function.name, "get_time");
    assert.ok(rest.every((p) => p.id === undefined && p.function.name === undefined), "only the first piece names the call");
    const args = pieces.map((p) => p.function.arguments ?? "").join("");
    assert.deepEqual(JSON.parse(args), { city: "Paris" });

    // The second leg through the SDK's stream helper, which assembles the message and checks its shape.
    const call = { id: head.id, type: "function", function: { name: "get_time", arguments: args } };
    const runner = sdk("toby").chat.completions.stream({
      model: "auto",
      messages: [...ASK_TIME, { role: "assistant", content: null, tool_calls: [call] }, { role: "tool", tool_call_id: head.id, content: "12:34 in Paris" }],
      tools: [GET_TIME],
    });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].finish_reason, "stop");
    assert.ok(final.choices[0].message.content.includes("12:34 in Paris"), final.choices[0].message.content);
  });
});

// Images are not sent here: the client reserves 1,600 tokens for one, past this test's daily budget of
// 300 (tests/js/worker-openai-shape.test.mjs checks their translation).
test("example worker: content parts, stop, response_format and tool_choice reach the upstream", async () => {
  const openai = sdk("tess");
  const described = await openai.chat.completions.create({
    model: "auto",
    messages: [{ role: "user", content: [{ type: "text", text: "Describe " }, { type: "text", text: "this" }] }],
    stop: "weighs",
    seed: 7,
    top_p: 0.5,
    temperature: 0.3,
  });
  // The text part was read upstream (the echo), and the answer ended where the stop sequence begins.
  assert.equal(described.choices[0].message.content, 'You said: "Describe this". The mock model ');
  assert.equal(described.choices[0].finish_reason, "stop");

  const schema = { type: "object", properties: { answer: { type: "string" }, n: { type: "integer" } }, required: ["answer", "n"] };
  const json = await openai.chat.completions.create({
    model: "auto",
    messages: [{ role: "user", content: "Reply in JSON" }],
    response_format: { type: "json_schema", json_schema: { name: "reply", schema, strict: true } },
  });
  assert.deepEqual(JSON.parse(json.choices[0].message.content), { answer: "Reply in JSON", n: 1 });

  // Nothing in the question asks for the time: the call is the forced tool_choice's doing.
  const forced = await openai.chat.completions.create({
    model: "auto",
    messages: [{ role: "user", content: "Hello" }],
    tools: [GET_TIME],
    tool_choice: { type: "function", function: { name: "get_time" } },
  });
  assert.equal(forced.choices[0].finish_reason, "tool_calls");
  assert.deepEqual(forced.choices[0].message.tool_calls.map((c) => c.function.name), ["get_time"]);
});

test("example worker: a request the client refuses is a 400 naming the field, before any upstream call", async () => {
  const seen = mock.stats().total;
  const image = { type: "image_url", image_url: { url: "ftp://example.com/cat.png" } };
  const error = await sdk("tara").chat.completions.create({
    model: "auto",
    messages: [{ role: "user", content: [{ type: "text", text: "Describe" }, image] }],
  }).catch((e) => e);
  assert.equal(error.status, 400, String(error));
  assert.equal(error.error.type, "invalid_request_error");
  assert.match(error.error.message, /^request\.messages\[0\]\.content\[1\]\.url /);
  assert.equal(mock.stats().total, seen, "nothing was sent upstream");
});
