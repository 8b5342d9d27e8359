// The demo page (www/) in headless Chromium, driven like a person would: type, press Enter, click Stop,
// flip the mock's fault switches, reload. The servers are the ones www/serve.mjs starts, in-process,
// so the test can read the mock's own counters. Screenshots go to tests/artifacts/; with
// UPDATE_SCREENSHOTS=1 they also replace the README's docs/demo.png and docs/demo-narrow.png.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir } from "node:fs/promises";
import { createServer, request } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startMockLlm } from "../../www/mock-llm.mjs";
import { startDemo } from "../../www/serve.mjs";
import { renderMarkdown } from "../../www/ui/markdown.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const ARTIFACTS = join(root, "tests/artifacts");
const DOCS = join(root, "docs");
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const DESKTOP = { width: 1280, height: 800 };
const NARROW = { width: 390, height: 844 };
// HTTP errors the fault switches cause on purpose: Chromium logs each failed response like this.
const FAILED_RESOURCE = /^Failed to load resource: the server responded with a status of \d{3} \([^)]*\)$/;

let demo;
let browser;
let page;
const consoleErrors = [];

before(async () => {
  demo = await startDemo({ port: 0, env: {} }); // env without LLM_BASE_URL: the embedded mock
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: DESKTOP, reducedMotion: "reduce" });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.stack ?? e}`));
  await page.goto(demo.url);
  await ready();
});

/** Waits for the page to have its client up; on failure, says what the console said. */
async function ready() {
  try {
    await page.waitForSelector('body[data-ready="true"]', { state: "attached" });
  } catch (error) {
    error.message += `\nconsole errors: ${JSON.stringify(consoleErrors)}`;
    throw error;
  }
}

after(async () => {
  await browser?.close();
  await demo?.close();
});

test("demo: the answer renderer escapes HTML and knows a little Markdown", () => {
  assert.equal(
    renderMarkdown("Hi **there** `<b>` <img src=x onerror=alert(1)>"),
    "<p>Hi <strong>there</strong> <code>&lt;b&gt;</code> &lt;img src=x onerror=alert(1)&gt;</p>",
  );
  assert.equal(
    renderMarkdown("One\ntwo\n\n- a\n- b\n\n```js\nif (a < b) x();\n```"),
    '<p>One<br>two</p><ul><li>a</li><li>b</li></ul><pre data-lang="js"><code>if (a &lt; b) x();</code></pre>',
  );
  // Half a stream: an unclosed fence is already a code block.
  assert.equal(renderMarkdown("```\npartial"), '<pre data-open=""><code>partial</code></pre>');
  assert.equal(renderMarkdown("[x](javascript:alert(1))"), "<p>[x](javascript:alert(1))</p>");
});

