// OpenAI's Chat Completions format on the outside, resilient-llm's portable chat request inside.
//
// The proxy promises an OpenAI SDK client that it is an OpenAI endpoint, so it must carry everything
// such a client sends (tools, tool results, images, response formats, stop, seed, ...) to whichever
// target of the chain answers, OpenAI-compatible or Anthropic, and answer in OpenAI's words (tool
// calls and finish reasons included, streamed as OpenAI streams them). Dropping a field quietly would
// be worse than refusing it: the caller's tools would vanish without an error. So each field is
// either translated, passed to OpenAI-compatible targets as is (`providerOptions.openai`: fields the
// portable request does not name, e.g. reasoning_effort, logprobs), or refused with a 400. A passed
// field can change the price per token (service_tier): the budget counts tokens, so an owner who must
// not let callers choose such a field removes it here. Sizes are bounded by the body limit (index.js)
// and by the client's own checks.

/** The fields translated here; every other field goes to `providerOptions.openai`. */
const TRANSLATED = new Set([
  "model", "messages", "stream", "stream_options", "n", "user", "max_tokens", "max_completion_tokens",
  "temperature", "top_p", "stop", "seed", "tools", "tool_choice", "response_format",
]);
const MAX_MESSAGES = 256;
const MAX_STOP = 4;

/** A request the proxy refuses: its message reaches the caller as a 400. */
class Problem extends Error {}
const check = (ok, message) => {
  if (!ok) throw new Problem(message);
};
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** A content part: text, or an image by https or data URL (OpenAI's `detail` has no portable meaning). */
function part(p, at) {
  if (p?.type === "text" && typeof p.text === "string") return { type: "text", text: p.text };
  if (p?.type === "image_url" && typeof p.image_url?.url === "string") return { type: "image", url: p.image_url.url };
  throw new Problem(`${at} must be { type: "text", text } or { type: "image_url", image_url: { url } }.`);
}

/** Text that may come as parts (assistant and tool messages): only text parts, joined. */
function textOnly(content, at) {
  if (typeof content === "string") return content;
  check(Array.isArray(content), `${at}.content must be a string or an array of text parts.`);
  return content.map((p, i) => {
    check(p?.type === "text" && typeof p.text === "string", `${at}.content[${i}] must be { type: "text", text }.`);
    return p.text;
  }).join("");
}

function message(m, i) {
  const at = `messages[${i}]`;
  check(isObject(m), `${at} must be an object.`);
  switch (m.role) {
    case "system":
    case "developer": // OpenAI's newer name for the system prompt
    case "user": {
      const { content } = m;
      check(typeof content === "string" || Array.isArray(content), `${at}.content must be a string or an array of parts.`);
      const role = m.role === "user" ? "user" : "system";
      return { role, content: typeof content === "string" ? content : content.map((p, j) => part(p, `${at}.content[${j}]`)) };
    }
    case "assistant": {
      const calls = m.tool_calls ?? [];
      check(Array.isArray(calls), `${at}.tool_calls must be an array.`);
      const toolCalls = calls.map((c, j) => {
        check(typeof c?.id === "string" && typeof c.function?.name === "string" && typeof c.function.arguments === "string",
          `${at}.tool_calls[${j}] must be { id, type: "function", function: { name, arguments } }.`);
        return { id: c.id, name: c.function.name, arguments: c.function.arguments };
      });
      const content = m.content === null || m.content === undefined ? null : textOnly(m.content, at);
      check(content !== null || toolCalls.length > 0, `${at} needs content or tool_calls.`);
      return toolCalls.length ? { role: "assistant", content, toolCalls } : { role: "assistant", content };
    }
    case "tool":
      check(typeof m.tool_call_id === "string", `${at}.tool_call_id must be a string.`);
      return { role: "tool", toolCallId: m.tool_call_id, content: textOnly(m.content, at) };
    default:
      throw new Problem(`${at}.role must be system, developer, user, assistant or tool.`);
  }
}

function tool(t, i) {
  const fn = t?.function;
  check(t?.type === "function" && isObject(fn) && typeof fn.name === "string",
    `tools[${i}] must be { type: "function", function: { name, description?, parameters? } }.`);
  check(fn.parameters === undefined || isObject(fn.parameters), `tools[${i}].function.parameters must be a JSON Schema object.`);
  check(fn.description === undefined || typeof fn.description === "string", `tools[${i}].function.description must be a string.`);
  return {
    name: fn.name,
    ...(fn.description === undefined ? {} : { description: fn.description }),
    parameters: fn.parameters ?? { type: "object", properties: {} },
  };
}

function toolChoice(choice) {
  if (choice === "auto" || choice === "none" || choice === "required") return choice;
  check(choice?.type === "function" && typeof choice.function?.name === "string",
    'tool_choice must be "auto", "none", "required" or { type: "function", function: { name } }.');
  return { name: choice.function.name };
}

function responseFormat(format) {
  if (format?.type === "text") return undefined;
  if (format?.type === "json_object") return { type: "json" };
  const spec = format?.json_schema;
  check(format?.type === "json_schema" && typeof spec?.name === "string" && isObject(spec.schema),
    'response_format must be { type: "text" | "json_object" } or { type: "json_schema", json_schema: { name, schema } }.');
  return { type: "json_schema", name: spec.name, schema: spec.schema, ...(typeof spec.strict === "boolean" ? { strict: spec.strict } : {}) };
}

function stop(value) {
  const list = typeof value === "string" ? [value] : value;
  check(Array.isArray(list) && list.length <= MAX_STOP && list.every((s) => typeof s === "string" && s !== ""),
    `stop must be a string or an array of up to ${MAX_STOP} non-empty strings.`);
  return list;
}

const number = (value, name, low, high) => {
  check(typeof value === "number" && value >= low && value <= high, `${name} must be a number from ${low} to ${high}.`);
  return value;
};

/**
 * The portable chat request for an OpenAI-shaped body, `{ chat }`, or `{ problem }` to answer with a
 * 400. `max_tokens` (or `max_completion_tokens`) is clamped to `maxTokensCap` and defaults to it; the
 * body's `user` is not taken (the proxy sets the authenticated user itself).
 */
export function toChatRequest(body, maxTokensCap) {
  try {
    check(isObject(body), "The body must be a JSON object.");
    const { messages } = body;
    check(Array.isArray(messages) && messages.length > 0 && messages.length <= MAX_MESSAGES,
      `messages must be an array of 1 to ${MAX_MESSAGES} messages.`);
    const asked = body.max_completion_tokens !== undefined ? body.max_completion_tokens : body.max_tokens;
    check(asked === undefined || (Number.isInteger(asked) && asked > 0), "max_tokens must be a positive integer.");
    check(body.n === undefined || body.n === null || body.n === 1, "n must be 1: the proxy answers with one choice.");
    const chat = { messages: messages.map(message), maxTokens: Math.min(asked ?? maxTokensCap, maxTokensCap) };
    const given = (name) => body[name] !== undefined && body[name] !== null;
    if (given("temperature")) chat.temperature = number(body.temperature, "temperature", 0, 2);
    if (given("top_p")) chat.topP = number(body.top_p, "top_p", 0, 1);
    if (given("seed")) {
      check(Number.isSafeInteger(body.seed), "seed must be an integer.");
      chat.seed = body.seed;
    }
    if (given("stop")) chat.stop = stop(body.stop);
    if (given("tools")) {
      check(Array.isArray(body.tools), "tools must be an array.");
      if (body.tools.length) chat.tools = body.tools.map(tool);
    }
    if (given("tool_choice")) chat.toolChoice = toolChoice(body.tool_choice);
    if (given("response_format")) {
      const format = responseFormat(body.response_format);
      if (format) chat.responseFormat = format;
    }
    const rest = Object.entries(body).filter(([key]) => !TRANSLATED.has(key));
    if (rest.length) chat.providerOptions = { openai: Object.fromEntries(rest) };
    return { chat };
  } catch (error) {
    if (error instanceof Problem) return { problem: error.message };
    throw error;
  }
}

const toolCall = (c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } });
/** OpenAI's usage; prompt-cache reads (part of inputTokens, as of OpenAI's prompt_tokens) as its cached_tokens. */
const usage = ({ inputTokens, outputTokens, cachedInputTokens }) => ({
  prompt_tokens: inputTokens, completion_tokens: outputTokens, total_tokens: inputTokens + outputTokens,
  ...(cachedInputTokens ? { prompt_tokens_details: { cached_tokens: cachedInputTokens } } : {}),
});

