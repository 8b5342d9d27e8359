// The built package in headless Chromium: a page imports "sturdy-llm" through an import map (as a
// bundler would resolve the "browser" condition) and runs every scenario against the mock LLM; and a
// page bundled by esbuild with the command the README gives.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { startMockLlm } from "../../www/mock-llm.mjs";
import { startStaticServer } from "../../www/static-server.mjs";
import { scenarios } from "./scenarios.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

let mock;
let site;
let browser;
let page;
const consoleErrors = [];
before(async () => {
  mock = await startMockLlm();
  // The test page, the scenarios and the installed package (tests/js/node_modules/sturdy-llm).
  site = await startStaticServer({ root, dirs: { "tests/js": [".html", ".mjs", ".js", ".wasm"] } });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
  page = await browser.newPage();
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(`${site.url}/tests/js/browser/index.html`);
});
after(async () => {
  await browser?.close();
  await site?.close();
  await mock?.close();
});

for (const name of Object.keys(scenarios)) {
  test(`chromium: ${name}`, async () => {
    const outcome = await page.evaluate(
      async ({ name, mockUrl }) => {
        const pkg = await import("sturdy-llm");
        const { scenarios } = await import("/tests/js/scenarios.mjs");
        try {
          await scenarios[name](pkg, mockUrl);
          return "ok";
        } catch (error) {
          return `${error.name}: ${error.message}`;
        }
      },
      { name, mockUrl: mock.url },
    );
    assert.equal(outcome, "ok");
  });
}

test("chromium: no uncaught page errors", () => {
  // Failed requests are the point of several scenarios; Chromium logs each one as a console error.
  const unexpected = consoleErrors.filter((text) => !/Failed to load resource|net::ERR_/.test(text));
  assert.deepEqual(unexpected, []);
});

test("chromium: the IndexedDB cache answers after a page reload, with no credential stored in clear", async () => {
  const cachePage = await browser.newPage();
  await cachePage.goto(`${site.url}/tests/js/browser/index.html`);
  const secret = `sk-test-${Date.now()}`;
  const body = JSON.stringify({ model: "m", temperature: 0, messages: [{ role: "user", content: `reload ${Date.now()}` }] });
  const ask = () =>
    cachePage.evaluate(
      async ({ mockUrl, body, secret }) => {
        const { ResilientClient } = await import("sturdy-llm");
        const client = new ResilientClient({ cache: { store: "indexeddb", namespace: "reload-test" } });
        const stored = new Promise((resolve) => client.on("cache", (e) => e.result === "store" && resolve()));
        const response = await client.fetch(`${mockUrl}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${secret}` },
          body,
        });
        const text = await response.text();
        const cache = response.headers.get("x-cache");
        if (cache === "MISS") await stored;
        return { cache, text };
      },
      { mockUrl: mock.url, body, secret },
    );
  const first = await ask();
  assert.equal(first.cache, "MISS");
  const upstream = mock.stats().total;
  await cachePage.reload();
  const second = await ask();
  assert.equal(second.cache, "HIT");
  assert.equal(second.text, first.text);
  assert.equal(mock.stats().total, upstream, "the upstream was not asked again");
  const records = await cachePage.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const open = indexedDB.open("resilient-llm:reload-test");
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const all = await new Promise((resolve) => {
      const request = db.transaction("entries").objectStore("entries").getAll();
      request.onsuccess = () => resolve(request.result);
    });
    return all.map((r) => JSON.stringify({ ...r, body: new TextDecoder().decode(r.body) }));
  });
  assert.ok(records.length >= 1);
  for (const record of records) assert.ok(!record.includes(secret), `credential in a stored record: ${record}`);
  await cachePage.close();
});

