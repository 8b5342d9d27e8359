// The "last 60 s" chart: inline SVG, stacked bars of retries, fallbacks and rejections per 2-second
// bucket, a step line of attempts sent, and shaded bands while the primary breaker was not closed.

const SVG = "http://www.w3.org/2000/svg";
export const WINDOW_MS = 60_000;
export const BUCKET_MS = 2_000;
const BUCKETS = WINDOW_MS / BUCKET_MS;
const W = 300;
const H = 100;

/** Remembers timestamps of the events the chart counts. */
export class Timeline {
  constructor() {
    this.series = { requests: [], retries: [], fallbacks: [], rejected: [] };
    this.bands = []; // { state: "open" | "half-open", from, to? } for the watched breaker
  }

  add(series, at = Date.now()) {
    this.series[series].push(at);
  }

  /** A breaker transition of the watched breaker. */
  breaker(to, at = Date.now()) {
    const last = this.bands.at(-1);
    if (last && last.to === undefined) last.to = at;
    if (to !== "closed") this.bands.push({ state: to, from: at });
  }

  prune(now) {
    const horizon = now - WINDOW_MS - BUCKET_MS;
    for (const list of Object.values(this.series)) {
      while (list.length && list[0] < horizon) list.shift();
    }
    this.bands = this.bands.filter((b) => b.to === undefined || b.to >= horizon);
  }

  counts(series, now) {
    const start = now - WINDOW_MS;
    const buckets = new Array(BUCKETS).fill(0);
    for (const at of this.series[series]) {
      const i = Math.floor((at - start) / BUCKET_MS);
      if (i >= 0 && i < BUCKETS) buckets[i] += 1;
    }
    return buckets;
  }
}

const el = (name, attrs) => {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
};

/** Renders `timeline` into the <svg> `svg` (viewBox 300×100, stretched to its box). */
export function drawChart(svg, timeline, now = Date.now()) {
  timeline.prune(now);
  const start = now - WINDOW_MS;
  const requests = timeline.counts("requests", now);
  const retries = timeline.counts("retries", now);
  const fallbacks = timeline.counts("fallbacks", now);
  const rejected = timeline.counts("rejected", now);
  const stacked = retries.map((r, i) => r + fallbacks[i] + rejected[i]);
  const max = Math.max(4, ...requests, ...stacked);
  const y = (v) => H - 2 - (v / max) * (H - 8);
  const bw = W / BUCKETS;

  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");

  for (const band of timeline.bands) {
    const x0 = Math.max(0, ((band.from - start) / WINDOW_MS) * W);
    const x1 = Math.min(W, (((band.to ?? now) - start) / WINDOW_MS) * W);
    if (x1 > x0) svg.append(el("rect", { x: x0, y: 0, width: x1 - x0, height: H, class: `band band-${band.state}` }));
  }
  for (const v of [0.25, 0.5, 0.75]) {
    svg.append(el("line", { x1: 0, x2: W, y1: H * v, y2: H * v, class: "grid", "vector-effect": "non-scaling-stroke" }));
  }
  for (let i = 0; i < BUCKETS; i++) {
    let base = 0;
    for (const [list, cls] of [[retries, "bar-retry"], [fallbacks, "bar-fallback"], [rejected, "bar-rejected"]]) {
      if (!list[i]) continue;
      const top = y(base + list[i]);
      svg.append(el("rect", { x: i * bw + 1.5, y: top, width: bw - 3, height: y(base) - top, class: cls, rx: 1 }));
      base += list[i];
    }
  }
  let d = "";
  requests.forEach((v, i) => {
    d += `${i ? "L" : "M"}${i * bw},${y(v)} L${(i + 1) * bw},${y(v)} `;
  });
  svg.append(el("path", { d, class: "line-requests", "vector-effect": "non-scaling-stroke" }));
  svg.append(el("line", { x1: 0, x2: W, y1: H - 1, y2: H - 1, class: "axis", "vector-effect": "non-scaling-stroke" }));
  return { max, totals: { requests: sum(requests), retries: sum(retries), fallbacks: sum(fallbacks), rejected: sum(rejected) } };
}

const sum = (list) => list.reduce((a, b) => a + b, 0);
