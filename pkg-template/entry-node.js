// Node: read the .wasm next to this file and instantiate it synchronously at import.
import { readFileSync } from "node:fs";
import { initSync } from "./sturdy_llm.js";

initSync({ module: readFileSync(new URL("./sturdy_llm_bg.wasm", import.meta.url)) });

export * from "./api.js";
