// Cloudflare Workers (workerd): the bundler hands us the .wasm as a compiled WebAssembly.Module.
import wasmModule from "./sturdy_llm_bg.wasm";
import { initSync, isolateRequests } from "./sturdy_llm.js";

initSync({ module: wasmModule });
// A request cannot wait on another request's I/O in workerd: calls in flight are never shared.
isolateRequests();

export * from "./api.js";
