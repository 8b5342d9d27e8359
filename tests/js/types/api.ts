// The typings, used as a TypeScript user would: each line below must compile under --strict, and each line
// marked as an expected error must not (a typing too loose fails the check as surely as one too strict).
import {
  ResilientClient, ResilientError, TimeoutError, RateLimitError, CircuitOpenError, UpstreamError,
  AllTargetsFailedError, BudgetExceededError, IncompleteStreamError, SseParser,
  type ChatRequest, type ChatResult, type ClientEvent, type EmbedResult, type ResilientResponse, type Target,
} from "sturdy-llm";

const client = new ResilientClient();
const learning = new ResilientClient({
  targets: [{ provider: "openai", baseUrl: "https://api.openai.com/v1", model: "gpt-4o-mini", learnLimits: false }],
  fallback: { maxWaitMs: 3000 },
});
for (const limit of learning.stats().learnedLimits) {
  const left: number | null = limit.remainingRequests;
  const tokens: number | null = limit.remainingTokens;
  const ms: number = limit.resetInMs;
}
// @ts-expect-error: learnLimits is a boolean
new ResilientClient({ targets: [{ provider: "openai", baseUrl: "https://x/v1", model: "m", learnLimits: "no" }] });
const response: ResilientResponse = await client.fetch("https://example.com/");
const waited: number | undefined = response.retryAfterMs;
const viaRequest: Response = await client.fetcher(new Request("https://example.com/"));

try {
  await client.chat({ messages: [{ role: "user", content: "hi" }] });
} catch (error) {
  if (error instanceof TimeoutError) { const ms: number = error.timeoutMs; const option: string = error.option; }
  if (error instanceof RateLimitError) { const ms: number = error.retryAfterMs; const key: string = error.key; }
  if (error instanceof CircuitOpenError) { const ms: number = error.retryAfterMs; }
  if (error instanceof UpstreamError) { const status: number | undefined = error.status; const target: string | undefined = error.target; }
  if (error instanceof AllTargetsFailedError) { const first: Error | undefined = error.errors[0]; const back: number | undefined = error.retryAfterMs; }
  if (error instanceof BudgetExceededError) { const cap: "perRequestTokens" | "perUserDailyTokens" | "perUserMonthlyTokens" | "dailyCostUsd" = error.cap; }
  if (error instanceof IncompleteStreamError) { const text: string | undefined = error.partialText; }
  if (ResilientError.isInstance(error)) { const code: string = error.code; }
  if (TimeoutError.isInstance(error)) { const ms: number = error.timeoutMs; }
  // @ts-expect-error: an unknown error has no code until narrowed
  error.code;
}

const off = client.on("retry", (event) => {
  const delay: number = event.delayMs;
  const reason: "status" | "timeout" | "network" | "cut" = event.reason;
  // @ts-expect-error: a retry event has no `to`
  event.to;
});
off();
client.on("breaker", (event) => { const to: "closed" | "open" | "half-open" = event.to; });
client.on("error", (event) => { const error: Error = event.error; });
const any = (event: ClientEvent) => (event.type === "fallback" ? event.from : event.type);
// @ts-expect-error: not an event type
client.on("nope", () => {});
const hedging = new ResilientClient({ hedge: { afterMs: "p95" } });
new ResilientClient({ hedge: false });
// @ts-expect-error: afterMs is a number or "p95"
new ResilientClient({ hedge: { afterMs: "p50" } });
// @ts-expect-error: afterMs is required
new ResilientClient({ hedge: {} });
hedging.on("hedge", (event) => {
  const from: string = event.from;
  const after: number = event.afterMs;
  const winner: string | null = event.winner;
});
const hedges: { started: number; won: number } = hedging.stats().hedges;
await hedging.chat({ messages: [{ role: "user", content: "hi" }], hedge: false });
await hedging.chat({ messages: [{ role: "user", content: "hi" }], hedge: { afterMs: 250 } });
const winnerOf = (event: ClientEvent) => (event.type === "hedge" ? event.winner : null);

