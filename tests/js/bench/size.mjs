// Sizes of the built package and where the wasm bytes go, with no external tool.
//   node tests/js/bench/size.mjs [--pkg pkg] [--named <wasm with a name section>] [--target-kb 80 --ceiling-kb N]
// (tests/size builds the named copy with `wasm-bindgen --keep-debug` and passes the budget numbers.)
//
// Shipped sizes: pkg/sturdy_llm_bg.wasm raw, gzip -9 and brotli (Node's zlib, quality 11, large window
// off), and the JS glue, pkg/*.js + pkg/snippets/**/*.js concatenated then gzip -9 (as pkg-template/build
// reports it). The budget counts wasm gzip -9 + glue gzip -9. KB = 1024 bytes.
//
// Per crate: the code section's function body sizes, named from the `name` custom section and grouped by
// the crate of the first path in the demangled name (`<T as Trait>::f` counts for T's crate;
// `core::ptr::drop_in_place<T>` for T's). Generic std/wasm-bindgen code monomorphized for this crate's types
// stays with std/wasm-bindgen (e.g. js_sys::futures::future_to_promise::{{closure}} holds inlined async
// bodies of ours). This is the wasm before `wasm-opt -Oz`, so the shares are indicative of the shipped file.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync, brotliCompressSync, constants as zlib } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, "../../..");
export const KB = 1024;

const gzip9 = (bytes) => gzipSync(bytes, { level: 9 }).length;
const brotliMax = (bytes) =>
  brotliCompressSync(bytes, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY,
      [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_GENERIC,
      [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  }).length;

function glueFiles(pkgDir) {
  const files = readdirSync(pkgDir).filter((f) => f.endsWith(".js")).sort().map((f) => join(pkgDir, f));
  const walk = (dir) => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith(".js")) files.push(path);
    }
  };
  try {
    walk(join(pkgDir, "snippets"));
  } catch {}
  return files;
}

/** Sizes in bytes of the shipped wasm and JS glue in `pkgDir`. */
export function packageSizes(pkgDir = join(ROOT, "pkg")) {
  const wasm = readFileSync(join(pkgDir, "sturdy_llm_bg.wasm"));
  const files = glueFiles(pkgDir);
  const glue = Buffer.concat(files.map((f) => readFileSync(f)));
  const sizes = {
    wasmRaw: wasm.length,
    wasmGzip: gzip9(wasm),
    wasmBrotli: brotliMax(wasm),
    glueFiles: files.length,
    glueRaw: glue.length,
    glueGzip: gzip9(glue),
    glueBrotli: brotliMax(glue),
  };
  sizes.totalGzip = sizes.wasmGzip + sizes.glueGzip;
  sizes.totalBrotli = sizes.wasmBrotli + sizes.glueBrotli;
  return sizes;
}

// ---- wasm binary reading: just enough for the code section and the name section ----

function parseWasm(bytes) {
  let p = 8;
  const uleb = () => {
    let result = 0;
    let shift = 0;
    let byte;
    do {
      byte = bytes[p++];
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return result;
  };
  const name = () => {
    const n = uleb();
    const s = bytes.subarray(p, p + n).toString("utf8");
    p += n;
    return s;
  };
  const limits = () => {
    const flags = bytes[p++];
    uleb();
    if (flags & 1) uleb();
  };
  if (bytes.readUInt32LE(0) !== 0x6d736100) throw new Error("not a wasm binary");
  let importedFunctions = 0;
  const bodies = [];
  const names = new Map();
  const sections = [];
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = uleb();
    const start = p;
    const end = start + size;
    let custom = "";
    if (id === 0) custom = name();
    sections.push({ id, custom, size: end - start + 1 + uleb128Length(size) });
    if (id === 2) {
      for (let n = uleb(); n > 0; n--) {
        name();
        name();
        const kind = bytes[p++];
        if (kind === 0) {
          uleb();
          importedFunctions++;
        } else if (kind === 1) {
          p++;
          limits();
        } else if (kind === 2) limits();
        else if (kind === 3) p += 2;
        else if (kind === 4) {
          p++;
          uleb();
        } else throw new Error(`unknown import kind ${kind}`);
      }
    } else if (id === 10) {
      for (let n = uleb(); n > 0; n--) {
        const bodySize = uleb();
        bodies.push(bodySize + uleb128Length(bodySize));
        p += bodySize;
      }
    } else if (id === 0 && custom === "name") {
      while (p < end) {
        const sub = bytes[p++];
        const subSize = uleb();
        const subEnd = p + subSize;
        if (sub === 1) for (let n = uleb(); n > 0; n--) names.set(uleb(), name());
        p = subEnd;
      }
    }
    p = end;
  }
  return { importedFunctions, bodies, names, sections };
}

