// A Worker that runs one scenario per request against the package as bundled for workerd, plus the
// Workers-specific paths: a cache in a KV namespace shared by every request (and isolate).
import * as pkg from "resilient-llm";
import { kvStore } from "resilient-llm/stores";
import { scenarios } from "../scenarios.mjs";

async function kvCache(url, env, ctx) {
  // A new client per request, as in separate isolates: only the KV namespace is shared.
  const client = new pkg.ResilientClient({ cache: { store: kvStore(env.LLM_CACHE) } });
  const response = await client.fetch(`${url.searchParams.get("mock")}/v1/chat/completions`, {
    method: "POST",
    body: url.searchParams.get("body"),
    resilience: { waitUntil: ctx.waitUntil.bind(ctx) },
  });
  return new Response(await response.text(), { headers: { "x-cache": response.headers.get("x-cache") } });
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/kv-cache") return kvCache(url, env, ctx);
    const run = scenarios[url.searchParams.get("scenario")];
    if (!run) return new Response("unknown scenario", { status: 404 });
    try {
      await run(pkg, url.searchParams.get("mock"));
      return new Response("ok");
    } catch (error) {
      return new Response(`${error.name}: ${error.message}\n${error.stack ?? ""}`, { status: 500 });
    }
  },
};
