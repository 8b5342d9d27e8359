// A Worker that runs one scenario per request against the package as bundled for workerd.
import * as pkg from "resilient-llm";
import { scenarios } from "../scenarios.mjs";

export default {
  async fetch(request) {
    const url = new URL(request.url);
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
