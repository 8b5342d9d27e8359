// The packed package as a user receives it: its licence texts and links, and the entries that exist
// for one runtime only saying so in the others.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

const installed = new URL("./node_modules/sturdy-llm/", import.meta.url);
const read = (name) => readFile(new URL(name, installed), "utf8");

test("package: both licence texts travel with it, and package.json links the repository", async () => {
  const manifest = JSON.parse(await read("package.json"));
  assert.equal(manifest.license, "MIT OR Apache-2.0");
  assert.match(await read("LICENSE-MIT"), /^MIT License\n\nCopyright \(c\) the resilient-llm authors\n/);
  assert.match(await read("LICENSE-APACHE"), /Apache License\s+Version 2\.0, January 2004/);
  const repository = "https://github.com/resilient-llm/resilient-llm";
  assert.equal(manifest.repository.url, `git+${repository}.git`);
  assert.equal(manifest.homepage, `${repository}#readme`);
  assert.equal(manifest.bugs.url, `${repository}/issues`);
  const readme = await read("README.md");
  assert.ok(readme.includes(`(${repository}#readme)`), "the packaged README links the project README");
  assert.ok(!/project README(?!\])/.test(readme), "no mention of the project README without its link");
});

test("package: the workers entry in Node throws an error saying it is for workerd and what to import", async () => {
  const error = await import("sturdy-llm/workers").then(() => null, (e) => e);
  assert.ok(error instanceof Error, `import resolved or threw a non-Error: ${error}`);
  assert.match(error.message, /is for Cloudflare Workers \(workerd\)/);
  assert.match(error.message, /import \{ ResilientClient \} from "sturdy-llm"/);
  assert.doesNotMatch(error.message, /extension/);
});
