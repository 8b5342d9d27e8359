// The default byte limits against a hostile upstream, with bodies too big to send in every runtime's
// suite: a 64 MiB chat answer, and a 64 MiB stream line with no end. Before the limits, the first
// ended the Node process (the caller's try/catch never ran) and the second took 256 MiB of wasm
// memory for good.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ResilientClient } from "sturdy-llm";
import { startMockLlm } from "../../www/mock-llm.mjs";

let mock;
before(async () => {
  mock = await startMockLlm();
});
after(() => mock.close());

const MiB = 1 << 20;
const target = (name, fault) => ({
  name,
  provider: "openai",
  baseUrl: `${mock.url}/t/${name}/v1`,
  model: "mock-1",
  headers: { "x-mock-fault": fault },
});

test("node: a chat answer past the default 8 MiB rejects with RESPONSE_TOO_LARGE and the process lives", async () => {
  const client = new ResilientClient({ targets: [target("huge-answer", "huge=65536")] });
  const before = client.stats().memory.wasmBytes;
  const error = await client.chat({ messages: [{ role: "user", content: "x" }] }).catch((e) => e);
  // A chain of one target rejects with that target's own error.
  assert.equal(error.name, "UpstreamError");
  assert.equal(error.code, "RESPONSE_TOO_LARGE");
  assert.equal(error.limit, 8 * MiB);
  const grown = client.stats().memory.wasmBytes - before;
  assert.ok(grown <= MiB, `wasm memory grew by ${grown} bytes for a 64 MiB answer`);
});

test("node: a 64 MiB stream line with no end fails at the default 1 MiB without taking wasm memory", async () => {
  const client = new ResilientClient();
  const before = client.stats().memory.wasmBytes;
  const init = {
    method: "POST",
    headers: { "x-mock-fault": "huge=65536" },
    body: JSON.stringify({ model: "mock-1", messages: [{ role: "user", content: "x" }], stream: true }),
  };
  const events = [];
  const error = await (async () => {
    for await (const event of client.events(`${mock.url}/v1/chat/completions`, init)) events.push(event);
  })().catch((e) => e);
  assert.equal(error.code, "RESPONSE_TOO_LARGE", error.message);
  assert.equal(error.limit, MiB);
  assert.equal(events.length, 1);
  const grown = client.stats().memory.wasmBytes - before;
  // The line's buffer up to the bound, and the smaller buffers it grew through.
  assert.ok(grown <= 2.5 * MiB, `wasm memory grew by ${grown} bytes for a 64 MiB line`);
});

test("node: a 32 MiB stream handed over in one chunk is copied into wasm memory a slice at a time", async () => {
  // A fetch (a caller's own, a buffering proxy) may hand a whole body over as one chunk.
  const line = new TextEncoder().encode(`data: ${"x".repeat(32 * MiB)}`);
  const realFetch = globalThis.fetch;
  globalThis.fetch = async () =>
    new Response(new ReadableStream({ start: (c) => (c.enqueue(line), c.close()) }), {
      headers: { "content-type": "text/event-stream" },
    });
  try {
    const client = new ResilientClient({ retry: false });
    const before = client.stats().memory.wasmBytes;
    const error = await (async () => {
      for await (const event of client.events("http://upstream.invalid/stream")) assert.fail(`event ${event.data}`);
    })().catch((e) => e);
    assert.equal(error.code, "RESPONSE_TOO_LARGE", error.message);
    const grown = client.stats().memory.wasmBytes - before;
    assert.ok(grown <= 2.5 * MiB, `wasm memory grew by ${grown} bytes for a 32 MiB chunk`);
  } finally {
    globalThis.fetch = realFetch;
  }
});