/** A chat result as an OpenAI `chat.completion`: content null when the model only called tools. */
export function completion(id, result) {
  const calls = result.toolCalls ?? [];
  const message = calls.length
    ? { role: "assistant", content: result.text || null, tool_calls: calls.map(toolCall) }
    : { role: "assistant", content: result.text };
  return {
    id,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: result.model,
    choices: [{ index: 0, message, finish_reason: result.finishReason }],
    usage: usage(result.usage),
  };
}

/**
 * The `chat.completion.chunk`s of a stream, as OpenAI sends them: `start()`, then `delta(d)` for each
 * ChatDelta (its text as `content`, its tool-call pieces as `tool_calls`: index always, id and type
 * with the first piece of a call, name when given, arguments in pieces), then `finish(result)`, and
 * `usage(result)` when the caller asked for it with stream_options.include_usage.
 */
export function chunks(id, model) {
  const created = Math.floor(Date.now() / 1000);
  const chunk = (choices, extra) => ({ id, object: "chat.completion.chunk", created, model, choices, ...extra });
  const choice = (delta, finishReason = null) => [{ index: 0, delta, finish_reason: finishReason }];
  return {
    start: () => chunk(choice({ role: "assistant", content: "" })),
    delta(d) {
      const delta = {};
      if (d.text) delta.content = d.text;
      if (d.toolCalls?.length) {
        delta.tool_calls = d.toolCalls.map((c) => ({
          index: c.index,
          ...(c.id ? { id: c.id, type: "function" } : {}),
          function: { ...(c.name ? { name: c.name } : {}), arguments: c.argumentsDelta ?? "" },
        }));
      }
      return Object.keys(delta).length ? chunk(choice(delta)) : null;
    },
    finish: (result) => chunk(choice({}, result.finishReason), { model: result.model }),
    usage: (result) => chunk([], { model: result.model, usage: usage(result.usage) }),
  };
}
