// The built package in headless Chromium: a page imports "resilient-llm" through an import map (as a
// bundler would resolve the "browser" condition) and runs every scenario against the mock LLM.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
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
  // The test page, the scenarios and the installed package (tests/js/node_modules/resilient-llm).
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
        const pkg = await import("resilient-llm");
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
        const { ResilientClient } = await import("resilient-llm");
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
