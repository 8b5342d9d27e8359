// The demo server's same-origin route to a real OpenAI-compatible server (LLM_BASE_URL), so the API
// key stays on the server: the page posts to /upstream/v1/chat/completions without credentials and
// this handler forwards the call, adding `authorization: Bearer <LLM_API_KEY>`. Only that one path and
// method are forwarded, only a request from the page's own origin (the Origin header, which browsers
// send on every POST, must be this server: another site cannot spend the key) with a JSON body of
// bounded size; the answer (status, body, streamed as it arrives) comes back with the headers the
// client's retry logic reads. The page closing the request aborts the upstream call.
import { Readable } from "node:stream";

/** Where the page sends its calls: the target's baseUrl (the client adds /v1/chat/completions). */
export const PROXY_BASE = "/upstream";
export const PROXY_PATH = `${PROXY_BASE}/v1/chat/completions`;
const MAX_BODY_BYTES = 1024 * 1024;
const REQUEST_HEADERS = ["content-type", "accept", "idempotency-key"];
const RESPONSE_HEADERS = ["content-type", "cache-control", "retry-after", "retry-after-ms", "x-should-retry", "x-request-id"];

function fail(res, status, message) {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify({ error: { message } }));
}

/** Reads the request body, or null once it passes `MAX_BODY_BYTES` (the rest is not read). */
async function readBounded(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A route handler forwarding the page's chat calls to `baseUrl` (without /v1) with `apiKey`. */
export function upstreamProxy({ baseUrl, apiKey }) {
  const target = `${baseUrl}/v1/chat/completions`;
  return async (req, res) => {
    if (req.method !== "POST") return fail(res, 405, "POST only");
    if (req.headers.origin !== undefined && req.headers.origin !== `http://${req.headers.host}`) {
      return fail(res, 403, "cross-origin requests are refused");
    }
    if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) return fail(res, 415, "the body must be JSON");
    const body = await readBounded(req);
    if (body === null) return fail(res, 413, `the body is over ${MAX_BODY_BYTES} bytes`);

    const headers = Object.fromEntries(REQUEST_HEADERS.filter((h) => req.headers[h]).map((h) => [h, req.headers[h]]));
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    const controller = new AbortController();
    res.once("close", () => controller.abort());
    let upstream;
    try {
      upstream = await fetch(target, { method: "POST", headers, body, signal: controller.signal });
    } catch (error) {
      if (!controller.signal.aborted) console.error(`upstream proxy: ${target}: ${error.cause ?? error}`);
      return res.headersSent || res.destroyed ? undefined : fail(res, 502, "the upstream server is unreachable");
    }
    res.writeHead(upstream.status, Object.fromEntries(RESPONSE_HEADERS.flatMap((h) => {
      const value = upstream.headers.get(h);
      return value === null ? [] : [[h, value]];
    })));
    if (!upstream.body) return void res.end();
    Readable.fromWeb(upstream.body)
      .on("error", () => res.destroy()) // the upstream cut the stream: cut ours too
      .pipe(res);
  };
}
