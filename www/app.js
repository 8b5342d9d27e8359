// The demo page: one chat request through ResilientClient, with the client's events shown as they
// happen so a person can watch retries and timeouts at work.
import { ResilientClient } from "resilient-llm";

const config = await (await fetch("config.json")).json();
const $ = (id) => document.getElementById(id);
$("upstream").textContent = config.mock ? "Upstream: the embedded mock LLM." : `Upstream: ${config.baseUrl}`;

const client = new ResilientClient({
  baseUrl: config.baseUrl,
  headers: config.apiKey ? { authorization: `Bearer ${config.apiKey}` } : {},
  timeout: { attemptMs: 1500 },
  retry: { maxRetries: 3, baseDelayMs: 250 },
});

const log = (text) => {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(item);
};
client.on("request", (e) => log(`attempt ${e.attempt} → ${e.url}`));
client.on("response", (e) => log(`attempt ${e.attempt} ← ${e.status} after ${e.elapsedMs} ms`));
client.on("retry", (e) => log(`retry in ${e.delayMs} ms (${e.reason}${e.status ? " " + e.status : ""}${e.fromServer ? ", server's hint" : ""})`));
client.on("breaker", (e) => log(`breaker ${e.key}: ${e.from} → ${e.to}`));
client.on("error", (e) => log(`error: ${e.error.message}`));

let faultKey = 0;
$("chat").addEventListener("submit", async (event) => {
  event.preventDefault();
  const fault = document.querySelector("input[name=fault]:checked").value;
  const headers = { "content-type": "application/json" };
  if (fault && config.mock) headers["x-mock-fault"] = `${fault};key=demo-${Date.now()}-${faultKey++}`;
  $("send").disabled = true;
  $("answer").textContent = "…";
  const started = performance.now();
  try {
    const response = await client.fetch("/v1/chat/completions", {
      method: "POST",
      headers,
      body: JSON.stringify({ model: config.model, messages: [{ role: "user", content: $("prompt").value }] }),
    });
    const body = await response.json();
    $("answer").textContent = response.ok ? body.choices[0].message.content : `HTTP ${response.status}: ${JSON.stringify(body.error ?? body)}`;
  } catch (error) {
    $("answer").textContent = `${error.name}: ${error.message}`;
  } finally {
    const stats = client.stats();
    $("status").textContent = `${Math.round(performance.now() - started)} ms · requests ${stats.requests} · retries ${stats.retries} · p50 ${stats.latencyMs.p50} ms`;
    $("send").disabled = false;
  }
});
