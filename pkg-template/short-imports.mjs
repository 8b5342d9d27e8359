// Renames the wasm's imports from the glue (`__wbg_fetch_5ef96933660780b7`...) to short names (`_0`,
// `_1`...), in the wasm's import section and in the glue's import object alike.
//   node pkg-template/short-imports.mjs pkg/sturdy_llm_bg.wasm pkg/sturdy_llm.js
// Why: wasm-bindgen names each import after its JS function plus a 16-digit hash. Over ~120 imports,
// written once in the wasm and once in the glue, those hashes are random digits that gzip cannot
// shrink (measured: 3.4 KB of the gzipped package). The glue must hold each name exactly once (as
// its import object's key), which is checked, so renaming them changes nothing else.
import { readFileSync, writeFileSync } from "node:fs";

const GLUE_MODULE = "./sturdy_llm_bg.js";
const IMPORT_SECTION = 2;

function leb(value) {
  const out = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
}

function name(text) {
  const bytes = Buffer.from(text);
  return [...leb(bytes.length), ...bytes];
}

/** The wasm with its glue imports renamed, and the glue to match. */
function shorten(wasm, glue) {
  let at = 8; // magic and version
  const readLeb = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = wasm[at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  const readName = () => {
    const length = readLeb();
    at += length;
    return wasm.toString("utf8", at - length, at);
  };
  while (at < wasm.length) {
    const sectionStart = at;
    const id = wasm[at++];
    const sectionEnd = readLeb() + at;
    if (id !== IMPORT_SECTION) {
      at = sectionEnd;
      continue;
    }
    const count = readLeb();
    const entries = [];
    let renamed = 0;
    for (let i = 0; i < count; i++) {
      const module = readName();
      let field = readName();
      const descStart = at;
      const kind = wasm[at++];
      if (kind === 0) readLeb(); // function: type index
      else if (kind === 1 || kind === 2) { // table (element type, then limits) or memory (limits)
        if (kind === 1) at++;
        const flags = wasm[at++];
        readLeb();
        if (flags & 1) readLeb();
      } else if (kind === 3) at += 2; // global: value type, mutability
      else throw new Error(`short-imports: unknown import kind ${kind}`);
      if (module === GLUE_MODULE) {
        const short = `_${(renamed++).toString(36)}`;
        const uses = glue.split(`${field}:`).length - 1;
        if (uses !== 1) throw new Error(`short-imports: ${field} occurs ${uses} times in the glue`);
        glue = glue.replace(`${field}:`, `${short}:`);
        field = short;
      }
      entries.push([...name(module), ...name(field), ...wasm.subarray(descStart, at)]);
    }
    if (at !== sectionEnd) throw new Error("short-imports: the import section did not parse");
    const payload = [...leb(count), ...entries.flat()];
    const section = Buffer.from([IMPORT_SECTION, ...leb(payload.length), ...payload]);
    return [Buffer.concat([wasm.subarray(0, sectionStart), section, wasm.subarray(sectionEnd)]), glue];
  }
  throw new Error("short-imports: no import section");
}

const [wasmPath, gluePath] = process.argv.slice(2);
const [wasm, glue] = shorten(readFileSync(wasmPath), readFileSync(gluePath, "utf8"));
writeFileSync(wasmPath, wasm);
writeFileSync(gluePath, glue);