// Without the check, the getter's throw unwound through the wasm and the call never settled.
test("node: a body chunk that is not bytes fails the call, and the instance keeps working", { timeout: 10_000 }, async () => {
  const realFetch = globalThis.fetch;
  const hostile = { get length() { throw new Error("a getter ran inside a copy"); } };
  globalThis.fetch = async () =>
    new Response(new ReadableStream({ start: (c) => (c.enqueue(hostile), c.close()) }), {
      headers: { "content-type": "application/json" },
    });
  try {
    const client = new ResilientClient({
      retry: false,
      targets: [{ provider: "openai", baseUrl: "http://upstream.invalid", model: "m" }],
    });
    const error = await client.chat({ messages: [{ role: "user", content: "x" }] }).catch((e) => e);
    assert.notEqual(error.name, "AllTargetsFailedError", "a chain of one target rejects with its own error");
    assert.match(error.message, /not a Uint8Array/);
  } finally {
    globalThis.fetch = realFetch;
  }
  const client = new ResilientClient({ targets: [{ provider: "openai", baseUrl: `${mock.url}/t/after/v1`, model: "m" }] });
  assert.match((await client.chat({ messages: [{ role: "user", content: "still here" }] })).text, /still here/);
});

// Before, the batches' counts were summed with `+`: u64::MAX then 2 wrapped to 1 token billed.
test("node: embed() sums hostile token counts over its batches without wrapping", async () => {
  const realFetch = globalThis.fetch;
  const counts = ["18446744073709551615", "2"];
  globalThis.fetch = async (url, init) => {
    const { input } = JSON.parse(init.body);
    const data = input.map((_, index) => ({ index, embedding: [1, 0] }));
    return new Response(`{"data":${JSON.stringify(data)},"usage":{"prompt_tokens":${counts.shift()}}}`);
  };
  try {
    const client = new ResilientClient({
      retry: false,
      targets: [{ provider: "openai", baseUrl: "http://upstream.invalid/v1", model: "m", embeddingModel: "e" }],
    });
    const answer = await client.embed({ input: Array.from({ length: 2049 }, (_, i) => `text ${i}`) });
    assert.equal(answer.embeddings.length, 2049);
    assert.equal(counts.length, 0, "two batches");
    assert.ok(answer.usage.inputTokens >= 2 ** 64 - 2 ** 12, `inputTokens ${answer.usage.inputTokens}`);
  } finally {
    globalThis.fetch = realFetch;
  }
});

// Before the JSON tree budget, the 4 MB body below grew the wasm memory by 68 MB (its cache key parsed
// it into 2 million values, 16 bytes each, plus vector doubling), and a dense answer as much: a few
// such calls put a Worker past its 128 MB. Such a document is now refused before anything is built.
test("node: JSON of tiny values, from the caller or the upstream, grows the wasm memory by no more than its own size", async () => {
  const dense = (values) => `[${"0,".repeat(values - 1)}0]`;
  const { createServer } = await import("node:http");
  const answer = `{"choices":[{"message":{"role":"assistant","content":"hi"}}],"pad":${dense(3_000_000)}}`;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(req.url.includes("chat") ? answer : "{}"));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    const client = new ResilientClient({ cache: true, dedupe: true, retry: false, targets: [{ provider: "openai", baseUrl: `${base}/v1`, model: "m" }] });
    const body = dense(2_000_000);
    let before = client.stats().memory.wasmBytes;
    const response = await client.fetch(`${base}/echo`, { method: "POST", body });
    assert.equal(response.status, 200, "the call goes through (its body is keyed as text: it cannot be shared)");
    await response.text();
    let grown = client.stats().memory.wasmBytes - before;
    assert.ok(grown <= body.length + MiB, `wasm memory grew by ${grown} bytes for a ${body.length}-byte body`);

    before = client.stats().memory.wasmBytes;
    const error = await client.chat({ messages: [{ role: "user", content: "x" }] }).catch((e) => e);
    assert.equal(error.name, "UpstreamError", `a dense answer is refused as unreadable: ${error}`);
    grown = client.stats().memory.wasmBytes - before;
    assert.ok(grown <= 2 * answer.length + MiB, `wasm memory grew by ${grown} bytes for a ${answer.length}-byte answer`);
    const fine = await client.fetch(`${base}/echo`, { method: "POST", body: "{}" });
    assert.equal(fine.status, 200, "and the instance keeps working");
  } finally {
    server.close();
  }
});