test("chromium: embeddings cached in IndexedDB answer after a page reload: of 100 texts, only the 10 new ones go upstream", async () => {
  const embedPage = await browser.newPage();
  await embedPage.goto(`${site.url}/tests/js/browser/index.html`);
  const run = Date.now();
  const texts = Array.from({ length: 100 }, (_, i) => `reload ${run} chunk ${i}`);
  const embed = (input) =>
    embedPage.evaluate(
      async ({ mockUrl, input }) => {
        const { ResilientClient } = await import("sturdy-llm");
        const client = new ResilientClient({
          cache: { store: "indexeddb", namespace: "embed-reload-test" },
          targets: [{ name: "idb", provider: "openai", baseUrl: `${mockUrl}/t/idb/v1`, apiKey: "sk-idb", model: "m", embeddingModel: "e" }],
        });
        const result = await client.embed({ input });
        return { cached: result.cached, vectors: result.embeddings.map((v) => Array.from(v)) };
      },
      { mockUrl: mock.url, input },
    );
  const first = await embed(texts.slice(0, 90));
  assert.equal(first.cached, 0);
  await embedPage.reload();
  const upstream = mock.stats().total;
  const second = await embed(texts);
  assert.equal(second.cached, 90);
  assert.equal(mock.stats().total, upstream + 1, "one upstream call");
  const sent = JSON.parse((await (await fetch(`${mock.url}/control/last?target=idb`)).json()).body);
  assert.deepEqual(sent.input, texts.slice(90));
  assert.deepEqual(second.vectors.slice(0, 90), first.vectors, "cached vectors, value for value");
  await embedPage.close();
});

