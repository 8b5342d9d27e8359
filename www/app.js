// The demo page: a chat over ResilientClient.chatStream() with a live dashboard of what the client
// does underneath (breakers, retries, fallbacks, cache, rate limit, cost), and fault switches for the
// embedded mock LLM. The model can call one tool, get_time (ui/tools.js), which the page answers: the
// call, its result and the answer that uses it show in the chat. Plain ES modules; "sturdy-llm"
// resolves through the page's import map.
import { ResilientClient } from "sturdy-llm";
import { renderMarkdown, escapeHtml } from "./ui/markdown.js";
import { Dashboard, fmtUsd } from "./ui/dashboard.js";
import { setupFaults } from "./ui/faults.js";
import { TOOLS, runTool, toolCallElement } from "./ui/tools.js";

const $ = (id) => document.getElementById(id);
let ready = false; // set once the client and the fault panel are up
let current = null; // the call in flight: { controller, onEvent }
const config = await (await fetch("config.json", { cache: "no-store" })).json();
// With a real server, baseUrl is this server's /upstream route (it adds the API key there; the page never has it).
// An OpenAI-compatible target's baseUrl carries the version path, as the OpenAI SDK takes it; an
// Anthropic one does not, as the Anthropic SDK takes it.
const baseUrl = new URL(config.baseUrl, location.origin).href.replace(/\/$/, "");

// ---------------------------------------------------------------------------
// Targets, chains and client options
// ---------------------------------------------------------------------------

const BREAKER = { failureThreshold: 3, resetTimeoutMs: 10_000 };
const OPTIONS = {
  breaker: BREAKER,
  retry: { maxRetries: 2, baseDelayMs: 200 },
  timeout: { firstByteMs: 4_000, idleMs: 5_000, totalMs: 60_000 },
  rateLimit: { requestsPerMinute: 60, burst: 10, maxWaitMs: 5_000 },
  // A first token 1 s late asks the backup too; the first to answer wins (the fault panel's "Slow
  // sometimes" shows it).
  hedge: { afterMs: 1_000 },
  cache: { store: "indexeddb", ttlMs: 60 * 60 * 1000, namespace: "resilient-llm-demo" },
};

// With the mock, two targets on one server: /t/<name>/ scopes the mock's faults and counters. The
// backup speaks the Anthropic protocol, so a fallback also crosses providers. Prices are list prices
// of comparable real models, so the cost column means something.
const TARGETS = config.mock
  ? {
      primary: { name: "primary", provider: "openai", baseUrl: `${baseUrl}/t/primary/v1`, model: config.model,
        pricing: { inputPerMTok: 2.5, outputPerMTok: 10 } },
      backup: { name: "backup", provider: "anthropic", baseUrl: `${baseUrl}/t/backup`, model: "mock-claude",
        pricing: { inputPerMTok: 3, outputPerMTok: 15 } },
    }
  : {
      upstream: { name: "upstream", provider: "openai", baseUrl: `${baseUrl}/v1`, model: config.model },
    };
const CHAINS = config.mock
  ? [
      { id: "primary,backup", label: "primary → backup" },
      { id: "primary", label: "primary only" },
      { id: "backup", label: "backup only" },
    ]
  : [{ id: "upstream", label: `${config.model} (one target)` }];
const SYSTEM = {
  role: "system",
  content: "You are a concise, helpful assistant. Format answers with Markdown. For the time in a city, call get_time.",
};
/** Tool round trips per answer; the last round may not call tools, so every answer ends in words. */
const MAX_TOOL_ROUNDS = 3;
const TYPING = `<span class="typing"><span class="visually-hidden">Waiting for the first token…</span><i></i><i></i><i></i></span>`;

const REASONS = {
  SERVER: "5xx", CIRCUIT_OPEN: "breaker open", RATE_LIMITED: "429", TIMEOUT: "timeout", NETWORK: "network",
  OVERLOADED: "overloaded", QUOTA_EXHAUSTED: "out of quota", INCOMPLETE_STREAM: "stream cut", NOT_FOUND: "404",
};
const reasonLabel = (code) => REASONS[code] ?? (code ? code.toLowerCase().replace(/_/g, " ") : "error");

