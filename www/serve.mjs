// Serves the demo: the mock LLM (unless LLM_BASE_URL points at a real OpenAI-compatible server) and
// the static page, which imports the built package from /pkg/.
//   node www/serve.mjs [--port N]      (www/demo builds pkg/ first and then runs this)
// In-process (the demo test): const demo = await startDemo({ port: 0 }) -> { url, origin, mock, config, close }
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startMockLlm } from "./mock-llm.mjs";
import { startStaticServer } from "./static-server.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Starts the mock LLM (when `env.LLM_BASE_URL` is unset) and the static server at the repo root.
 * `url` is the page (`…/www/`), `mock` the mock's handle (`stats()`, `reset()`, `setFaults()`) or null.
 */
export async function startDemo({ port = 8080, host = "127.0.0.1", env = process.env } = {}) {
  const real = env.LLM_BASE_URL;
  const mock = real ? null : await startMockLlm({ port: 0, host });
  const config = {
    baseUrl: real ? real.replace(/\/+$/, "").replace(/\/v1$/, "") : mock.url, // the page adds /v1/...
    apiKey: env.LLM_API_KEY ?? "",
    model: env.LLM_MODEL ?? (real ? "default" : "mock-1"),
    mock: !real,
  };
  let site;
  try {
    site = await startStaticServer({ root, port, host, routes: { "/www/config.json": config } });
  } catch (error) {
    await mock?.close();
    throw error;
  }
  let closing;
  return {
    url: `${site.url}/www/`,
    origin: site.url,
    mock,
    config,
    close() {
      closing ??= Promise.all([site.close(), mock?.close()]).then(() => {});
      return closing;
    },
  };
}

async function main() {
  const portArg = process.argv.indexOf("--port");
  const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 8080;
  const demo = await startDemo({ port });
  console.log(demo.mock ? `mock LLM: ${demo.mock.url}` : `upstream: ${demo.config.baseUrl} (LLM_BASE_URL)`);
  console.log(`demo: ${demo.url}`);
  const stop = async () => {
    await demo.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

const isDirectRun = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isDirectRun) await main();
