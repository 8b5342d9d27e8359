// The live dashboard: breaker rows with a countdown to the next probe, counters from stats(), the
// rate-limit bucket, the 60-second chart and the event log. `event()` takes every client event as it
// happens; `render()` runs ~4 times a second with fresh stats().

import { Timeline, drawChart } from "./chart.js";

const $ = (id) => document.getElementById(id);
const MAX_LOG = 200;

const fmtInt = (n) => Math.round(n).toLocaleString("en-US");
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s` : `${Math.round(ms)} ms`);
export const fmtUsd = (usd) =>
  usd === 0 ? "$0" : usd < 0.0001 ? `$${usd.toFixed(6)}` : usd < 1 ? `$${usd.toFixed(5)}` : `$${usd.toFixed(2)}`;
/** "120 / 480 ms", "0.9 / 2.1 s" */
const fmtPair = (a, b) =>
  b >= 1000 ? `${(a / 1000).toFixed(1)} / ${(b / 1000).toFixed(1)} s` : `${Math.round(a)} / ${Math.round(b)} ms`;
const clock = (at) => {
  const d = new Date(at);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3).slice(0, 1)}`;
};

export class Dashboard {
  /**
   * targets: { name -> { provider, model } }; resetTimeoutMs, failureThreshold: the breaker options;
   * targetOf(url) -> target name; watch: the breaker key whose open periods shade the chart.
   */
  constructor({ targets, resetTimeoutMs, failureThreshold, targetOf, watch }) {
    this.targets = targets;
    this.resetTimeoutMs = resetTimeoutMs;
    this.failureThreshold = failureThreshold;
    this.targetOf = targetOf;
    this.watch = watch;
    this.timeline = new Timeline();
    this.fallbacks = 0;
    this.lastHedge = null;
    this.chainKey = "";
    this.verbose = $("log-verbose");
    this.verbose.addEventListener("change", () => $("log").classList.toggle("verbose", this.verbose.checked));
    $("breaker-config").textContent = `per target · ${resetTimeoutMs / 1000} s cool-down`;
    $("breaker-config").title = "breaker: { failureThreshold, resetTimeoutMs }";
  }