const targetOf = (url) =>
  Object.values(TARGETS)
    .filter((t) => url.startsWith(`${t.baseUrl}/`))
    .sort((a, b) => b.baseUrl.length - a.baseUrl.length)[0]?.name ?? new URL(url).host;

// ---------------------------------------------------------------------------
// Clients: one per (chain, token pace). A chain is fixed when a client is made, and so are target
// headers (the mock's x-mock-chunk-delay-ms), so switching either picks (or makes) another client;
// each keeps its own breakers, and the dashboard totals add them all up.
// ---------------------------------------------------------------------------

const dashboard = new Dashboard({
  targets: TARGETS,
  resetTimeoutMs: BREAKER.resetTimeoutMs,
  failureThreshold: BREAKER.failureThreshold,
  targetOf,
  watch: config.mock ? "target:primary" : "target:upstream",
});

const pool = {
  clients: new Map(),
  chain: CHAINS[0].id,
  pace: config.mock ? 40 : 0,
  active: null,
  key() {
    return `${this.chain}|${this.pace}`;
  },
  /** The client for the current chain and pace (made on first use). */
  use() {
    const key = this.key();
    let entry = this.clients.get(key);
    if (!entry) {
      const headers = this.pace ? { "x-mock-chunk-delay-ms": String(this.pace) } : undefined;
      const targets = this.chain.split(",").map((name) => ({ ...TARGETS[name], ...(headers ? { headers } : {}) }));
      const client = new ResilientClient({ ...OPTIONS, targets });
      entry = { key, id: this.clients.size + 1, client, chain: this.chain.split(","), breakers: {}, stats: null };
      for (const type of ["request", "response", "retry", "breaker", "cache", "rateLimited", "fallback", "hedge", "budget", "error"]) {
        client.on(type, (e) => {
          dashboard.event(e, entry, entry === this.active);
          current?.onEvent(e);
        });
      }
      this.clients.set(key, entry);
    }
    if (this.active !== entry) {
      this.active = entry;
      dashboard.setChain(entry.chain);
      dashboard.follow(entry);
    }
    return entry;
  },
};

// ---------------------------------------------------------------------------
// Chat
// ---------------------------------------------------------------------------

const messagesEl = $("messages");
const prompt = $("prompt");
const sendBtn = $("send");
const stopBtn = $("stop");
let history = [];
let conversation = 0; // bumped by "New chat", so a late answer never lands in the next conversation

const nearBottom = () => messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 80;
const scrollDown = (force) => {
  if (force || nearBottom()) messagesEl.scrollTop = messagesEl.scrollHeight;
};

function addUserMessage(text) {
  const article = document.createElement("article");
  article.className = "msg msg-user";
  article.setAttribute("data-testid", "user-message");
  article.innerHTML = `<h3 class="visually-hidden">You</h3><div class="bubble"></div>`;
  article.querySelector(".bubble").textContent = text;
  messagesEl.append(article);
}

function addAssistantMessage() {
  const article = document.createElement("article");
  article.className = "msg msg-assistant";
  article.setAttribute("data-testid", "assistant-message");
  article.dataset.state = "waiting";
  article.setAttribute("aria-busy", "true");
  article.innerHTML = `
    <div class="avatar" aria-hidden="true">AI</div>
    <div class="body">
      <h3 class="visually-hidden">Assistant</h3>
      <div class="tools" data-testid="tool-calls"></div>
      <div class="md" data-testid="answer">${TYPING}</div>
      <p class="live-status" data-testid="live-status"></p>
      <p class="meta" data-testid="message-meta"></p>
    </div>`;
  messagesEl.append(article);
  return article;
}

const badge = (cls, text, title) =>
  `<span class="badge ${cls}"${title ? ` title="${escapeHtml(title)}"` : ""}>${escapeHtml(text)}</span>`;

function setBusy(busy) {
  sendBtn.hidden = busy;
  stopBtn.hidden = !busy;
  document.body.classList.toggle("busy", busy);
  updateSendEnabled();
}
function updateSendEnabled() {
  sendBtn.disabled = !prompt.value.trim() || Boolean(current) || !ready;
}

