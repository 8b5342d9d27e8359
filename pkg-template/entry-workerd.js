// Cloudflare Workers (workerd): the bundler hands us the .wasm as a compiled WebAssembly.Module.
import wasmModule from "./resilient_llm_bg.wasm";
import { initSync } from "./resilient_llm.js";

initSync({ module: wasmModule });

export * from "./api.js";
