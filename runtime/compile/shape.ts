/**
 * Components of the same shape share their transpiled output but for their
 * data. Two builds by one engine (SpiderMonkey, say) differ in the data the
 * engine was pre-initialized with (the core module's data section) and in
 * the build's stamp (a custom section); jco's glue depends on neither
 * (measured: the same `component.js` for the bench guests and the built test
 * fixtures and examples of one shape), and its core modules are the
 * component's own, copied out. So a component whose shape (all but those
 * parts) matches a cached entry's is compiled without jco: that entry's
 * glue, and that entry's rewritten core modules with this component's data
 * sections, which is byte for byte what jco and the rewrite make (`tests/watch_cache_test.ts`). jco's first
 * transpile in a thread takes seconds for a SpiderMonkey component; this
 * takes a copy.
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { sha256 } from "../hash.ts";
import {
  type BinarySection,
  encodeBinary,
  encodeSection,
  PREAMBLE_BYTES,
  readU32,
  sectionsOf,
} from "./sections.ts";

const CUSTOM = 0;
const CORE_MODULE = 1;
const DATA = 11;

/**
 * The custom section in which the build tool (`tools/build.ts`) records what
 * a `.wasm` was built from, right after the preamble.
 */
export const STAMP_SECTION = "pier-build";

/** True for the build's stamp; other custom sections are part of a shape. */
function isStamp({ id, content }: BinarySection): boolean {
  if (id !== CUSTOM) return false;
  const [length, start] = readU32(content, 0);
  return new TextDecoder().decode(content.subarray(start, start + length)) === STAMP_SECTION;
}

/** The core modules a component holds at its top level, in order. */
export function coreModules(component: Uint8Array): Uint8Array[] {
  return sectionsOf(component).filter((s) => s.id === CORE_MODULE).map((s) => s.content);
}

/** A core module without its data section. */
function withoutData(module: Uint8Array): Uint8Array {
  return encodeBinary(module, sectionsOf(module).filter((s) => s.id !== DATA));
}

/**
 * Core module `target` with the data section of `source` in place of its
 * own; undefined when one of them has a data section and the other not.
 */
export function withDataOf(target: Uint8Array, source: Uint8Array): Uint8Array | undefined {
  const data = sectionsOf(source).find((s) => s.id === DATA);
  const sections = sectionsOf(target);
  const at = sections.findIndex((s) => s.id === DATA);
  if (!data && at < 0) return target;
  if (!data || at < 0) return undefined;
  sections[at] = data;
  return encodeBinary(target, sections);
}

/**
 * The hash of what `component` is but for its build stamp and its core
 * modules' data sections; `settings` (the transpiler and its options)
 * included. Throws on bytes that are not framed as a binary.
 */
export async function shapeOf(component: Uint8Array, settings: string): Promise<string> {
  const kept = sectionsOf(component).filter((s) => !isStamp(s)).map((s): BinarySection =>
    s.id === CORE_MODULE ? { id: s.id, content: withoutData(s.content) } : s
  );
  const stripped = concatBytes([
    new TextEncoder().encode(settings),
    component.subarray(0, PREAMBLE_BYTES),
    ...kept.map((s) => encodeSection(s.id, s.content)),
  ]);
  return (await sha256(stripped)).slice(0, 40);
}