/** One raw HTTP request (the path and the Host header exactly as given) -> { status, headers, body }. */
function raw(origin, path, { method = "GET", headers = {}, body } = {}) {
  const { hostname, port, host } = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method, headers: { host, ...headers } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${path}: no answer in 5 s`)));
    req.end(body);
  });
}

test("demo server: a malformed path is a 400 and the server lives on", async () => {
  for (const path of ["/%E0%A4%A", "/www/%", "/www/%00app.js", "/www/..%5Capp.js"]) {
    assert.equal((await raw(demo.origin, path)).status, 400, path);
  }
  assert.equal((await raw(demo.origin, "/www/")).status, 200, "still serving");
});

test("demo server: serves only the page's files, not the repository", async () => {
  for (const path of [
    "/.git/config", "/.git", "/Cargo.toml", "/README.md", "/src/lib.rs", "/www/serve.mjs", "/www/mock-llm.mjs",
    "/www/demo", "/www/../Cargo.toml", "/www/%2e%2e/Cargo.toml", "/pkg/../Cargo.toml", "/pkg/package.json",
    "/www//app.js", "/tests/js/demo.test.mjs",
  ]) {
    const response = await raw(demo.origin, path);
    assert.equal(response.status, 404, `${path}: ${response.status}`);
  }
  for (const [path, type] of [
    ["/www/", "text/html"], ["/www/app.js", "text/javascript"], ["/www/ui/markdown.js", "text/javascript"],
    ["/www/style.css", "text/css"], ["/pkg/entry-browser.js", "text/javascript"], ["/pkg/sturdy_llm_bg.wasm", "application/wasm"],
  ]) {
    const response = await raw(demo.origin, path);
    assert.equal(response.status, 200, path);
    assert.ok(response.headers["content-type"].startsWith(type), `${path}: ${response.headers["content-type"]}`);
  }
});

test("demo server: answers only its own loopback Host (no DNS rebinding)", async () => {
  const { port } = new URL(demo.origin);
  for (const host of ["evil.example", `evil.example:${port}`, `127.0.0.1:${Number(port) + 1}`, `127.0.0.1.evil.example:${port}`]) {
    for (const path of ["/www/", "/www/config.json"]) {
      assert.equal((await raw(demo.origin, path, { headers: { host } })).status, 421, `${host}${path}`);
    }
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
    assert.equal((await raw(demo.origin, "/www/config.json", { headers: { host } })).status, 200, host);
  }
});

test("demo server: with LLM_BASE_URL the key stays on the server, which forwards the page's calls", async () => {
  const seen = [];
  let streamClosed;
  const upstream = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      if (body.includes('"stream":true')) {
        // A stream that never ends: only the page going away may close it.
        streamClosed = new Promise((closed) => res.once("close", closed));
        res.writeHead(200, { "content-type": "text/event-stream" }).write("data: {}\n\n");
        return;
      }
      seen.push({ path: req.url, authorization: req.headers.authorization, body });
      res.writeHead(401, { "content-type": "application/json", "retry-after": "7", "set-cookie": "a=b" });
      res.end('{"error":{"message":"from upstream"}}');
    });
  });
  await new Promise((ready) => upstream.listen(0, "127.0.0.1", ready));
  const key = "sk-secret-demo-key";
  const real = await startDemo({
    port: 0,
    env: { LLM_BASE_URL: `http://127.0.0.1:${upstream.address().port}/v1/`, LLM_API_KEY: key, LLM_MODEL: "m" },
  });
  try {
    const config = await raw(real.origin, "/www/config.json");
    assert.equal(config.status, 200);
    assert.ok(!config.body.includes(key), `config.json has no key: ${config.body}`);
    assert.equal(JSON.parse(config.body).baseUrl, "/upstream");

    const call = { method: "POST", headers: { "content-type": "application/json", origin: real.origin }, body: '{"messages":[]}' };
    const answer = await raw(real.origin, "/upstream/v1/chat/completions", call);
    assert.equal(answer.status, 401, "the upstream's answer, status and body, comes back");
    assert.equal(answer.body, '{"error":{"message":"from upstream"}}');
    assert.equal(answer.headers["retry-after"], "7");
    assert.equal(answer.headers["set-cookie"], undefined, "only the headers the client reads");
    assert.deepEqual(seen, [{ path: "/v1/chat/completions", authorization: `Bearer ${key}`, body: '{"messages":[]}' }]);

    // Another site cannot spend the key: a cross-origin POST (a form or fetch from that site) is refused,
    // and so is anything but a bounded JSON POST to the one route.
    const refused = [
      [403, { ...call, headers: { ...call.headers, origin: "http://evil.example" } }],
      [415, { ...call, headers: { "content-type": "text/plain", origin: real.origin } }],
      [413, { ...call, body: `{"x":"${"a".repeat(1024 * 1024)}"}` }],
      [405, { method: "GET" }],
    ];
    for (const [status, init] of refused) {
      assert.equal((await raw(real.origin, "/upstream/v1/chat/completions", init)).status, status);
    }
    assert.equal((await raw(real.origin, "/upstream/v1/models")).status, 404);
    assert.equal(seen.length, 1, "nothing refused reached the upstream");

    // Stop in the page (the request closed) closes the upstream call: the provider stops generating.
    const controller = new AbortController();
    const streamed = await fetch(`${real.origin}/upstream/v1/chat/completions`, {
      method: "POST", headers: call.headers, body: '{"stream":true}', signal: controller.signal,
    });
    assert.equal(streamed.headers.get("content-type"), "text/event-stream");
    await streamed.body.getReader().read();
    controller.abort();
    await Promise.race([streamClosed, new Promise((_, timeout) => setTimeout(() => timeout(new Error("upstream stream still open")), 5_000))]);
  } finally {
    await real.close();
    await new Promise((done) => { upstream.closeAllConnections(); upstream.close(done); });
  }
});

const messages = () => page.locator('[data-testid="assistant-message"]');

