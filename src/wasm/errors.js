// The error classes every rejection is an instance of, made here so `instanceof` works. The package
// re-exports this module (pkg/errors.js), so the classes users import are the ones the wasm builds.
//
// `isInstance` also recognises an error made by another copy of the package (two versions in one
// bundle, or a Worker and a library each bundling one): every instance carries a marker shared
// through the global symbol registry, and each class checks the marker and its own name.

const MARK = Symbol.for("sturdy-llm.error");

export class ResilientError extends Error {
  /** True for an error of this class from any copy of the package. */
  static isInstance(value) {
    return (
      typeof value === "object" &&
      value !== null &&
      value[MARK] === true &&
      (this === ResilientError || value.name === this.name)
    );
  }
}
Object.defineProperty(ResilientError.prototype, MARK, { value: true });

const classes = { ResilientError };
for (const name of [
  "CircuitOpenError",
  "RateLimitError",
  "TimeoutError",
  "BudgetExceededError",
  "IncompleteStreamError",
  "UpstreamError",
  "AllTargetsFailedError",
  "CacheStoreError",
]) {
  // A named class per error, without writing eight identical bodies.
  classes[name] = { [name]: class extends ResilientError {} }[name];
}
for (const [name, type] of Object.entries(classes)) {
  Object.defineProperty(type.prototype, "name", { value: name, writable: true, configurable: true });
}

export const {
  CircuitOpenError,
  RateLimitError,
  TimeoutError,
  BudgetExceededError,
  IncompleteStreamError,
  UpstreamError,
  AllTargetsFailedError,
  CacheStoreError,
} = classes;

/** An instance of the class `name` (a plain Error so named for a name with no class). */
export function makeError(name, code, message) {
  const type = classes[name];
  const error = type ? new type(message) : Object.assign(new Error(message), { name });
  error.code = code;
  return error;
}

/** The rejection for a signal that aborted without a reason, as fetch gives it. */
export function abortedError() {
  return new DOMException("The operation was aborted.", "AbortError");
}