const request: ChatRequest = {
  messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image", url: "https://example.com/a.png" }] },
    { role: "assistant", content: null, toolCalls: [{ id: "c1", name: "get_time", arguments: "{}" }] },
    { role: "tool", toolCallId: "c1", content: "12:00" },
  ],
  tools: [{ name: "get_time", parameters: { type: "object" } }],
  toolChoice: { name: "get_time" },
  responseFormat: { type: "json_schema", name: "answer", schema: { type: "object" } },
  providerOptions: { openai: { reasoning_effort: "low" } },
};
const result: ChatResult = await client.chat(request);
const calls: { id: string; name: string; arguments: string }[] = result.toolCalls;
for await (const delta of client.chatStream(request)) {
  const text: string = delta.text;
  const pieces = delta.toolCalls?.map((call) => call.argumentsDelta);
}
const answeredFrom: boolean | "semantic" = result.cached;
for (const part of result.parts) {
  const written: string = result.text.slice(part.start, part.end);
  const by: string = `${part.target} ${part.model} ${part.costUsd.toFixed(6)}`;
}
const continuing = new ResilientClient({
  targets: [
    { provider: "openai", baseUrl: "http://127.0.0.1:8080/v1", model: "local", prefill: true },
    { provider: "anthropic", baseUrl: "https://api.anthropic.com", model: "claude-sonnet-4-5" },
  ],
  fallback: { midStream: true, maxWaitMs: 0 },
});
// @ts-expect-error: midStream is a boolean
new ResilientClient({ fallback: { midStream: "on" } });
// @ts-expect-error: prefill is a boolean
new ResilientClient({ targets: [{ provider: "openai", baseUrl: "https://x/v1", model: "m", prefill: 1 }] });
const similarity: number | undefined = result.cached === "semantic" ? result.similarity : undefined;
const semantic = new ResilientClient({
  targets: [{ provider: "openai", baseUrl: "https://api.openai.com/v1", model: "gpt-4o-mini" }],
  cache: { semantic: { threshold: 0.9, embeddingTarget: "openai:gpt-4o-mini", as: "first", maxEntries: 500 } },
});
// @ts-expect-error: the threshold is required
new ResilientClient({ cache: { semantic: { as: "fallback" } } });
// @ts-expect-error: "fallback" or "first"
new ResilientClient({ cache: { semantic: { threshold: 0.9, as: "always" } } });
// @ts-expect-error: a tool message needs its toolCallId
const bad: ChatRequest = { messages: [{ role: "tool", content: "x" }] };

const cachedRequest: ChatRequest = {
  messages: [
    { role: "system", content: [{ type: "text", text: "A long manual", cache: true }] },
    { role: "user", content: "Question?", cache: true },
  ],
  tools: [{ name: "get_time", parameters: { type: "object" }, cache: true }],
};
const cachedTokens: number = (await client.chat(cachedRequest)).usage.cachedInputTokens;
const written: number = result.usage.cacheWriteTokens;
const saved: number = client.stats().costs.byUser[0].cacheSavedUsd;
const savedTotal: number = client.stats().usage.cacheSavedUsd;
new ResilientClient({
  targets: [{ provider: "anthropic", baseUrl: "https://api.anthropic.com", model: "claude-sonnet-4-5",
              pricing: { inputPerMTok: 3, outputPerMTok: 15, cachedInputPerMTok: 0.3, cacheWritePerMTok: 3.75 } }],
});
// @ts-expect-error: a mark is `true` or absent
const unmarked: ChatRequest = { messages: [{ role: "user", content: "x", cache: false }] };

const embedder: Target = { provider: "openai", baseUrl: "https://api.openai.com/v1", model: "gpt-4o-mini",
  embeddingModel: "text-embedding-3-small", pricing: { inputPerMTok: 0.15, outputPerMTok: 0.6, embeddingPerMTok: 0.02 } };
const embedded: EmbedResult = await new ResilientClient({ targets: [embedder] }).embed({ input: ["a", "b"], dimensions: 256 });
const vector: Float32Array = embedded.embeddings[0];
const fromCache: number = embedded.cached + embedded.usage.inputTokens + embedded.costUsd;
// @ts-expect-error: input is text
client.embed({ input: [1, 2] });

new SseParser().feed(new Uint8Array());
client.free();
export { waited, viaRequest, any, calls, cachedTokens, written, saved, savedTotal, vector, fromCache, answeredFrom, similarity, semantic };