/** Types `text` into the message box and presses Enter; returns the new assistant message. */
async function ask(text) {
  const before = await messages().count();
  await page.locator("#prompt").fill(text);
  await page.locator("#prompt").press("Enter");
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="assistant-message"]').length > n, before);
  return messages().nth(before);
}

/** Waits for an assistant message to settle (done, stopped or error) and returns its state. */
async function settled(message, timeout = 20_000) {
  const handle = await message.elementHandle();
  await page.waitForFunction((el) => ["done", "stopped", "error"].includes(el.dataset.state), handle, { timeout });
  return message.getAttribute("data-state");
}

/** Polls `check` (a Node-side condition) until it holds. */
async function until(check, what, timeout = 5_000) {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const answerLength = (message) => message.locator('[data-testid="answer"]').evaluate((el) => el.textContent.length);

test("demo: streams an answer token by token, rendered as Markdown", { timeout: 60_000 }, async () => {
  const prompt = page.locator("#prompt");
  await assert.doesNotReject(page.locator('label[for="prompt"]').waitFor({ state: "attached" }));
  assert.equal(await page.locator("#deterministic").isChecked(), true, "deterministic is on by default");

  // Shift+Enter is a new line, not a send.
  await prompt.fill("Explain **circuit breakers** in `sturdy-llm`");
  await prompt.press("Shift+Enter");
  await page.keyboard.type("and why retries need jitter.");
  assert.match(await prompt.inputValue(), /sturdy-llm`\nand why/);
  assert.equal(await messages().count(), 0);

  // Record every length the answer goes through while it streams.
  await page.evaluate(() => {
    window.__lengths = [];
    const log = document.getElementById("messages");
    new MutationObserver(() => {
      const answer = [...log.querySelectorAll('[data-testid="answer"]')].at(-1);
      const message = answer?.closest('[data-testid="assistant-message"]');
      if (message?.dataset.state === "streaming") window.__lengths.push(answer.textContent.length);
    }).observe(log, { subtree: true, childList: true, characterData: true });
  });
  await prompt.press("Enter");
  const message = messages().last();
  await page.waitForFunction(() => document.querySelector('[data-testid="assistant-message"]')?.dataset.state === "streaming");
  assert.equal(await page.locator("#stop").isVisible(), true, "Stop replaces Send while streaming");
  assert.equal(await settled(message), "done");

  const lengths = await page.evaluate(() => window.__lengths.filter((n) => n > 0));
  const distinct = [...new Set(lengths)];
  assert.ok(distinct.length >= 5, `the answer grew in steps (saw lengths ${distinct.join(", ")})`);
  assert.deepEqual(distinct, [...distinct].sort((a, b) => a - b), "the streamed text only grows");

  assert.equal(await message.getAttribute("data-target"), "primary");
  assert.equal(await message.getAttribute("aria-busy"), "false");
  const answer = message.locator('[data-testid="answer"]');
  assert.equal(await answer.locator("strong").first().textContent(), "circuit breakers");
  assert.equal(await answer.locator("code").first().textContent(), "sturdy-llm");
  assert.match(await answer.textContent(), /^You said: "Explain circuit breakers in sturdy-llm and why retries need jitter\."/);
  assert.match(await message.locator('[data-testid="message-meta"]').textContent(), /primary.*tokens/);
  assert.equal(await page.locator("#send").isVisible(), true);
  await page.waitForFunction(() => document.getElementById("m-requests").textContent === "1");
  assert.equal(await page.locator('[data-testid="breaker-primary"]').getAttribute("data-state"), "closed");
});

test("demo: a deterministic answer replays from IndexedDB after a reload", { timeout: 60_000 }, async () => {
  await page.locator("#new-chat").click();
  assert.equal(await messages().count(), 0);
  const question = "What does a circuit breaker do?";
  const first = await ask(question);
  assert.equal(await settled(first), "done");
  assert.equal(await first.getAttribute("data-cached"), "false");
  await page.locator('[data-testid="log"] li[data-type="cache"][data-result="store"]').first().waitFor({ state: "attached" });
  const upstream = demo.mock.stats().total;
  const text = await first.locator('[data-testid="answer"]').textContent();

  await page.reload();
  await ready();
  const again = await ask(question);
  assert.equal(await settled(again), "done");
  assert.equal(await again.getAttribute("data-cached"), "true");
  assert.match(await again.locator('[data-testid="message-meta"]').textContent(), /from cache/);
  assert.equal(await again.locator('[data-testid="answer"]').textContent(), text);
  assert.equal(demo.mock.stats().total, upstream, "the mock was not asked again");
  await page.waitForFunction(() => document.getElementById("m-cache").textContent === "100%");
});

test("demo: Stop (button and Escape) aborts mid-stream and closes the upstream request", { timeout: 60_000 }, async () => {
  await page.locator("#fault-pace").selectOption("250"); // 250 ms per token: a ~8 s answer
  for (const how of ["button", "Escape"]) {
    const message = await ask(`Tell me a long story about retries, stopped with the ${how}`);
    await page.waitForFunction(
      (el) => el.dataset.state === "streaming" && el.querySelector('[data-testid="answer"]').textContent.length > 12,
      await message.elementHandle(),
    );
    assert.equal(demo.mock.stats().inFlight, 1, "the stream is open upstream");
    if (how === "button") await page.locator("#stop").click();
    else await page.keyboard.press("Escape");
    assert.equal(await settled(message, 5_000), "stopped");
    assert.match(await message.locator('[data-testid="message-meta"]').textContent(), /stopped/);
    const kept = await answerLength(message);
    assert.ok(kept > 12 && kept < 120, `the partial answer stays (${kept} characters)`);
    await until(() => demo.mock.stats().inFlight === 0, "the mock to see the request closed");
    assert.equal(await page.locator("#send").isVisible(), true);
  }
  await page.locator("#fault-pace").selectOption("40");
});

test("demo: a primary outage opens its breaker and the chain falls back to the backup", { timeout: 90_000 }, async () => {
  await page.locator("#fault-outage").check();
  await page.waitForSelector('#faults[data-applied="true"]');
  const breaker = page.locator('[data-testid="breaker-primary"]');

  // Each failed call (3 attempts of 503) counts once; the third opens the breaker (failureThreshold 3).
  // The conversation so far goes with every question, so the prompt grows.
  let promptTokens = 0;
  for (let i = 1; i <= 3; i++) {
    const message = await ask(`Outage question ${i}`);
    assert.equal(await settled(message), "done");
    assert.equal(await message.getAttribute("data-target"), "backup");
    const meta = await message.locator('[data-testid="message-meta"]').textContent();
    assert.match(meta, /fell back from primary/);
    const tokens = Number(/(\d+) → \d+ tokens/.exec(meta)?.[1]);
    assert.ok(tokens > promptTokens, `the history is sent (${tokens} prompt tokens after ${promptTokens})`);
    promptTokens = tokens;
  }
  await page.waitForSelector('[data-testid="breaker-primary"][data-state="open"]');
  assert.match(await breaker.textContent(), /open.*probe in \d+(\.\d)? s/s);
  await page.locator('[data-testid="log"] li[data-type="breaker"][data-state="open"]').first().waitFor({ state: "attached" });

  // With the breaker open the primary is not even asked: the backup answers at once.
  const primaryCalls = demo.mock.stats().byTarget.primary.total;
  const fast = await ask("With the breaker **open**, does `chatStream()` still answer?");
  assert.equal(await settled(fast), "done");
  assert.equal(await fast.getAttribute("data-target"), "backup");
  assert.equal(demo.mock.stats().byTarget.primary.total, primaryCalls, "an open breaker fails fast");
  assert.equal(await fast.locator('[data-testid="answer"] strong').textContent(), "open");

  // Let the dashboard and the mock's counters catch up, then take the pictures.
  await page.waitForFunction(() => Number(document.getElementById("m-fallbacks").textContent) >= 4);
  await page.waitForSelector('#mock-stats[data-in-flight="0"]');
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, "demo.png") });
  await page.setViewportSize(NARROW);
  const layout = await page.evaluate(() => {
    const chat = document.querySelector(".chat").getBoundingClientRect();
    const dash = document.querySelector(".dashboard").getBoundingClientRect();
    return { chatWidth: chat.width, dashTop: dash.top, chatBottom: chat.bottom, scroll: document.documentElement.scrollWidth };
  });
  assert.ok(layout.dashTop >= layout.chatBottom, "the dashboard stacks under the chat");
  assert.ok(layout.scroll <= NARROW.width, `no horizontal scrolling (${layout.scroll} px)`);
  await page.locator("#messages").evaluate((el) => (el.scrollTop = el.scrollHeight));
  await page.screenshot({ path: join(ARTIFACTS, "demo-narrow.png") });
  await page.setViewportSize(DESKTOP);
  if (process.env.UPDATE_SCREENSHOTS === "1") {
    await copyFile(join(ARTIFACTS, "demo.png"), join(DOCS, "demo.png"));
    await copyFile(join(ARTIFACTS, "demo-narrow.png"), join(DOCS, "demo-narrow.png"));
  }
});

test("demo: after Reset the breaker probes the primary and closes again", { timeout: 60_000 }, async () => {
  await page.locator("#fault-reset").click();
  await page.waitForSelector('#faults[data-applied="true"]');
  assert.equal(await page.locator("#fault-outage").isChecked(), false);
  // resetTimeoutMs is 10 s: wait for the countdown to run out.
  await page.waitForFunction(
    () => {
      const row = document.querySelector('[data-testid="breaker-primary"]');
      return row.dataset.state === "half-open" || /probe on next call/.test(row.textContent);
    },
    null,
    { timeout: 15_000 },
  );
  const message = await ask("Are we back on the primary?");
  assert.equal(await settled(message), "done");
  assert.equal(await message.getAttribute("data-target"), "primary");
  await page.waitForSelector('[data-testid="breaker-primary"][data-state="closed"]');
  await page.locator('[data-testid="log"] li[data-type="breaker"][data-state="closed"]').first().waitFor({ state: "attached" });
});

test("demo: the model calls get_time, the page answers it, the answer uses it; through a fallback too", { timeout: 60_000 }, async () => {
  await page.locator("#new-chat").click();
  const primaryCalls = demo.mock.stats().byTarget.primary?.total ?? 0;
  const message = await ask("What time is it in Tokyo?");
  assert.equal(await settled(message), "done");
  assert.equal(await message.getAttribute("data-target"), "primary");
  assert.equal(demo.mock.stats().byTarget.primary.total - primaryCalls, 2, "one call for the tool call, one for the answer");
  const call = message.locator('[data-testid="tool-call"]');
  assert.equal(await call.count(), 1);
  assert.equal(await call.locator('[data-testid="tool-args"]').textContent(), 'get_time({"city":"Tokyo"})');
  const result = JSON.parse(await call.locator('[data-testid="tool-result"]').textContent());
  assert.equal(result.timeZone, "Asia/Tokyo");
  const tokyo = (ms) => new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Tokyo", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(ms);
  assert.ok([tokyo(Date.now()), tokyo(Date.now() - 60_000)].includes(result.time), `the page's time in Tokyo: ${result.time}`);
  const answer = await message.locator('[data-testid="answer"]').textContent();
  assert.ok(answer.startsWith(`get_time says city: Tokyo, timeZone: Asia/Tokyo, time: ${result.time}`), answer);
  await page.locator('[data-testid="log"] li[data-type="tool"]').first().waitFor({ state: "attached" });

  // The primary goes down: the backup (the Anthropic API) makes the call and gives the answer.
  await page.locator("#fault-outage").check();
  await page.waitForSelector('#faults[data-applied="true"]');
  try {
    const other = await ask("And what time is it in Paris?");
    assert.equal(await settled(other), "done");
    assert.equal(await other.getAttribute("data-target"), "backup");
    assert.match(await other.locator('[data-testid="message-meta"]').textContent(), /fell back from primary/);
    const paris = other.locator('[data-testid="tool-call"]');
    assert.equal(await paris.locator('[data-testid="tool-args"]').textContent(), 'get_time({"city":"Paris"})');
    assert.equal(JSON.parse(await paris.locator('[data-testid="tool-result"]').textContent()).timeZone, "Europe/Paris");
    assert.match(await paris.textContent(), /I'll use get_time\./, "what the model said before the call");
    assert.match(await other.locator('[data-testid="answer"]').textContent(), /^get_time says city: Paris, timeZone: Europe\/Paris/);
  } finally {
    await page.locator("#fault-reset").click();
    await page.waitForSelector('#faults[data-applied="true"]');
  }
});

test("demo: a server-side limit's headers show on the primary's row as the limit the client learned", { timeout: 60_000 }, async () => {
  const learned = page.locator('[data-testid="learned-primary"]');
  await page.locator("#fault-server-limit").fill("10");
  await page.waitForSelector('#faults[data-applied="true"]');
  assert.equal(await page.locator("#fault-server-limit-out").textContent(), "10 / min");
  try {
    for (const question of ["Limits, first question", "Limits, second question"]) {
      const message = await ask(question);
      assert.equal(await settled(message), "done");
      assert.equal(await message.getAttribute("data-target"), "primary");
    }
    // 10 a minute, two taken: the provider said 8 are left (9 once one refilled: one every 6 s).
    await learned.waitFor({ state: "visible" });
    assert.match(await learned.textContent(), /^provider says: [89] requests left/);
  } finally {
    await page.locator("#fault-reset").click();
    await page.waitForSelector('#faults[data-applied="true"]');
  }
  assert.equal(await page.locator("#fault-server-limit-out").textContent(), "off");
});

test("demo: a primary made slow is hedged: the backup answers first and the dashboard counts it", { timeout: 60_000 }, async () => {
  await page.locator("#fault-slow").fill("100");
  await page.waitForSelector('#faults[data-applied="true"]');
  try {
    const message = await ask("Who answers first when the primary queues?");
    assert.equal(await settled(message), "done");
    assert.equal(await message.getAttribute("data-target"), "backup");
    assert.match(await message.locator('[data-testid="message-meta"]').textContent(), /hedged: backup beat primary/);
    await page.waitForFunction(() => /^[1-9]\d* \/ [1-9]/.test(document.getElementById("m-hedges").textContent));
    assert.match(await page.locator("#m-hedges-sub").textContent(), /last: backup won \(primary 1\.0 s late\)/);
    await page.locator('[data-testid="log"] li[data-type="hedge"][data-winner="backup"]').first().waitFor({ state: "attached" });
    // The primary's request was cancelled on the wire.
    await until(() => (demo.mock.stats().byTarget.primary?.abandoned ?? 0) >= 1, "the mock to see the primary's request closed");
  } finally {
    await page.locator("#fault-reset").click();
    await page.waitForSelector('#faults[data-applied="true"]');
  }
});

test("demo: with LLM_BASE_URL the page talks to that server: one target, no fault controls", { timeout: 60_000 }, async () => {
  // Another mock plays the "real" OpenAI-compatible server (no /t/<name> prefix: target "default").
  const upstream = await startMockLlm({ port: 0 });
  const real = await startDemo({
    port: 0,
    env: { LLM_BASE_URL: `${upstream.url}/v1`, LLM_MODEL: "served-model", LLM_API_KEY: "sk-demo-test" },
  });
  const realPage = await page.context().newPage();
  const requested = [];
  realPage.on("request", (r) => requested.push(r.url()));
  const errors = [];
  realPage.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  realPage.on("pageerror", (e) => errors.push(`pageerror: ${e.stack ?? e}`));
  try {
    assert.equal(real.mock, null);
    await realPage.goto(real.url);
    await realPage.waitForSelector('body[data-ready="true"]', { state: "attached" });
    assert.equal(await realPage.locator("#faults").isHidden(), true, "no fault controls");
    assert.equal(await realPage.locator("#chain-field").isHidden(), true, "no chain to pick");
    assert.match(await realPage.locator("#upstream").textContent(), /served-model/);
    assert.equal(await realPage.locator('[data-testid="breakers"] li').count(), 1);
    await realPage.locator("#prompt").fill("Hello, real server");
    await realPage.locator("#prompt").press("Enter");
    const message = realPage.locator('[data-testid="assistant-message"]').last();
    await realPage.waitForFunction(() => document.querySelector('[data-testid="assistant-message"]')?.dataset.state === "done");
    assert.equal(await message.getAttribute("data-target"), "upstream");
    assert.match(await message.locator('[data-testid="answer"]').textContent(), /^You said: "Hello, real server"\./);
    const stats = upstream.stats();
    assert.equal(stats.byTarget.default.byPath["/v1/chat/completions"], 1, "one request to the server's /v1/chat/completions");
    assert.deepEqual(requested.filter((url) => !url.startsWith(`${real.origin}/`)), [], "the page talks to its own origin only");
    assert.ok(requested.includes(`${real.origin}/upstream/v1/chat/completions`));
    assert.ok(!JSON.stringify(real.config).includes("sk-demo-test"));
    assert.deepEqual(errors, []);
  } finally {
    await realPage.close();
    await real.close();
    await upstream.close();
  }
});

test("demo: no console errors besides the failed requests the faults cause", () => {
  const unexpected = consoleErrors.filter((text) => !FAILED_RESOURCE.test(text));
  assert.deepEqual(unexpected, []);
});
