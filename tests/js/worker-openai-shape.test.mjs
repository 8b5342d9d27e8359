// The example Worker's translation between OpenAI's Chat Completions format and the portable chat
// request/result (examples/worker/src/openai-shape.js), field by field, without a runtime: what an
// OpenAI SDK sends becomes the request the client writes in each provider's dialect, and the client's
// result and deltas become OpenAI's completion and chunks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chunks, completion, toChatRequest } from "../../examples/worker/src/openai-shape.js";

const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };

test("openai-shape: every field of an OpenAI request, in the portable shape", () => {
  const { chat, problem } = toChatRequest({
    model: "gpt-4o",
    messages: [
      { role: "developer", content: "Be brief." },
      { role: "system", content: [{ type: "text", text: "Use tools." }] },
      { role: "user", content: [{ type: "text", text: "What is this, and the time in Paris?" }, { type: "image_url", image_url: { url: "https://example.com/a.png", detail: "high" } }] },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_time", arguments: '{"city":"Paris"}' } }] },
      { role: "tool", tool_call_id: "call_1", content: [{ type: "text", text: "12:34" }] },
      { role: "assistant", content: "It is 12:34." },
    ],
    tools: [{ type: "function", function: { name: "get_time", description: "The time in a city", parameters: schema, strict: true } }],
    tool_choice: { type: "function", function: { name: "get_time" } },
    response_format: { type: "json_schema", json_schema: { name: "reply", schema, strict: true } },
    max_completion_tokens: 5000,
    temperature: 0.2,
    top_p: 0.9,
    stop: "END",
    seed: 42,
    user: "someone-else",
    stream: true,
    stream_options: { include_usage: true },
    n: 1,
    reasoning_effort: "low",
    logprobs: false,
    parallel_tool_calls: false,
  }, 1024);
  assert.equal(problem, undefined);
  assert.deepEqual(chat, {
    messages: [
      { role: "system", content: "Be brief." },
      { role: "system", content: [{ type: "text", text: "Use tools." }] },
      { role: "user", content: [{ type: "text", text: "What is this, and the time in Paris?" }, { type: "image", url: "https://example.com/a.png" }] },
      { role: "assistant", content: null, toolCalls: [{ id: "call_1", name: "get_time", arguments: '{"city":"Paris"}' }] },
      { role: "tool", toolCallId: "call_1", content: "12:34" },
      { role: "assistant", content: "It is 12:34." },
    ],
    maxTokens: 1024,
    temperature: 0.2,
    topP: 0.9,
    seed: 42,
    stop: ["END"],
    tools: [{ name: "get_time", description: "The time in a city", parameters: schema }],
    toolChoice: { name: "get_time" },
    responseFormat: { type: "json_schema", name: "reply", schema, strict: true },
    providerOptions: { openai: { reasoning_effort: "low", logprobs: false, parallel_tool_calls: false } },
  });
});

test("openai-shape: defaults and the simple forms", () => {
  const { chat } = toChatRequest({
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 7,
    stop: ["a", "b"],
    tools: [{ type: "function", function: { name: "ping" } }],
    tool_choice: "required",
    response_format: { type: "json_object" },
  }, 100);
  assert.deepEqual(chat, {
    messages: [{ role: "user", content: "hi" }],
    maxTokens: 7,
    stop: ["a", "b"],
    tools: [{ name: "ping", parameters: { type: "object", properties: {} } }],
    toolChoice: "required",
    responseFormat: { type: "json" },
  });
  const plain = toChatRequest({ messages: [{ role: "user", content: "hi" }], response_format: { type: "text" }, tools: [], temperature: null }, 100);
  assert.deepEqual(plain.chat, { messages: [{ role: "user", content: "hi" }], maxTokens: 100 });
});

