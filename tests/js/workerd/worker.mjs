// A Worker that runs one scenario per request against the package as bundled for workerd, plus the
// Workers-specific paths: a cache in a KV namespace or in the Cache API, shared by every request.
import * as pkg from "sturdy-llm";
import { cacheApiStore, kvStore } from "sturdy-llm/stores";
import { scenarios } from "../scenarios.mjs";

const stores = {
  "/kv-cache": (env) => kvStore(env.LLM_CACHE),
  "/cache-api-cache": async () => cacheApiStore(await caches.open("llm")),
};

async function sharedCache(store, url, ctx) {
  // A new client per request, as in separate isolates: only the store is shared.
  const client = new pkg.ResilientClient({ cache: { store } });
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
    if (stores[url.pathname]) return sharedCache(await stores[url.pathname](env), url, ctx);
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
