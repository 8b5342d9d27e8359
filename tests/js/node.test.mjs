// The built package in Node: `import "sturdy-llm"` resolves the "node" export condition.
import { after, before, test } from "node:test";
import * as pkg from "sturdy-llm";
import { startMockLlm } from "../../www/mock-llm.mjs";
import { scenarios } from "./scenarios.mjs";

let mock;
before(async () => {
  mock = await startMockLlm();
});
after(() => mock.close());

for (const [name, run] of Object.entries(scenarios)) {
  test(`node: ${name}`, () => run(pkg, mock.url));
}
