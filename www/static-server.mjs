// A minimal static file server for the demo page and the browser tests, bound to loopback.
// It serves only an explicit allowlist: `dirs` maps a directory of `root` (served at /<dir>/) to the
// file extensions it may hand out, so nothing else of the repository (.git/, Cargo.toml, the
// server's own sources) is reachable; dot segments are refused and symlinks may not leave their
// directory. It answers only requests whose Host is this loopback address and port (a page on
// another name that DNS-rebinds to 127.0.0.1 gets 421), and a malformed path is a 400, never a
// crash. MIME types are right (application/wasm matters: browsers compile .wasm while downloading
// only with it). `routes` maps extra paths to generated JSON or to a handler `(req, res)`.
import { createServer } from "node:http";
import { readFile, realpath, stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};
const MAX_URL_BYTES = 4096;

/** The decoded path of a request URL, or null when it is malformed (bad escapes, NUL, backslash). */
export function requestPath(url) {
  if (typeof url !== "string" || url.length > MAX_URL_BYTES || !url.startsWith("/")) return null;
  const raw = url.split(/[?#]/, 1)[0];
  let path;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return null;
  }
  return /[\0\\]/.test(path) ? null : path;
}

/** The Host values a loopback server on `host`:`port` answers to. */
export function loopbackHosts(host, port) {
  const own = host.includes(":") ? `[${host}]` : host;
  return new Set([own, "127.0.0.1", "localhost", "[::1]"].map((name) => `${name}:${port}`));
}

function send(res, status, text = "") {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }).end(text);
}

export async function startStaticServer({ root, dirs, port = 0, host = "127.0.0.1", routes = {} }) {
  const mounts = await Promise.all(
    Object.entries(dirs).map(async ([dir, extensions]) => {
      const base = resolve(root, dir);
      return { prefix: `/${dir}/`, base, real: await realpath(base).catch(() => base), extensions: new Set(extensions) };
    }),
  );
  let hosts = new Set();

  async function serveFile(req, res, path) {
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405);
    const mount = mounts.find((m) => path.startsWith(m.prefix));
    const rest = mount && path.slice(mount.prefix.length).replace(/(^|\/)$/, "$1index.html");
    const segments = rest?.split("/") ?? [];
    if (!mount || segments.some((s) => s === "" || s.startsWith(".")) || !mount.extensions.has(extname(rest))) {
      return send(res, 404, "not found");
    }
    let body;
    try {
      const file = await realpath(join(mount.base, ...segments));
      if (!file.startsWith(mount.real + sep) || !(await stat(file)).isFile()) return send(res, 404, "not found");
      body = await readFile(file);
    } catch {
      return send(res, 404, "not found");
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(rest)] ?? "application/octet-stream",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  async function handle(req, res) {
    if (!hosts.has(String(req.headers.host).toLowerCase())) return send(res, 421, "unknown host");
    const path = requestPath(req.url);
    if (path === null) return send(res, 400, "malformed path");
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (typeof route === "function") return route(req, res);
    if (route !== undefined) {
      if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405);
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      return res.end(JSON.stringify(route));
    }
    return serveFile(req, res, path);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      console.error(`static server: ${req.method} ${req.url}: ${error.stack ?? error}`);
      if (!res.headersSent) send(res, 500);
      else res.destroy();
    });
  });
  await new Promise((ready, fail) => {
    server.once("error", fail);
    server.listen(port, host, ready);
  });
  const address = server.address();
  hosts = loopbackHosts(host, address.port);
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`,
    close: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }),
  };
}
