// Runs a Worker in workerd the way wrangler deploys it: bundled by esbuild with the "workerd" export
// condition, the package's .wasm kept beside it as a CompiledWasm module, loaded by Miniflare.
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";

/** tests/js/ */
const js = fileURLToPath(new URL("..", import.meta.url));

/** Bundles `entry` into tests/artifacts/<name>/ and starts it with the extra Miniflare `options`. */
export async function startWorker(entry, name, options = {}) {
  const outDir = join(js, "../artifacts", name);
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    external: ["*.wasm", "cloudflare:*"], // the runtime's own modules (cloudflare:workers)
    nodePaths: [join(js, "node_modules")], // the package as installed for the tests
    outfile: join(outDir, "worker.mjs"),
    logLevel: "error",
  });
  await copyFile(join(js, "node_modules/sturdy-llm/sturdy_llm_bg.wasm"), join(outDir, "sturdy_llm_bg.wasm"));
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(outDir, "worker.mjs"),
    modulesRoot: outDir, // module names relative to the bundle, whatever the working directory
    modulesRules: [
      { type: "ESModule", include: ["**/*.mjs", "**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: "2025-09-01",
    ...options,
  });
  try {
    await mf.ready;
  } catch (error) {
    await mf.dispose(); // a Worker that failed to start must not keep the test process alive
    throw error;
  }
  return mf;
}
