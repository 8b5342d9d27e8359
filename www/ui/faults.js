// Fault controls for the mock LLM: the form drives POST /control/faults (one config per target) and
// POST /control/reset; GET /control/stats is polled for the mock's own view (requests, in flight).

const $ = (id) => document.getElementById(id);

const SLIDERS = {
  "fault-error-rate": (v) => `${v}%`,
  "fault-429-rate": (v) => `${v}%`,
  "fault-retry-after": (v) => `${(v / 1000).toFixed(1)} s`,
  "fault-latency": (v) => (v >= 1000 ? `${(v / 1000).toFixed(v % 1000 ? 2 : 1)} s` : `${v} ms`),
  "fault-slow": (v) => `${v}%`,
  "fault-stall": (v) => `${v}%`,
  "fault-server-limit": (v) => (v ? `${v} / min` : "off"),
  "fault-pace": (v) => `${v} ms`,
};
/** How late the "Slow sometimes" answers are (the client hedges after 1 s). */
const SLOW_MS = 2000;
const DEFAULTS = {
  "fault-outage": false, "fault-backup-outage": false, "fault-error-rate": 0, "fault-429-rate": 0,
  "fault-retry-after": 1000, "fault-latency": 0, "fault-slow": 0, "fault-stall": 0, "fault-server-limit": 0, "fault-pace": 40,
};

/**
 * Wires the panel. `onChange(description)` is told what was applied (for the event log), `onPace(ms)`
 * when the token pace changes. Returns { pace(), reset(), stop() }.
 */