async function send(text) {
  text = text.trim();
  if (!text || current || !ready) return;
  $("welcome")?.remove();
  const entry = pool.use();
  const deterministic = $("deterministic").checked;
  const convo = conversation;
  const remember = (...turns) => convo === conversation && history.push(...turns);
  const question = { role: "user", content: text };
  addUserMessage(text);
  const article = addAssistantMessage();
  const md = article.querySelector(".md");
  const toolsEl = article.querySelector(".tools");
  const live = article.querySelector(".live-status");
  const meta = article.querySelector(".meta");
  scrollDown(true);
  prompt.value = "";
  autosize();

  const controller = new AbortController();
  const started = performance.now();
  let firstAt;
  let answer = "";
  let frame = 0;
  const seen = { retries: 0, fallbacks: [], hedges: [], targets: new Set() };
  const draw = () => {
    frame = 0;
    const follow = nearBottom();
    md.innerHTML = renderMarkdown(answer);
    if (follow) scrollDown(true);
  };
  current = {
    controller,
    onEvent(e) {
      if (e.type === "request") {
        const t = targetOf(e.url);
        seen.targets.add(t);
        live.textContent = e.attempt > 1 ? `${t}: attempt ${e.attempt}…` : `asking ${t}…`;
      } else if (e.type === "retry") {
        seen.retries += 1;
        live.textContent = `${targetOf(e.url)} answered ${e.reason === "status" ? e.status : e.reason} — retrying in ${Math.round(e.delayMs)} ms`;
      } else if (e.type === "fallback") {
        seen.fallbacks.push(e);
        live.textContent = `${e.from} failed (${reasonLabel(e.reason)}) — falling back to ${e.to}`;
      } else if (e.type === "hedge") {
        seen.hedges.push(e);
        live.textContent = e.winner ? `${e.from} was ${Math.round(e.afterMs)} ms late — ${e.winner} answered first` : "";
      } else if (e.type === "rateLimited" && !e.rejected) {
        live.textContent = `rate limit: waiting ${Math.round(e.waitMs)} ms for a token`;
      }
    },
  };
  setBusy(true);
  prompt.focus();

  const usage = { inputTokens: 0, outputTokens: 0, costUsd: 0 }; // over every round of tool calls
  const finish = (state, { result, error } = {}) => {
    cancelAnimationFrame(frame);
    draw();
    article.dataset.state = state;
    article.setAttribute("aria-busy", "false");
    live.textContent = "";
    const elapsed = performance.now() - started;
    const parts = [];
    if (result) {
      article.dataset.target = result.target;
      article.dataset.cached = String(result.cached);
      parts.push(badge(`target target-${result.target}`, result.target, `${result.provider} · ${result.model}`));
      if (result.cached) parts.push(badge("cache", "⚡ from cache", "replayed from IndexedDB, no request sent"));
      for (const f of seen.fallbacks) parts.push(badge("fallback", `↪ fell back from ${f.from} · ${reasonLabel(f.reason)}`, f.reason));
      for (const h of seen.hedges) {
        const text = h.winner === h.to ? `⇉ hedged: ${h.to} beat ${h.from}` : `⇉ hedged on ${h.to}; ${h.from} won`;
        parts.push(badge("hedge", text, `${h.from} had no first token after ${h.afterMs} ms, so ${h.to} was asked too; the other request was cancelled`));
      }
      parts.push(`<span>${escapeHtml(result.model)}</span>`);
      parts.push(`<span>${usage.inputTokens} → ${usage.outputTokens} tokens</span>`);
      if (usage.costUsd > 0 || !result.cached) parts.push(`<span>${fmtUsd(usage.costUsd)}</span>`);
      if (firstAt !== undefined) parts.push(`<span title="time to first token">first token ${Math.round(firstAt - started)} ms</span>`);
      parts.push(`<span>${(elapsed / 1000).toFixed(2)} s</span>`);
      if (result.attempts > 1) parts.push(`<span>${result.attempts} attempts</span>`);
      if (result.finishReason && !["stop", "end_turn"].includes(result.finishReason)) parts.push(`<span>finish: ${escapeHtml(result.finishReason)}</span>`);
    } else {
      article.dataset.cached = "false";
      const via = [...seen.targets].at(-1);
      if (via) {
        article.dataset.target = via;
        parts.push(badge(`target target-${via}`, via));
      }
      if (state === "stopped") parts.push(badge("stopped", "■ stopped", "you pressed Stop: the request was cancelled upstream"));
      if (error) {
        parts.push(badge("error", error.name || "Error"));
        const p = document.createElement("p");
        p.className = "error-text";
        p.setAttribute("role", "alert");
        p.textContent = error.message;
        md.after(p);
      }
      for (const f of seen.fallbacks) parts.push(badge("fallback", `↪ fell back from ${f.from} · ${reasonLabel(f.reason)}`, f.reason));
      if (answer) parts.push(`<span>${answer.split(/\s+/).filter(Boolean).length} words received</span>`);
      if (seen.retries) parts.push(`<span>${seen.retries} retr${seen.retries === 1 ? "y" : "ies"}</span>`);
      parts.push(`<span>${(elapsed / 1000).toFixed(2)} s</span>`);
    }
    meta.innerHTML = parts.join("");
    if (!answer) md.innerHTML = state === "stopped" ? `<p class="muted">Stopped before the first token.</p>` : "";
    current = null;
    setBusy(false);
    scrollDown(false);
  };

  const messages = [SYSTEM, ...history, question];
  const turns = []; // this answer's tool round trips: the assistant's calls, then the page's results
  try {
    let result;
    for (let round = 1; ; round += 1) {
      const stream = entry.client.chatStream({
        messages: [...messages, ...turns],
        tools: TOOLS,
        ...(round === MAX_TOOL_ROUNDS ? { toolChoice: "none" } : {}),
        temperature: deterministic ? 0 : 0.7,
        user: "demo",
        signal: controller.signal,
      });
      for await (const delta of stream) {
        if (firstAt === undefined) {
          firstAt = performance.now();
          md.replaceChildren(); // the typing dots go
          article.dataset.state = "streaming";
          live.textContent = "";
        }
        const named = delta.toolCalls?.find((call) => call.name);
        if (named) live.textContent = `calling ${named.name}…`;
        if (delta.text) {
          answer += delta.text;
          frame ||= requestAnimationFrame(draw);
        }
      }
      result = await stream.result;
      usage.inputTokens += result.usage.inputTokens;
      usage.outputTokens += result.usage.outputTokens;
      usage.costUsd += result.costUsd;
      if (!result.toolCalls.length) break;
      // The page answers the calls; the next round sends them and their results back to the model.
      const said = result.text || answer;
      const results = result.toolCalls.map((call) => ({ role: "tool", toolCallId: call.id, content: runTool(call) }));
      turns.push({ role: "assistant", content: result.text || null, toolCalls: result.toolCalls }, ...results);
      result.toolCalls.forEach((call, i) => {
        toolsEl.append(toolCallElement(call, results[i].content, i === 0 ? said : ""));
        dashboard.log("tool", `${result.target} called ${call.name}(${call.arguments}); the page answered ${results[i].content}`);
      });
      cancelAnimationFrame(frame);
      frame = 0;
      answer = "";
      md.innerHTML = TYPING;
      live.textContent = "";
    }
    answer = result.text || answer;
    remember(question, ...turns, { role: "assistant", content: answer });
    finish("done", { result });
    dashboard.log("chat", `answered by ${result.target}${result.cached ? " from cache" : ""}${turns.length ? ` after ${turns.filter((t) => t.role === "tool").length} tool call(s)` : ""}: ${usage.outputTokens} tokens, ${fmtUsd(usage.costUsd)}`, { level: "good" });
  } catch (error) {
    if (controller.signal.aborted) {
      // Aborting mid-stream rejects with IncompleteStreamError (partialText); before it, AbortError.
      answer = error?.partialText || answer;
      if (answer) remember(question, ...turns, { role: "assistant", content: answer });
      finish("stopped");
      dashboard.log("chat", `stopped by the user after ${answer.split(/\s+/).filter(Boolean).length} words; the request was cancelled`, { attrs: { result: "stopped" } });
    } else {
      answer = error?.partialText || answer;
      finish("error", { error });
      dashboard.log("chat", `failed: ${error?.name ?? "Error"} — ${error?.message ?? error}`, { level: "bad" });
    }
  }
}

