// Serves the demo: the mock LLM (unless LLM_BASE_URL points at a real OpenAI-compatible server) and
// the static page, which imports the built package from /pkg/.
//   node www/serve.mjs [--port N]      (www/demo builds pkg/ first and then runs this)
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startMockLlm } from "./mock-llm.mjs";
import { startStaticServer } from "./static-server.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const portArg = process.argv.indexOf("--port");
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 8080;

const real = process.env.LLM_BASE_URL;
const mock = real ? null : await startMockLlm({ port: 0 });
const config = {
  baseUrl: real ? real.replace(/\/+$/, "").replace(/\/v1$/, "") : mock.url, // the page adds /v1/...
  apiKey: process.env.LLM_API_KEY ?? "",
  model: process.env.LLM_MODEL ?? (real ? "default" : "mock-1"),
  mock: !real,
};
const site = await startStaticServer({ root, port, routes: { "/www/config.json": config } });

console.log(real ? `upstream: ${config.baseUrl} (LLM_BASE_URL)` : `mock LLM: ${mock.url}`);
console.log(`demo: ${site.url}/www/`);

const stop = async () => {
  await site.close();
  await mock?.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
