// Bounded fuzzing of the JS boundary in CI (tests/js/fuzz/boundary.mjs: seeded hostile options, chat
// requests, per-request policies, inputs, polluted prototypes and re-entrant listeners thrown at the
// built package, then a fresh client must work and wasm memory must be flat). A longer run:
//   node tests/js/fuzz/boundary.mjs --cases 100000 --seed 7
import { test } from "node:test";
import assert from "node:assert/strict";
import { fuzzBoundary } from "./fuzz/boundary.mjs";

for (const seed of [1, 2]) {
  test(`boundary fuzz, seed ${seed}: typed errors only, no trap, no hang, the module stays healthy, memory flat`, async () => {
    const result = await fuzzBoundary({ cases: 4000, seed });
    assert.deepEqual(result.problems, []);
    const outcomes = Object.keys(result.outcomes).join(" ");
    for (const reached of ["options: ok", "options: TypeError", "options: RangeError", "fetch: TypeError", "chat: TypeError", "chat: RangeError", "fetch: AbortError", "polluted: ok", "reentrant: ok"]) {
      assert.ok(outcomes.includes(reached), `the cases reach "${reached}" (${outcomes})`);
    }
  });
}
