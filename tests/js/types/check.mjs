// The typings, checked as users meet them: api.ts (TypeScript using every part of the public types),
// and the README's code: every ```js block becomes a checked JS module (with the package imported and a
// client made where the block takes them as given). Compiled by tsc with --strict, no skipLibCheck, no
// extra `lib`, under `nodenext` and `bundler` resolution. The README's snippets are JavaScript, where a
// parameter without a type is the writer's choice: implicit any is allowed in them, and only there.
//   node tests/js/types/check.mjs      (after tests/js/install-package)
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "../../..");
const out = join(here, "snippets");
const readme = readFileSync(join(root, "README.md"), "utf8");
const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```/gm)].map((m) => m[1]);
if (blocks.length === 0) throw new Error("no ```js blocks found in README.md");

rmSync(out, { recursive: true, force: true });
mkdirSync(out);
blocks.forEach((code, i) => {
  const prelude = ["// @ts-check"];
  if (!/import \{[^}]*\bResilientClient\b/.test(code)) prelude.push('import { ResilientClient } from "sturdy-llm";');
  if (/\bclient\./.test(code) && !/\b(const|let) client\b/.test(code)) prelude.push("const client = new ResilientClient();");
  prelude.push("export {};");
  writeFileSync(join(out, `readme-${i + 1}.mjs`), `${prelude.join("\n")}\n${code}`);
});

const tsc = process.env.TSC ?? join(root, "node_modules/.bin/tsc");
const common = ["--noEmit", "--strict", "--target", "es2022", "--lib", "es2022,dom,dom.iterable", "--types", ""];
const snippets = blocks.map((_, i) => `snippets/readme-${i + 1}.mjs`);
for (const [module, moduleResolution] of [["nodenext", "nodenext"], ["esnext", "bundler"]]) {
  const resolution = ["--module", module, "--moduleResolution", moduleResolution];
  for (const [what, args] of [
    ["api.ts", [...common, ...resolution, "api.ts"]],
    [`${blocks.length} README snippets`, [...common, ...resolution, "--allowJs", "--checkJs", "--noImplicitAny", "false", "globals.d.ts", ...snippets]],
  ]) {
    try {
      execFileSync(tsc, args, { cwd: here, stdio: "pipe" });
    } catch (error) {
      throw new Error(`${what} fails to type-check (${moduleResolution}):\n${error.stdout ?? error.message}${error.stderr ?? ""}`);
    }
    console.log(`${what}: type-check under --strict, ${moduleResolution} resolution`);
  }
}
