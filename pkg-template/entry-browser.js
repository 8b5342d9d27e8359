// Browsers and bundlers: fetch and instantiate the .wasm beside this file, with top-level await so
// importers get a ready module without calling init themselves.
import init from "./sturdy_llm.js";

await init({ module_or_path: new URL("./sturdy_llm_bg.wasm", import.meta.url) });

export * from "./api.js";