function stop() {
  if (!current) return false;
  current.controller.abort();
  return true;
}

// ---------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------

function autosize() {
  prompt.style.height = "auto";
  prompt.style.height = `${Math.min(prompt.scrollHeight, 200)}px`;
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  send(prompt.value);
});
prompt.addEventListener("input", () => {
  autosize();
  updateSendEnabled();
});
prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send(prompt.value);
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && stop()) event.preventDefault();
});
stopBtn.addEventListener("click", () => {
  stop();
  prompt.focus();
});
messagesEl.addEventListener("click", (event) => {
  const chip = event.target.closest("[data-suggest]");
  if (chip) send(chip.dataset.suggest);
});

const chainSelect = $("chain");
for (const chain of CHAINS) chainSelect.append(new Option(chain.label, chain.id));
if (CHAINS.length < 2) $("chain-field").hidden = true;
if (!Object.values(TARGETS).some((t) => t.pricing)) $("m-cost-sub").textContent = "no pricing set";
chainSelect.addEventListener("change", () => {
  pool.chain = chainSelect.value;
  const entry = pool.use();
  dashboard.log("config", `fallback chain: ${entry.chain.join(" → ")} (client #${entry.id})`);
});

$("new-chat").addEventListener("click", () => {
  stop();
  conversation += 1;
  history = [];
  messagesEl.replaceChildren();
  dashboard.log("config", "new conversation (history cleared)");
  prompt.focus();
});

