// The package in workerd while its upstream cannot be reached: no error escapes it into the Worker's
// log. The log is read as `wrangler dev` reads it, from workerd's inspector (`Runtime.exceptionThrown`:
// errors thrown where no caller can catch them, printed as "Uncaught Error: ..."), and the promise
// rejections nobody handled are counted by the Worker itself (`unhandledrejection`).
//
// A fetch with a body to a host whose DNS lookup fails makes workerd log "Uncaught Error: internal
// error" by itself, once per fetch, even when the Worker catches the rejection (a plain Worker does
// too: the second test measures it); the package must add none of its own.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWorker } from "./workerd/harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const WebSocketClient = globalThis.WebSocket ?? (await import("ws")).default;

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let mf;
let inspector;
const uncaught = [];
let closedPort;
before(async () => {
  closedPort = await freePort(); // nothing listens there: every connection is refused
  const inspectorPort = await freePort();
  mf = await startWorker(join(here, "workerd/failing-worker.mjs"), "failing-worker", {
    inspectorPort,
    // workerd's own stderr lines for each failed DNS lookup (the same for a plain fetch) stay out of
    // the test's output.
    handleRuntimeStdio: (stdout, stderr) => [stdout, stderr].forEach((stream) => stream.resume()),
  });
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json();
  const worker = targets.find((t) => new URL(t.webSocketDebuggerUrl).pathname.startsWith("/core:user:"));
  inspector = new WebSocketClient(worker.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    inspector.addEventListener("open", resolve);
    inspector.addEventListener("error", reject);
  });
  inspector.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data));
    if (message.method !== "Runtime.exceptionThrown") return;
    const { exception, text } = message.params.exceptionDetails;
    uncaught.push(exception?.description ?? text);
  });
  const enabled = new Promise((resolve) => inspector.addEventListener("message", resolve, { once: true }));
  inspector.send(JSON.stringify({ id: 1, method: "Runtime.enable" }));
  await enabled;
});
after(async () => {
  inspector?.close();
  await mf?.dispose();
});

/** The Worker's answer for `query`, and the uncaught errors logged meanwhile. */
async function run(query) {
  const from = uncaught.length;
  const response = await mf.dispatchFetch(`http://worker/?${new URLSearchParams(query)}`);
  const answer = await response.json();
  await new Promise((resolve) => setTimeout(resolve, 200)); // the inspector's messages trail the answer
  return { ...answer, uncaught: uncaught.slice(from) };
}

test("workerd: targets on a closed port fail every call with nothing uncaught in the log", async () => {
  const { outcomes, unhandled, uncaught } = await run({ dead: `http://127.0.0.1:${closedPort}` });
  assert.deepEqual(outcomes, { fetch: "TypeError", events: "TypeError", chat: "AllTargetsFailedError", chatStream: "AllTargetsFailedError" });
  assert.deepEqual(unhandled, [], "promise rejections nobody handled");
  assert.deepEqual(uncaught, [], "uncaught errors in the Worker's log");
});

test("workerd: a target whose DNS lookup fails logs no more than a plain fetch does", async () => {
  const dead = "http://unreachable.invalid"; // .invalid never resolves (RFC 2606)
  const plain = await run({ dead, plain: "" });
  assert.deepEqual(plain.unhandled, []);
  // workerd's own log line, for a fetch the Worker caught (0 if a later workerd stops writing it).
  const perFetch = plain.uncaught.length;
  assert.ok(perFetch <= 1, plain.uncaught.join("; "));
  const { outcomes, unhandled, uncaught } = await run({ dead });
  assert.deepEqual(outcomes, { fetch: "TypeError", events: "TypeError", chat: "AllTargetsFailedError", chatStream: "AllTargetsFailedError" });
  assert.deepEqual(unhandled, [], "promise rejections nobody handled");
  // Each attempt with a body (fetch 2, chat 4, chatStream 4; the events GET has none) logs what a
  // plain fetch logs, and nothing else.
  assert.equal(uncaught.length, 10 * perFetch, uncaught.join("; "));
  for (const line of uncaught) assert.match(line, /^Uncaught Error: internal error; reference = \w+$/);
});