export function setupFaults({ mockUrl, onChange, onPace, onError, onStats }) {
  const panel = $("faults");
  panel.hidden = false;
  panel.dataset.applied = "pending";
  let pending = null;
  let sent = Promise.resolve();

  const num = (id) => Number($(id).value);
  const showOutputs = () => {
    for (const [id, format] of Object.entries(SLIDERS)) $(`${id}-out`).textContent = format(num(id));
    panel.classList.toggle("has-outage", $("fault-outage").checked || $("fault-backup-outage").checked);
    $("fault-retry-after").closest(".slider").classList.toggle("dim", num("fault-429-rate") === 0);
  };

  const primaryConfig = () => ({
    target: "primary",
    outage: $("fault-outage").checked,
    errorRate: num("fault-error-rate") / 100,
    rate429: num("fault-429-rate") / 100,
    retryAfterMs: num("fault-retry-after"),
    latencyMs: num("fault-latency"),
    // A fraction of the primary's answers queue 2 s before their headers: the client hedges them.
    slowRate: num("fault-slow") / 100,
    slowMs: SLOW_MS,
    stallRate: num("fault-stall") / 100,
    // A server-side limit whose answers report what is left (the client learns it from the headers).
    ...(num("fault-server-limit") ? { limit: `${num("fault-server-limit")}/1m` } : {}),
  });
  const backupConfig = () => ({ target: "backup", outage: $("fault-backup-outage").checked });

  const post = async (path, body) => {
    const response = await fetch(`${mockUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body ?? {}),
    });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  };

  const describe = (cfg, backup) => {
    const parts = [];
    if (cfg.outage) parts.push("primary outage");
    if (backup.outage) parts.push("backup outage");
    if (cfg.errorRate) parts.push(`${Math.round(cfg.errorRate * 100)}% errors`);
    if (cfg.rate429) parts.push(`${Math.round(cfg.rate429 * 100)}% 429 (Retry-After ${cfg.retryAfterMs} ms)`);
    if (cfg.latencyMs) parts.push(`${cfg.latencyMs} ms latency`);
    if (cfg.slowRate) parts.push(`${Math.round(cfg.slowRate * 100)}% slow by ${cfg.slowMs / 1000} s`);
    if (cfg.stallRate) parts.push(`${Math.round(cfg.stallRate * 100)}% stalls`);
    if (cfg.limit) parts.push(`server limit ${cfg.limit.replace("/1m", " per minute")}`);
    return parts.length ? parts.join(", ") : "no faults";
  };

  /** Applies the form to the mock (changes in quick succession collapse into one post per target). */
  const apply = () => {
    showOutputs();
    panel.dataset.applied = "pending";
    if (pending) return sent;
    pending = true;
    sent = sent
      .then(async () => {
        await new Promise((r) => setTimeout(r, 30));
        pending = null;
        const primary = primaryConfig();
        const backup = backupConfig();
        await post("/control/faults", primary);
        await post("/control/faults", backup);
        if (!pending) panel.dataset.applied = "true";
        onChange(describe(primary, backup));
      })
      .catch((error) => {
        pending = null;
        onError(error);
      });
    return sent;
  };

  for (const id of Object.keys(DEFAULTS)) {
    if (id === "fault-pace") continue;
    const input = $(id);
    input.addEventListener("input", showOutputs);
    input.addEventListener("change", apply);
  }
  $("fault-pace").addEventListener("change", () => {
    showOutputs();
    onPace(num("fault-pace"));
  });

  $("fault-reset").addEventListener("click", async () => {
    for (const [id, value] of Object.entries(DEFAULTS)) {
      if (id === "fault-pace") continue;
      if (typeof value === "boolean") $(id).checked = value;
      else $(id).value = String(value);
    }
    showOutputs();
    panel.dataset.applied = "pending";
    await sent;
    try {
      await post("/control/reset");
      panel.dataset.applied = "true";
      onChange("reset: no faults (mock counters cleared)");
    } catch (error) {
      onError(error);
    }
  });

  // The mock's own counters: proof that a stopped stream was closed upstream and that cache hits
  // never reached it.
  let timer = 0;
  const poll = async () => {
    try {
      const response = await fetch(`${mockUrl}/control/stats`, { cache: "no-store" });
      if (response.ok) {
        const stats = await response.json();
        const per = Object.entries(stats.byTarget)
          .map(([name, t]) => `${name} ${t.total}`)
          .join(" · ");
        const el = $("mock-stats");
        el.textContent = `mock saw ${stats.total} request${stats.total === 1 ? "" : "s"}${per ? ` (${per})` : ""} · ${stats.inFlight} in flight`;
        el.dataset.total = String(stats.total);
        el.dataset.inFlight = String(stats.inFlight);
        onStats?.(stats);
      }
    } catch {
      // the mock is gone (server stopped); keep the last numbers
    }
    timer = setTimeout(poll, 1000);
  };
  // Start from what the mock is doing now (a reload keeps its faults).
  const sync = async () => {
    try {
      const response = await fetch(`${mockUrl}/control/faults`, { cache: "no-store" });
      const faults = response.ok ? await response.json() : {};
      const primary = faults.primary ?? faults["*"];
      const backup = faults.backup ?? faults["*"];
      if (primary) {
        $("fault-outage").checked = primary.outage;
        $("fault-error-rate").value = String(Math.round(primary.errorRate * 100));
        $("fault-429-rate").value = String(Math.round(primary.rate429 * 100));
        if (primary.retryAfterMs !== undefined) $("fault-retry-after").value = String(primary.retryAfterMs);
        $("fault-latency").value = String(primary.latencyMs);
        $("fault-slow").value = String(Math.round((primary.slowRate ?? 0) * 100));
        $("fault-stall").value = String(Math.round(primary.stallRate * 100));
        const perMinute = /^(\d+)\/1m$/.exec(primary.limit ?? "");
        $("fault-server-limit").value = perMinute ? perMinute[1] : "0";
      }
      if (backup) $("fault-backup-outage").checked = backup.outage;
    } catch {
      // keep the defaults
    }
    showOutputs();
    panel.dataset.applied = "true";
  };
  const ready = sync();
  poll();

  return {
    ready,
    pace: () => num("fault-pace"),
    stop: () => clearTimeout(timer),
  };
}