$("clear-cache").addEventListener("click", async () => {
  const button = $("clear-cache");
  button.disabled = true;
  try {
    await Promise.all([...pool.clients.values()].map((entry) => entry.client.clearCache()));
    dashboard.log("cache", "cleared (IndexedDB emptied)", { attrs: { result: "cleared" } });
    toast("Cache cleared");
  } catch (error) {
    dashboard.log("error", `clearCache: ${error.message}`, { level: "bad" });
  } finally {
    button.disabled = false;
  }
});

let toastTimer = 0;
function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 2200);
}

// The upstream line in the header.
$("upstream").innerHTML = config.mock
  ? `${badge("live", "mock LLM")} <span><b>primary</b> (OpenAI API) → <b>backup</b> (Anthropic API)<span class="url"> on <code>${escapeHtml(config.baseUrl)}</code></span></span>`
  : `${badge("live real", "live")} <span><code>${escapeHtml(config.upstream)}</code> · model <b>${escapeHtml(config.model)}</b></span>`;

if (config.mock) {
  const faults = setupFaults({
    mockUrl: baseUrl,
    onChange: (text) => dashboard.log("faults", text, { level: text.startsWith("reset") || text === "no faults" ? "good" : "warn" }),
    onPace: (ms) => {
      pool.pace = ms;
      const entry = pool.use();
      dashboard.log("config", `token pace ${ms} ms: client #${entry.id} (target header x-mock-chunk-delay-ms)`);
    },
    onError: (error) => dashboard.log("error", `mock control: ${error.message}`, { level: "bad" }),
  });
  pool.pace = faults.pace();
  await faults.ready;
}

pool.use();
ready = true;
const tick = () => {
  for (const entry of pool.clients.values()) entry.stats = entry.client.stats();
  dashboard.render([...pool.clients.values()].map((e) => e.stats), pool.active);
};
tick();
setInterval(tick, 250);

$("app").setAttribute("aria-busy", "false");
document.body.dataset.ready = "true";
updateSendEnabled();
dashboard.log("config", `client ready: ${pool.active.chain.join(" → ")}, breaker ${BREAKER.failureThreshold} failures / ${BREAKER.resetTimeoutMs / 1000} s, 2 retries, cache in IndexedDB`);
autosize();
prompt.focus();
