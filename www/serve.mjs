// Serves the demo on loopback: the mock LLM (unless LLM_BASE_URL points at a real OpenAI-compatible
// server) and the page, which imports the built package from /pkg/.
//   node www/serve.mjs [--port N]      (www/demo builds pkg/ first and then runs this)
// In-process (the demo test): const demo = await startDemo({ port: 0 }) -> { url, origin, mock, config, close }
// Only the page's own files are served (www/*.{html,js,css} and pkg/*.{js,wasm}); with LLM_BASE_URL
// the page talks to this server's /upstream route, which adds LLM_API_KEY: the key never reaches the
// page (config.json has no key) and the server answers only its own loopback Host.
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startMockLlm } from "./mock-llm.mjs";
import { startStaticServer } from "./static-server.mjs";
import { PROXY_BASE, PROXY_PATH, upstreamProxy } from "./upstream-proxy.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/** What the page loads: its own files and the package it imports (see index.html's import map). */
const PAGE_FILES = { www: [".html", ".js", ".css"], pkg: [".js", ".wasm"] };

/** `url` without credentials, query or a trailing /v1 (the page and the proxy add /v1/...). */
function upstreamBase(url) {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, "").replace(/\/v1$/, "")}`;
}

/**
 * Starts the mock LLM (when `env.LLM_BASE_URL` is unset) and the page's server.
 * `url` is the page (`…/www/`), `mock` the mock's handle (`stats()`, `reset()`, `setFaults()`) or null.
 */
export async function startDemo({ port = 8080, host = "127.0.0.1", env = process.env } = {}) {
  const real = env.LLM_BASE_URL ? upstreamBase(env.LLM_BASE_URL) : null;
  const mock = real ? null : await startMockLlm({ port: 0, host });
  const config = {
    baseUrl: real ? PROXY_BASE : mock.url, // the page resolves it against its own origin and adds /v1/...
    upstream: real ?? mock.url,
    model: env.LLM_MODEL ?? (real ? "default" : "mock-1"),
    mock: !real,
  };
  const routes = {
    "/": (req, res) => res.writeHead(302, { location: "/www/" }).end(),
    "/www/config.json": config,
    ...(real ? { [PROXY_PATH]: upstreamProxy({ baseUrl: real, apiKey: env.LLM_API_KEY }) } : {}),
  };
  let site;
  try {
    site = await startStaticServer({ root, dirs: PAGE_FILES, port, host, routes });
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
  console.log(demo.mock ? `mock LLM: ${demo.mock.url}` : `upstream: ${demo.config.upstream} (LLM_BASE_URL, through ${demo.origin}/upstream)`);
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