test("openai-shape: what the proxy refuses, each with a message naming the field", () => {
  const user = [{ role: "user", content: "hi" }];
  for (const [body, field] of [
    [null, /JSON object/],
    [{ messages: [] }, /messages/],
    [{ messages: [{ role: "tool", content: "x" }] }, /messages\[0\]\.tool_call_id/],
    [{ messages: [{ role: "robot", content: "x" }] }, /messages\[0\]\.role/],
    [{ messages: [{ role: "user", content: [{ type: "input_audio", input_audio: {} }] }] }, /messages\[0\]\.content\[0\]/],
    [{ messages: [{ role: "assistant", content: null }] }, /content or tool_calls/],
    [{ messages: [{ role: "assistant", content: null, tool_calls: [{ id: "c", function: { name: "f" } }] }] }, /tool_calls\[0\]/],
    [{ messages: user, max_tokens: 0 }, /max_tokens/],
    [{ messages: user, max_tokens: null }, /max_tokens/],
    [{ messages: user, max_completion_tokens: 1.5 }, /max_tokens/],
    [{ messages: user, n: 2 }, /^n must be 1/],
    [{ messages: user, temperature: "hot" }, /temperature/],
    [{ messages: user, top_p: 2 }, /top_p/],
    [{ messages: user, seed: 1.5 }, /seed/],
    [{ messages: user, stop: ["a", "b", "c", "d", "e"] }, /stop/],
    [{ messages: user, stop: [""] }, /stop/],
    [{ messages: user, tools: {} }, /tools must be an array/],
    [{ messages: user, tools: [{ type: "web_search" }] }, /tools\[0\]/],
    [{ messages: user, tools: [{ type: "function", function: { name: "f", parameters: "{}" } }] }, /parameters/],
    [{ messages: user, tool_choice: "any" }, /tool_choice/],
    [{ messages: user, response_format: { type: "json_schema", json_schema: { schema: {} } } }, /response_format/],
  ]) {
    const { chat, problem } = toChatRequest(body, 100);
    assert.equal(chat, undefined, JSON.stringify(body));
    assert.match(problem, field, JSON.stringify(body));
  }
});

const result = (extra) => ({
  text: "", toolCalls: [], target: "claude", provider: "anthropic", model: "claude-x", finishReason: "stop",
  usage: { inputTokens: 10, outputTokens: 4 }, costUsd: 0, cached: false, attempts: 1, ...extra,
});

test("openai-shape: a result as a chat.completion, tool calls included", () => {
  const calls = [{ id: "toolu_1", name: "get_time", arguments: '{"city":"Oslo"}' }];
  const body = completion("chatcmpl-1", result({ toolCalls: calls, finishReason: "tool_calls" }));
  assert.equal(body.object, "chat.completion");
  assert.equal(body.model, "claude-x");
  assert.deepEqual(body.choices, [{
    index: 0,
    message: { role: "assistant", content: null, tool_calls: [{ id: "toolu_1", type: "function", function: { name: "get_time", arguments: '{"city":"Oslo"}' } }] },
    finish_reason: "tool_calls",
  }]);
  assert.deepEqual(body.usage, { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 });
  const withText = completion("chatcmpl-2", result({ text: "Let me check.", toolCalls: calls, finishReason: "tool_calls" }));
  assert.equal(withText.choices[0].message.content, "Let me check.");
  const cached = completion("chatcmpl-4", result({ usage: { inputTokens: 2000, outputTokens: 4, cachedInputTokens: 1536, cacheWriteTokens: 0 } }));
  assert.deepEqual(cached.usage, { prompt_tokens: 2000, completion_tokens: 4, total_tokens: 2004, prompt_tokens_details: { cached_tokens: 1536 } });
  const plain = completion("chatcmpl-3", result({ text: "Hi." }));
  assert.deepEqual(plain.choices[0].message, { role: "assistant", content: "Hi." });
});

test("openai-shape: deltas as chat.completion.chunks, tool-call pieces in OpenAI's shape", () => {
  const shape = chunks("chatcmpl-9", "auto");
  assert.deepEqual(shape.start().choices, [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]);
  assert.deepEqual(shape.delta({ text: "Hel" }).choices[0].delta, { content: "Hel" });
  assert.equal(shape.delta({ text: "" }), null);
  assert.equal(shape.delta({ text: "", toolCalls: [] }), null);
  const head = shape.delta({ text: "", toolCalls: [{ index: 0, id: "call_a", name: "get_time", argumentsDelta: "" }] });
  assert.deepEqual(head.choices[0].delta, { tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "get_time", arguments: "" } }] });
  const piece = shape.delta({ text: "", toolCalls: [{ index: 1, argumentsDelta: '{"ci' }] });
  assert.deepEqual(piece.choices[0].delta, { tool_calls: [{ index: 1, function: { arguments: '{"ci' } }] });
  assert.equal(piece.object, "chat.completion.chunk");
  assert.equal(piece.id, "chatcmpl-9");
  const done = result({ finishReason: "tool_calls" });
  assert.deepEqual(shape.finish(done).choices, [{ index: 0, delta: {}, finish_reason: "tool_calls" }]);
  assert.equal(shape.finish(done).model, "claude-x");
  const usage = shape.usage(done);
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 });
});
