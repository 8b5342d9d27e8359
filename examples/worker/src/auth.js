// Who is calling: a bearer token checked against the CLIENT_TOKENS secret (JSON: { "<token>": "<user id>" })
// and, for the full /stats, the ADMIN_TOKEN secret. The user id used for limits, budgets and stats comes
// from the token, never from a header the caller picks. Tokens are compared as SHA-256 digests (equal
// lengths) in constant time, against every configured token without stopping at a match, so neither
// the comparison nor the lookup tells an attacker how close a guess was.

const MIN_TOKEN_CHARS = 32; // `openssl rand -hex 32` gives 64
const MAX_TOKEN_CHARS = 512;
const MAX_USER_CHARS = 128;

const encoder = new TextEncoder();
const sha256 = async (text) => new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));

/** Constant-time equality of two equal-length byte arrays (workerd's own when it has one). */
function sameBytes(a, b) {
  if (typeof crypto.subtle.timingSafeEqual === "function") return crypto.subtle.timingSafeEqual(a, b);
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** The configured identities, `[{ digest, user, admin }]`; throws naming the secret when it is malformed. */
async function loadIdentities(env) {
  let tokens;
  try {
    tokens = JSON.parse(env.CLIENT_TOKENS ?? "null");
  } catch {
    throw new Error("CLIENT_TOKENS is not JSON");
  }
  if (tokens === null || typeof tokens !== "object" || Array.isArray(tokens)) {
    throw new Error('CLIENT_TOKENS must be a JSON object { "<token>": "<user id>" }');
  }
  const entries = Object.entries(tokens).map(([token, user]) => ({ token, user, admin: false }));
  if (env.ADMIN_TOKEN) entries.push({ token: env.ADMIN_TOKEN, user: "admin", admin: true });
  for (const { token, user } of entries) {
    if (token.length < MIN_TOKEN_CHARS || token.length > MAX_TOKEN_CHARS) {
      throw new Error(`every token must have ${MIN_TOKEN_CHARS} to ${MAX_TOKEN_CHARS} characters`);
    }
    if (typeof user !== "string" || user.length === 0 || user.length > MAX_USER_CHARS) {
      throw new Error(`every user id must be a string of 1 to ${MAX_USER_CHARS} characters`);
    }
  }
  return Promise.all(entries.map(async ({ token, user, admin }) => ({ digest: await sha256(token), user, admin })));
}

let identities; // per isolate: the secrets do not change while it lives

/**
 * The caller's identity `{ user, admin }` from `Authorization: Bearer <token>`, or null when the header is
 * missing, malformed or names no configured token. Throws when the secrets are malformed.
 */
export async function authenticate(request, env) {
  identities ??= loadIdentities(env).catch((error) => {
    identities = undefined;
    throw error;
  });
  const known = await identities;
  const match = /^Bearer ([\x21-\x7e]+)$/i.exec(request.headers.get("authorization") ?? "");
  if (!match || match[1].length > MAX_TOKEN_CHARS) return null;
  const digest = await sha256(match[1]);
  let found = null;
  for (const identity of known) {
    if (sameBytes(digest, identity.digest) && found === null) found = identity;
  }
  return found && { user: found.user, admin: found.admin };
}
