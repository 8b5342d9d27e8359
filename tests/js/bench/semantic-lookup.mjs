// Benchmark: the semantic cache's lookup cost (one exact cosine scan) at 1,000 and 10,000 entries, from the
// native bench benches/semantic_lookup.rs (built with the release profile the wasm ships with).
//   node tests/js/bench/semantic-lookup.mjs [--quick]
//   (or: import { run } from "./semantic-lookup.mjs"; quick mode, --quick or BENCH_QUICK=1: fewer lookups)
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Rows of { entries, dims, medianUs, minUs, hit }. */
export async function run({ quick = process.env.BENCH_QUICK === "1" } = {}) {
  const args = ["bench", "--quiet", "--bench", "semantic_lookup", "--", "--json", ...(quick ? ["--quick"] : [])];
  const out = execFileSync("cargo", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return { rows: JSON.parse(out.trim().split("\n").pop()) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await run({ quick: process.argv.includes("--quick") }), null, 2));
}