function uleb128Length(n) {
  let length = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    length++;
  }
  return length;
}

// The crate (and for sturdy_llm, the module) a demangled function name belongs to.
const STD = ["std", "core", "alloc", "__rustc", "compiler_builtins", "panic_abort", "rustc_demangle"];
const BINDGEN = ["wasm_bindgen", "js_sys", "web_sys", "wasm_bindgen_futures"];
// Our modules, from the source tree: src/core/<module>(.rs) and src/wasm/<module>(.rs).
const MODULES = Object.fromEntries(["core", "wasm"].map((layer) => {
  let entries = [];
  try {
    entries = readdirSync(join(ROOT, "src", layer)).map((f) => f.replace(/\.rs$/, "")).filter((f) => f !== "mod");
  } catch {}
  return [layer, new Set(entries)];
}));
function owner(fullName) {
  if (fullName === "") return "(no name)";
  // Glue wasm-bindgen generates: its intrinsics, externref/multivalue shims, closure adapters.
  if (/^(__wbindgen|__wbg_|__externref|Closure\()|\bshim$/.test(fullName)) return "wasm_bindgen/js_sys/web_sys";
  if (!fullName.includes("::")) {
    // Compiler intrinsics and libm/mem* symbols, else the #[wasm_bindgen] export wrappers of our API.
    if (/^(__|mem|round|fmod|floor|ceil|trunc|sqrt|pow|exp|log)/.test(fullName)) return "std/core/alloc";
    return "sturdy_llm (export wrappers)";
  }
  let n = fullName;
  for (;;) {
    const before = n;
    n = n.replace(/^(<|&|\(|\[|mut |dyn |\*const |\*mut |unsafe |extern "C" )/, "");
    // `<F as Trait>` with a generic parameter as the type: the trait's crate.
    n = n.replace(/^[A-Z] as /, "");
    // core::ptr::drop_in_place<T> and friends: the dropped type's crate.
    const drop = /^core(\[[0-9a-f]+\])?::ptr::drop_in_place</.exec(n);
    if (drop) n = n.slice(drop[0].length);
    if (n === before) break;
  }
  n = n.replace(/\[[0-9a-f]{16}\]/g, "");
  const ours = /^sturdy_llm::(core|wasm)::(?:([a-z_0-9]+)::)?/.exec(n);
  if (ours) return ours[2] && MODULES[ours[1]].has(ours[2]) ? `sturdy_llm::${ours[1]}::${ours[2]}` : `sturdy_llm::${ours[1]} (mod.rs)`;
  const crate = n.split(/[<>\s,;()\]]|::/)[0];
  if (crate === "sturdy_llm") return "sturdy_llm (lib.rs)";
  if (STD.includes(crate)) return "std/core/alloc";
  if (BINDGEN.includes(crate)) return "wasm_bindgen/js_sys/web_sys";
  if (/^(bool|char|str|u8|u16|u32|u64|u128|usize|i8|i16|i32|i64|i128|isize|f32|f64)$/.test(crate)) return "std/core/alloc";
  return crate;
}

/** Code bytes per crate of a wasm with a name section; plus the non-code sections. */
export function crateTable(wasmPath) {
  const bytes = readFileSync(wasmPath);
  const { importedFunctions, bodies, names, sections } = parseWasm(bytes);
  if (names.size === 0) throw new Error(`${wasmPath} has no function names (build it with wasm-bindgen --keep-debug)`);
  const groups = new Map();
  const functions = [];
  const stdModules = new Map();
  bodies.forEach((size, i) => {
    const name = names.get(importedFunctions + i) ?? "";
    const key = owner(name);
    functions.push({ name, size, owner: key });
    if (key === "std/core/alloc") {
      const path = name.replace(/\[[0-9a-f]{16}\]/g, "").replace(/^[<&(\[]+/, "").split(/[<>\s,;()\]]/)[0].split("::");
      const module = path.length > 2 ? `${path[0]}::${path[1]}` : path.length === 2 ? path[0] : "(intrinsics, primitive impls)";
      stdModules.set(module, (stdModules.get(module) ?? 0) + size);
    }
    const group = groups.get(key) ?? { name: key, bytes: 0, functions: 0 };
    group.bytes += size;
    group.functions++;
    groups.set(key, group);
  });
  const code = bodies.reduce((a, b) => a + b, 0);
  const data = sections.filter((s) => s.id === 11).reduce((a, s) => a + s.size, 0);
  const debug = sections.filter((s) => s.id === 0 && s.custom !== "").reduce((a, s) => a + s.size, 0);
  const rest = sections.filter((s) => s.id !== 0 && s.id !== 10 && s.id !== 11).reduce((a, s) => a + s.size, 0);
  // Collapse small third-party crates into "others" (named), keep the groups the report asks for.
  const fixed = /^(sturdy_llm|resilient_llm_|std\/|wasm_bindgen\/|dlmalloc$|hashbrown$|\(no name)/;
  const rows = [];
  const others = { name: "others", bytes: 0, functions: 0, members: [] };
  for (const group of groups.values()) {
    if (fixed.test(group.name) || group.bytes >= 1024) rows.push(group);
    else {
      others.bytes += group.bytes;
      others.functions += group.functions;
      others.members.push(group.name);
    }
  }
  for (const required of ["dlmalloc", "hashbrown"]) if (!groups.has(required)) rows.push({ name: required, bytes: 0, functions: 0 });
  rows.sort((a, b) => b.bytes - a.bytes);
  if (others.functions) rows.push({ ...others, name: `others (${others.members.sort().join(", ")})` });
  functions.sort((a, b) => b.size - a.size);
  const sum = (test) => rows.filter((r) => test(r.name)).reduce((a, r) => a + r.bytes, 0);
  const subtotals = [
    ["this package (sturdy_llm, resilient_llm_sse, resilient_llm_sha256)", sum((n) => /^(sturdy_llm|resilient_llm_)/.test(n))],
    ["std/core/alloc", sum((n) => n === "std/core/alloc")],
    ["wasm_bindgen/js_sys/web_sys", sum((n) => n.startsWith("wasm_bindgen"))],
    ["dlmalloc + hashbrown", sum((n) => n === "dlmalloc" || n === "hashbrown")],
    ["others", sum((n) => n.startsWith("others") || n === "(no name)")],
  ];
  return { file: bytes.length, code, data, otherSections: rest, namesSection: debug, rows, subtotals, functions,
    stdModules: [...stdModules].sort((a, b) => b[1] - a[1]) };
}

// ---- printing ----

const kb = (bytes) => `${(bytes / KB).toFixed(1)} KB`;

export function formatSizes(s) {
  return [
    `| file | raw | gzip -9 | brotli (q11) |`,
    `|---|--:|--:|--:|`,
    `| pkg/sturdy_llm_bg.wasm | ${s.wasmRaw} B | ${s.wasmGzip} B (${kb(s.wasmGzip)}) | ${s.wasmBrotli} B (${kb(s.wasmBrotli)}) |`,
    `| JS glue (${s.glueFiles} files, concatenated) | ${s.glueRaw} B | ${s.glueGzip} B (${kb(s.glueGzip)}) | ${s.glueBrotli} B (${kb(s.glueBrotli)}) |`,
    `| **wasm + glue** | ${s.wasmRaw + s.glueRaw} B | **${s.totalGzip} B (${kb(s.totalGzip)})** | ${s.totalBrotli} B (${kb(s.totalBrotli)}) |`,
  ].join("\n");
}

export function formatCrates(t) {
  const lines = [
    `| crate / module | code bytes | share of code | functions |`,
    `|---|--:|--:|--:|`,
  ];
  for (const row of t.rows) {
    lines.push(`| ${row.name} | ${row.bytes} | ${((row.bytes / t.code) * 100).toFixed(1)}% | ${row.functions} |`);
  }
  for (const [name, bytes] of t.subtotals) lines.push(`| *subtotal: ${name}* | *${bytes}* | *${((bytes / t.code) * 100).toFixed(1)}%* | |`);
  lines.push(`| **code section total** | **${t.code}** | 100% | ${t.rows.reduce((a, r) => a + r.functions, 0)} |`);
  lines.push("");
  lines.push(`Inside std/core/alloc: ${t.stdModules.slice(0, 10).map(([m, b]) => `${m} ${b}`).join(", ")} (bytes).`);
  lines.push("");
  lines.push(`Besides code: data section ${t.data} B (string literals, tables), other sections ${t.otherSections} B ` +
    `(types, imports, exports, element, ...), custom sections ${t.namesSection} B (names; not shipped). ` +
    `Pre-wasm-opt file with names: ${t.file} B.`);
  return lines.join("\n");
}

export function formatTop(t, count) {
  const lines = [`| function (largest ${count}) | bytes | counted under |`, `|---|--:|---|`];
  const clip = (name) => (name.length > 110 ? `${name.slice(0, 107)}...` : name).replace(/\|/g, "\\|");
  for (const f of t.functions.slice(0, count)) lines.push(`| \`${clip(f.name)}\` | ${f.size} | ${f.owner} |`);
  return lines.join("\n");
}

/** Compares the budget numbers; returns the exit code (1 when the ceiling is exceeded). */
export function budget(sizes, targetKb, ceilingKb) {
  const total = sizes.totalGzip;
  const lines = [];
  const targetBytes = targetKb * KB;
  const ceilingBytes = ceilingKb * KB;
  lines.push(total <= targetBytes
    ? `target  ${targetKb} KB gzip -9 (wasm + glue): MET, ${kb(total)} (${kb(targetBytes - total)} to spare)`
    : `target  ${targetKb} KB gzip -9 (wasm + glue): MISSED, ${kb(total)} is ${kb(total - targetBytes)} over (${((total / targetBytes - 1) * 100).toFixed(0)}%)`);
  const ok = total <= ceilingBytes;
  lines.push(ok
    ? `ceiling ${ceilingKb} KB gzip -9 (ratchet, fails when exceeded): ok, ${kb(ceilingBytes - total)} of headroom`
    : `ceiling ${ceilingKb} KB gzip -9 (ratchet): EXCEEDED by ${kb(total - ceilingBytes)}. The package grew: shrink it, ` +
      `or raise CEILING_KB in tests/size in the same change and say why.`);
  return { ok, text: lines.join("\n") };
}

/** How far the README's stated size may drift from the measured one before tests/size fails. */
const README_SLACK_KB = 3;

// ---- command line ----

const isMain = process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const arg = (name) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const pkgDir = arg("pkg") ?? join(ROOT, "pkg");
  const sizes = packageSizes(pkgDir);
  console.log("## Shipped sizes (pkg/)\n");
  console.log(formatSizes(sizes));
  const named = arg("named");
  if (named) {
    console.log("\n## Code by crate (pre-wasm-opt, indicative)\n");
    const table = crateTable(named);
    console.log(formatCrates(table));
    const top = Number(arg("top") ?? 0);
    if (top > 0) {
      console.log("\n## Largest functions (pre-wasm-opt)\n");
      console.log(formatTop(table, top));
    }
  }
  let exitCode = 0;
  if (arg("target-kb") && arg("ceiling-kb")) {
    const verdict = budget(sizes, Number(arg("target-kb")), Number(arg("ceiling-kb")));
    console.log("\n## Budget\n");
    console.log(verdict.text);
    if (!verdict.ok) exitCode = 1;
  }
  // The README states the package's size: that figure must stay true.
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const stated = /the package is about (\d+) KB gzip/.exec(readme);
  const measured = sizes.totalGzip / 1024;
  if (!stated) {
    console.log("\nREADME: no \"the package is about N KB gzip\" figure found");
    exitCode = 1;
  } else if (Math.abs(Number(stated[1]) - measured) > README_SLACK_KB) {
    console.log(`\nREADME says the package is about ${stated[1]} KB gzip; it is ${measured.toFixed(1)} KB: update the README`);
    exitCode = 1;
  } else {
    console.log(`\nREADME's figure (${stated[1]} KB) is within ${README_SLACK_KB} KB of the measured ${measured.toFixed(1)} KB`);
  }
  process.exit(exitCode);
}