test("chromium: a full IndexedDB quota evicts the oldest entries and never fails a request", async () => {
  const quotaPage = await browser.newPage();
  await quotaPage.goto(`${site.url}/tests/js/browser/index.html`);
  // A 2 MB quota for the page's origin (DevTools protocol; navigator.storage.estimate() does not
  // show the override, IndexedDB writes obey it), then ten answers of ~0.5 MB of random text each
  // (random, so that the store's compression cannot fit them all).
  const origin = new URL(site.url).origin;
  const cdp = await quotaPage.context().newCDPSession(quotaPage);
  await cdp.send("Storage.overrideQuotaForOrigin", { origin, quotaSize: 2 * 1024 * 1024 });
  const outcome = await quotaPage.evaluate(
    async ({ mockUrl }) => {
      const { ResilientClient } = await import("sturdy-llm");
      const namespace = `quota-${Date.now()}`;
      const client = new ResilientClient({ cache: { store: "indexeddb", namespace } });
      const errors = [];
      client.on("error", (e) => errors.push(String(e.error?.message ?? e.error)));
      const stores = [];
      client.on("cache", (e) => e.result === "store" && stores.push(e));
      // The mock echoes the prompt's 24 words: 24 random words of 20,000 characters each.
      const word = () => Array.from(crypto.getRandomValues(new Uint8Array(20_000)), (b) => "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[b % 62]).join("");
      const prompts = Array.from({ length: 10 }, () => Array.from({ length: 24 }, word).join(" "));
      const ask = async (i) => {
        const response = await client.fetch(`${mockUrl}/v1/chat/completions`, {
          method: "POST",
          body: JSON.stringify({ model: "m", temperature: 0, messages: [{ role: "user", content: prompts[i] }] }),
        });
        const text = (await response.json()).choices[0].message.content;
        return { status: response.status, cache: response.headers.get("x-cache"), complete: text.includes(prompts[i].slice(-20_000)) };
      };
      const asked = [];
      for (let i = 0; i < 10; i++) {
        const before = stores.length;
        asked.push(await ask(i));
        // Each write settles before the next request, so the quota fills in order.
        for (let t = 0; t < 300 && stores.length === before; t++) await new Promise((r) => setTimeout(r, 10));
      }
      const answered = { asked, last: await ask(9), first: await ask(0), errors };
      // What the store holds, read back: its entries' bytes are what the quota bounds. (Chrome's own
      // usage figure is no measure of that: it counts deleted records until the database compacts, and
      // went past the quota while the store held less than it.)
      const db = await new Promise((resolve, reject) => {
        const open = indexedDB.open(`resilient-llm:${namespace}`);
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const records = await new Promise((resolve, reject) => {
        const all = db.transaction("entries").objectStore("entries").getAll();
        all.onsuccess = () => resolve(all.result);
        all.onerror = () => reject(all.error);
      });
      db.close();
      const bytes = (value) =>
        typeof value === "string" ? value.length
        : ArrayBuffer.isView(value) || value instanceof ArrayBuffer ? value.byteLength
        : value && typeof value === "object" ? Object.values(value).reduce((sum, v) => sum + bytes(v), 0)
        : 8;
      return { ...answered, stored: { count: records.length, bytes: bytes(records) } };
    },
    { mockUrl: mock.url },
  );
  const { quota, overrideActive } = await cdp.send("Storage.getUsageAndQuota", { origin });
  await cdp.send("Storage.overrideQuotaForOrigin", { origin }); // back to the default
  await quotaPage.close();
  assert.ok(overrideActive && quota === 2 * 1024 * 1024, `the quota override applies: ${quota}`);
  assert.deepEqual(outcome.asked.map((a) => `${a.status} ${a.cache} ${a.complete}`), Array(10).fill("200 MISS true"), "every request answered in full");
  assert.deepEqual(outcome.errors, [], "a full quota is not an error");
  assert.equal(outcome.last.cache, "HIT", "the newest entry was written after the eviction");
  assert.equal(outcome.first.cache, "MISS", "the oldest entry was evicted to make room");
  const { count, bytes } = outcome.stored;
  assert.ok(count >= 1 && count < 10, `the store holds some entries, not all ten: ${count}`);
  assert.ok(bytes <= quota, `the stored entries (${bytes} bytes) fit the quota ${quota}`);
});

// The package bundled by esbuild for a page, with the command the README gives. esbuild does not
// follow `new URL("./x.wasm", import.meta.url)` (the browser entry's way to find its .wasm; Vite,
// webpack and Rollup do), so `--bundle` alone emits a bundle whose .wasm is missing (a 404 at load);
// the .wasm given as a second entry point with the `copy` loader lands beside the bundle, where that
// URL points.
const app = join(root, "tests/artifacts/esbuild-app");

/** What a user's page script does: one call through the package, its answer shown on the page. */
const MAIN = `import { ResilientClient } from "sturdy-llm";
const mock = new URLSearchParams(location.search).get("mock");
const client = new ResilientClient({ retry: { maxRetries: 1, baseDelayMs: 10 } });
const response = await client.fetch(mock + "/v1/chat/completions", {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: "mock-1", messages: [{ role: "user", content: "bundled" }] }),
});
document.body.dataset.answer = (await response.json()).choices[0].message.content;
`;

let appSite;
before(async () => {
  await rm(app, { recursive: true, force: true });
  await mkdir(app, { recursive: true });
  await writeFile(join(app, "main.js"), MAIN);
  await writeFile(join(app, "index.html"), '<!doctype html><meta charset="utf-8"><script type="module" src="dist/main.js"></script>');
  // The app's node_modules: the package as installed for the tests.
  await symlink(join(root, "tests/js/node_modules"), join(app, "node_modules"), "dir");
  appSite = await startStaticServer({ root, dirs: { "tests/artifacts/esbuild-app": [".html", ".js", ".wasm"] } });
});
after(() => appSite?.close());

/** Bundles the app with esbuild's CLI and `flags`; loads its page; the answer and any failed loads. */
async function bundleAndLoad(flags) {
  await rm(join(app, "dist"), { recursive: true, force: true });
  await promisify(execFile)(join(root, "node_modules/.bin/esbuild"), [...flags, "--outdir=dist", "--log-level=error"], { cwd: app });
  const page = await browser.newPage();
  const failures = [];
  page.on("response", (r) => r.status() >= 400 && failures.push(`${r.status()} ${new URL(r.url()).pathname}`));
  page.on("pageerror", (e) => failures.push(String(e)));
  try {
    await page.goto(`${appSite.url}/tests/artifacts/esbuild-app/index.html?mock=${encodeURIComponent(mock.url)}`);
    const failed = new Promise((resolve) => page.once("pageerror", () => resolve(null)));
    const answered = page
      .waitForFunction(() => document.body.dataset.answer, null, { timeout: 5_000 })
      .then((handle) => handle.jsonValue(), () => null);
    const answer = await Promise.race([answered, failed]);
    return { answer, failures };
  } finally {
    await page.close();
  }
}

test("esbuild: a page bundled with the README's command loads the .wasm and answers in Chromium", async () => {
  const { answer, failures } = await bundleAndLoad([
    "main.js", "node_modules/sturdy-llm/sturdy_llm_bg.wasm",
    "--bundle", "--format=esm", "--loader:.wasm=copy", "--entry-names=[name]",
  ]);
  assert.deepEqual(failures, []);
  assert.ok(answer?.startsWith('You said: "bundled"'), `the page's answer: ${answer}`);
});

test("esbuild: --bundle alone leaves the .wasm behind (why the README's command names it)", async () => {
  const { answer, failures } = await bundleAndLoad(["main.js", "--bundle", "--format=esm"]);
  assert.equal(answer, null);
  assert.ok(failures.includes("404 /tests/artifacts/esbuild-app/dist/sturdy_llm_bg.wasm"), failures.join("; "));
});
