// The demo's one tool, answered in the page: get_time({ city }) is the local time in a city, from a
// small city -> time zone table and Intl.DateTimeFormat. The model asks for it (the mock does when a
// question mentions the time), the page runs it and sends the result back in the same conversation,
// so a tool-call round trip shows in the chat, through retries and fallbacks like any other call.
import { escapeHtml } from "./markdown.js";

const ZONES = {
  amsterdam: "Europe/Amsterdam", auckland: "Pacific/Auckland", bangkok: "Asia/Bangkok", berlin: "Europe/Berlin",
  "buenos aires": "America/Argentina/Buenos_Aires", cairo: "Africa/Cairo", chicago: "America/Chicago",
  delhi: "Asia/Kolkata", dubai: "Asia/Dubai", "hong kong": "Asia/Hong_Kong", istanbul: "Europe/Istanbul",
  jakarta: "Asia/Jakarta", johannesburg: "Africa/Johannesburg", lagos: "Africa/Lagos", lima: "America/Lima",
  lisbon: "Europe/Lisbon", london: "Europe/London", "los angeles": "America/Los_Angeles", madrid: "Europe/Madrid",
  "mexico city": "America/Mexico_City", moscow: "Europe/Moscow", mumbai: "Asia/Kolkata", nairobi: "Africa/Nairobi",
  "new york": "America/New_York", oslo: "Europe/Oslo", paris: "Europe/Paris", rome: "Europe/Rome",
  "san francisco": "America/Los_Angeles", "são paulo": "America/Sao_Paulo", "sao paulo": "America/Sao_Paulo",
  seoul: "Asia/Seoul", shanghai: "Asia/Shanghai", singapore: "Asia/Singapore", stockholm: "Europe/Stockholm",
  sydney: "Australia/Sydney", tokyo: "Asia/Tokyo", toronto: "America/Toronto", vancouver: "America/Vancouver",
  vienna: "Europe/Vienna", warsaw: "Europe/Warsaw", zurich: "Europe/Zurich",
};

/** The tool as the model sees it (the portable shape: name, description, JSON Schema parameters). */
export const GET_TIME = {
  name: "get_time",
  description: "The current local time in a city.",
  parameters: {
    type: "object",
    properties: { city: { type: "string", description: "The city's name, e.g. Paris" } },
    required: ["city"],
  },
};
export const TOOLS = [GET_TIME];

/** The local time in `city` now: { city, timeZone, time } (24-hour HH:MM, weekday), or { error }. */
export function getTime({ city } = {}, now = new Date()) {
  const name = typeof city === "string" ? city.trim() : "";
  const timeZone = ZONES[name.toLowerCase()];
  if (!timeZone) return { error: `unknown city ${JSON.stringify(name)}`, known: "a capital or a large city, e.g. Paris, Tokyo" };
  const time = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(now);
  const weekday = new Intl.DateTimeFormat("en-GB", { timeZone, weekday: "long" }).format(now);
  return { city: name, timeZone, time, weekday };
}

/** Runs one tool call from the model; the result is the JSON text sent back as the tool message. */
export function runTool(call) {
  let args;
  try {
    args = JSON.parse(call.arguments || "{}");
  } catch {
    return JSON.stringify({ error: "the arguments are not JSON" });
  }
  if (call.name !== GET_TIME.name) return JSON.stringify({ error: `no tool named ${call.name}` });
  return JSON.stringify(getTime(args));
}

/** A tool call as the chat shows it: the call, what the model said before it, and the page's result. */
export function toolCallElement(call, result, said) {
  const el = document.createElement("div");
  el.className = "tool-call";
  el.setAttribute("data-testid", "tool-call");
  el.dataset.name = call.name;
  el.innerHTML = `
    ${said ? `<p class="tool-said">${escapeHtml(said)}</p>` : ""}
    <p><span class="tool-icon" aria-hidden="true">⚙</span> <b>tool call</b> <code data-testid="tool-args"></code></p>
    <p class="tool-result"><span aria-hidden="true">↳</span> <span class="visually-hidden">result:</span> <code data-testid="tool-result"></code></p>`;
  el.querySelector('[data-testid="tool-args"]').textContent = `${call.name}(${call.arguments})`;
  el.querySelector('[data-testid="tool-result"]').textContent = result;
  return el;
}