  /** A client event (any type). `client` is the pool entry it came from; `active` whether it is in use. */
  event(e, client, active) {
    const now = Date.now();
    const target = e.url ? this.targetOf(e.url) : undefined;
    switch (e.type) {
      case "request":
        this.timeline.add("requests", now);
        this.log("request", `→ ${target} attempt ${e.attempt}`, { verbose: true });
        break;
      case "response":
        this.log("response", `← ${target} ${e.status} (attempt ${e.attempt}, ${fmtMs(e.elapsedMs)})`, {
          verbose: e.status < 400,
          level: e.status >= 400 ? "warn" : undefined,
        });
        break;
      case "retry": {
        this.timeline.add("retries", now);
        const why = e.reason === "status" ? `HTTP ${e.status}` : e.reason;
        this.log("retry", `${target}: attempt ${e.attempt} in ${fmtMs(e.delayMs)} after ${why}${e.fromServer ? " (server's Retry-After)" : ""}`);
        break;
      }
      case "breaker": {
        client.breakers[e.key] = { state: e.to, since: now };
        if (active && e.key === this.watch) this.timeline.breaker(e.to, now);
        const name = e.key.replace(/^target:/, "");
        const note = e.to === "open" ? ` — calls fail fast, probe in ${this.resetTimeoutMs / 1000} s` : e.to === "half-open" ? " — letting a probe through" : " — recovered";
        this.log("breaker", `${name}: ${e.from} → ${e.to}${note}`, { level: e.to === "open" ? "bad" : e.to === "closed" ? "good" : "warn", attrs: { state: e.to, key: e.key } });
        break;
      }
      case "cache": {
        const text = { hit: "hit — answered from IndexedDB", miss: "miss", store: "stored the answer in IndexedDB", stale: "stale entry served (upstream failed)" }[e.result] ?? e.result;
        this.log("cache", `${target ? `${target}: ` : ""}${text}`, { level: e.result === "hit" ? "good" : undefined, attrs: { result: e.result } });
        break;
      }
      case "rateLimited":
        if (e.rejected) this.timeline.add("rejected", now);
        this.log("rateLimited", e.rejected ? `rejected: the bucket needs ${fmtMs(e.waitMs)} (over maxWaitMs)` : `waiting ${fmtMs(e.waitMs)} for a token`, { level: e.rejected ? "bad" : "warn" });
        break;
      case "fallback":
        this.fallbacks += 1;
        this.timeline.add("fallbacks", now);
        this.log("fallback", `${e.from} → ${e.to}${e.reason ? ` (${e.reason})` : ""}`, { level: "warn" });
        break;
      case "hedge":
        this.lastHedge = e;
        this.log("hedge", `${e.from} ${fmtMs(e.afterMs)} late → asked ${e.to} too; ${e.winner ? `${e.winner} won` : "both failed"}`, {
          level: e.winner === e.to ? "good" : undefined,
          attrs: { winner: e.winner ?? "" },
        });
        break;
      case "budget":
        this.log("budget", `${e.user}: ${e.cap} at ${Math.round(e.used * 100)}%`, { level: "warn" });
        break;
      case "error": {
        const error = e.error ?? {};
        if (error.code === "CIRCUIT_OPEN" || error.name === "CircuitOpenError") this.timeline.add("rejected", now);
        // The first clause of the message is enough here; the whole of it is the line's tooltip.
        const message = String(error.message ?? "");
        const short = message.split(/[;(]/)[0].trim();
        this.log("error", `${target ? `${target}: ` : ""}${error.code ?? error.name ?? "Error"}${short ? ` — ${short}` : ""}`, {
          level: "bad",
          title: `${error.name ?? "Error"}: ${message}`,
        });
        break;
      }
      default:
        this.log(e.type, JSON.stringify(e));
    }
  }

  /** Adds a line to the event log (newest first). */
  log(type, text, { verbose = false, level, attrs = {}, title } = {}) {
    const list = $("log");
    const item = document.createElement("li");
    item.dataset.type = type;
    if (verbose) item.classList.add("verbose-only");
    if (level) item.dataset.level = level;
    for (const [k, v] of Object.entries(attrs)) item.dataset[k] = v;
    const time = document.createElement("time");
    time.textContent = clock(Date.now());
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = type === "rateLimited" ? "rate limit" : type;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    if (title) item.title = title;
    item.append(time, tag, body);
    list.prepend(item);
    while (list.childElementCount > MAX_LOG) list.lastElementChild.remove();
  }

  /** Rebuilds the breaker rows for a chain (a list of target names). */
  setChain(chain) {
    const key = chain.join(">");
    if (key === this.chainKey) return;
    this.chainKey = key;
    const list = $("breakers");
    list.replaceChildren(
      ...chain.map((name, i) => {
        const t = this.targets[name];
        const li = document.createElement("li");
        li.className = "breaker";
        li.dataset.state = "closed";
        li.setAttribute("data-testid", `breaker-${name}`);
        li.innerHTML = `
          <span class="b-order" aria-hidden="true">${i + 1}</span>
          <span class="b-name"><strong></strong><small></small></span>
          <span class="pill" data-role="state">closed</span>
          <span class="b-detail" data-role="detail"></span>
          <span class="b-bar" aria-hidden="true"><span data-role="bar"></span></span>
          <span class="b-limit" data-role="limit" data-testid="learned-${name}" hidden></span>`;
        li.querySelector("strong").textContent = name;
        li.querySelector("small").textContent = t.provider;
        li.querySelector(".b-name").title = `${t.provider} · ${t.model}`;
        return li;
      }),
    );
  }

  /** Fresh numbers: `all` is every client's stats(), `active` the client in use (with its stats). */
  render(all, active) {
    const now = Date.now();
    const sum = (f) => all.reduce((acc, s) => acc + f(s), 0);
    const requests = sum((s) => s.requests);
    const successes = sum((s) => s.successes);
    const failures = sum((s) => s.failures);
    const retries = sum((s) => s.retries);
    const hits = sum((s) => s.cache.hits);
    const misses = sum((s) => s.cache.misses);
    const input = sum((s) => s.usage.inputTokens);
    const output = sum((s) => s.usage.outputTokens);
    const cost = sum((s) => s.usage.costUsd);
    const rejected = sum((s) => s.rejected.breaker + s.rejected.rateLimit + s.rejected.budget);
    const stats = active.stats;

    set("m-requests", fmtInt(requests));
    set("m-requests-sub", `${fmtInt(successes)} ok · ${fmtInt(failures)} failed${rejected ? ` · ${fmtInt(rejected)} rejected` : ""}`);
    set("m-retries", fmtInt(retries));
    set("m-fallbacks", fmtInt(this.fallbacks));
    const hedges = { started: sum((s) => s.hedges.started), won: sum((s) => s.hedges.won) };
    set("m-hedges", `${fmtInt(hedges.won)} / ${fmtInt(hedges.started)}`);
    const last = this.lastHedge;
    set("m-hedges-sub", last ? `last: ${last.winner ?? "none"} won (${last.from} ${fmtMs(last.afterMs)} late)` : "won / started");
    set("m-cache", hits + misses ? `${Math.round((hits / (hits + misses)) * 100)}%` : "–");
    set("m-cache-sub", `${fmtInt(hits)} hit${hits === 1 ? "" : "s"} · ${fmtInt(misses)} miss${misses === 1 ? "" : "es"}`);
    set("m-latency", stats.requests ? fmtPair(stats.latencyMs.p50, stats.latencyMs.p95) : "–");
    set("m-tokens", fmtInt(input + output));
    set("m-tokens-sub", `${fmtInt(input)} in · ${fmtInt(output)} out`);
    set("m-cost", fmtUsd(cost));
    const bucket = stats.rateLimit;
    if (bucket) {
      set("m-bucket", `${bucket.tokens.toFixed(1)} / ${bucket.capacity}`);
      const meter = $("m-bucket-meter");
      meter.max = bucket.capacity;
      meter.low = bucket.capacity / 4;
      meter.optimum = bucket.capacity;
      meter.value = bucket.tokens;
    } else set("m-bucket", "off");

    for (const li of $("breakers").children) {
      const name = li.getAttribute("data-testid").replace(/^breaker-/, "");
      const key = `target:${name}`;
      const row = stats.breakers.find((b) => b.key === key);
      const state = row?.state ?? "closed";
      const since = active.breakers[key]?.since;
      let detail;
      let fill = 0;
      if (state === "open") {
        const left = since === undefined ? undefined : this.resetTimeoutMs - (now - since);
        detail = left === undefined ? "failing fast" : left > 0 ? `probe in ${(left / 1000).toFixed(1)} s` : "probe on next call";
        fill = left === undefined ? 1 : Math.max(0, left / this.resetTimeoutMs);
      } else if (state === "half-open") {
        detail = "probing — next result decides";
        fill = 1;
      } else {
        const failures = row?.failures ?? 0;
        detail = row ? `${failures} / ${this.failureThreshold} failures` : "not called yet";
        fill = failures / this.failureThreshold;
      }
      if (li.dataset.state !== state) {
        li.dataset.state = state;
        li.querySelector('[data-role="state"]').textContent = state;
      }
      li.querySelector('[data-role="detail"]').textContent = detail;
      li.querySelector('[data-role="bar"]').style.width = `${Math.min(1, fill) * 100}%`;
      const learned = stats.learnedLimits?.find((l) => l.key === key);
      const limit = li.querySelector('[data-role="limit"]');
      limit.hidden = !learned;
      if (learned) limit.textContent = describeLearned(learned);
    }

    const chart = drawChart($("chart"), this.timeline, now);
    const t = chart.totals;
    set(
      "chart-summary",
      t.requests || t.retries || t.fallbacks || t.rejected
        ? [`${t.requests} attempts`, `${t.retries} retries`, `${t.fallbacks} fallbacks`, t.rejected ? `${t.rejected} rejected` : ""].filter(Boolean).join(" · ")
        : "no traffic in the last minute",
    );
  }

  /** The chart follows the active client's watched breaker. */
  follow(client) {
    const b = client.breakers[this.watch];
    this.timeline.breaker(b?.state ?? "closed", Date.now());
  }
}

/** What the provider's headers said is left, as the target's bucket adopted it. */
function describeLearned({ remainingRequests, remainingTokens, resetInMs }) {
  const left = [
    remainingRequests === null ? "" : `${fmtInt(remainingRequests)} request${remainingRequests === 1 ? "" : "s"}`,
    remainingTokens === null ? "" : `${fmtInt(remainingTokens)} tokens`,
  ].filter(Boolean);
  const held = resetInMs > 0 ? ` · holds calls ${(resetInMs / 1000).toFixed(1)} s` : "";
  return `provider says: ${left.length ? `${left.join(", ")} left` : "full again"}${held}`;
}

function set(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}
