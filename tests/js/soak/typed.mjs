/**
 * What "every failure typed" means in the soaks: the error's `name` is one the README documents AND
 * its `code` is one that name is documented with. A name alone is not enough: a bug in the glue
 * (`Cannot read properties of undefined`) is a `TypeError` too, but without the `NETWORK` code that
 * marks a network failure.
 */

/** The documented `code`s of each error name the library rejects a call with. */
export const DOCUMENTED_CODES = {
  CircuitOpenError: ["CIRCUIT_OPEN", "SHARED_STATE_UNAVAILABLE"],
  RateLimitError: ["RATE_LIMITED"],
  TimeoutError: ["TIMEOUT"],
  // A stream's cancel(); a caller's abort rejects with the signal's reason (see untypedIn).
  AbortError: ["CANCELLED"],
  BudgetExceededError: ["BUDGET_EXCEEDED"],
  IncompleteStreamError: ["INCOMPLETE_STREAM"],
  // A chat target's error class in upper case, or the stream's own refusals.
  UpstreamError: [
    "RATE_LIMITED", "QUOTA_EXHAUSTED", "OVERLOADED", "CONTEXT_LENGTH", "CONTENT_POLICY", "AUTH",
    "BAD_REQUEST", "SERVER", "NOT_FOUND", "UNREADABLE_ANSWER", "UPSTREAM_STATUS", "UPSTREAM_STREAM_ERROR",
    "NOT_AN_EVENT_STREAM",
  ],
  AllTargetsFailedError: ["ALL_TARGETS_FAILED"],
  // fetch's own failures: a network failure, or a request fetch refuses.
  TypeError: ["NETWORK", "INVALID_REQUEST"],
};

/** Why `error` is not a documented failure (an AllTargetsFailedError's `errors` included), or [] if it is. */
export function untypedIn(error) {
  const bad = [];
  // The caller's abort: the signal's own reason, a DOMException named AbortError (code 20).
  if (error instanceof DOMException && error.name === "AbortError") return bad;
  const codes = DOCUMENTED_CODES[error?.name];
  if (!(error instanceof Error) || !Object.hasOwn(DOCUMENTED_CODES, error.name)) bad.push(`${error?.name ?? String(error)}: ${String(error?.message).slice(0, 160)}`);
  else if (!codes.includes(error.code)) bad.push(`${error.name} with code ${error.code}: ${String(error.message).slice(0, 160)}`);
  if (error?.name === "AllTargetsFailedError") {
    if (!Array.isArray(error.errors) || error.errors.length === 0) bad.push("AllTargetsFailedError without errors");
    else for (const e of error.errors) bad.push(...untypedIn(e).map((b) => `errors[]: ${b}`));
  }
  return bad;
}
