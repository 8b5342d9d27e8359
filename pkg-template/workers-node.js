// Node resolves "sturdy-llm/workers" here (its `node` condition): the Durable Object and its state
// store only run in workerd, and the workerd entry imports the .wasm as a module, which Node cannot
// (it would fail with an unknown ".wasm" file extension error that names neither).
throw new Error(
  '"sturdy-llm/workers" is for Cloudflare Workers (workerd): the ResilienceState Durable Object and ' +
    "durableObjectStateStore run there, bundled by wrangler (or Miniflare, or @cloudflare/vitest-pool-workers). " +
    'In Node, import { ResilientClient } from "sturdy-llm"; to share breaker and rate-limit state across ' +
    "processes, give it sharedState: { store } with a StateStore of your own.",
);
