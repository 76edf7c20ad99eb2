/**
 * Turns a component's `.wasm` into jco's JS glue plus core modules.
 *
 * Calls jco's bindings generator directly: `transpileBytes` would also load
 * jco's minifier, a native addon that needs `--allow-ffi` and `--allow-sys`.
 *
 * @module
 */
import { SUSPENDING_IMPORTS } from "../capabilities/mod.ts";
import { instrumentLoops } from "./interrupt.ts";
import { limitMemory } from "./memory_limit.ts";
import { SLIM_GLUE, slimGlue } from "./slim_glue.ts";
import { coreModules, withDataOf } from "./shape.ts";
import { sha256 } from "../hash.ts";

/** The jco transpiler this runtime pins, and the rewrite of its glue; part of every cache key. */
export const TRANSPILER =
  `@bytecodealliance/jco-transpile@0.15.0+${SLIM_GLUE}+padded-memory+interruptible-loops`;

/**
 * The cap every stored core module gets: 32-bit memories' own limit. It is
 * written padded, so a component's real cap is set in place at load.
 */
const NO_MEMORY_CAP = 2 ** 32;

/** The glue's file name in the transpiler's output. */
export const GLUE = "component.js";

/** WASI 0.2 minor versions whose components Pier accepts. */
const WASI_VERSIONS = Array.from({ length: 13 }, (_, minor) => `0.2.${minor}`);

/** Host imports that may wait: the guest's stack suspends on them (JSPI). */
const WAITING_IMPORTS = [
  "wasi:io/poll@V#poll",
  "wasi:io/poll@V#[method]pollable.block",
  "wasi:io/streams@V#[method]input-stream.blocking-read",
  "wasi:io/streams@V#[method]input-stream.blocking-skip",
  "wasi:io/streams@V#[method]output-stream.blocking-splice",
  // These wait while the stream's host-side buffer is full (a client that reads slowly).
  "wasi:io/streams@V#[method]output-stream.blocking-write-and-flush",
  "wasi:io/streams@V#[method]output-stream.blocking-write-zeroes-and-flush",
];

/** Exports entered with a Promise so their imports may suspend. */
const SUSPENDABLE_EXPORTS = ["wasi:http/incoming-handler@V#handle"];

const withVersions = (names: string[]) =>
  names.flatMap((name) => WASI_VERSIONS.map((v) => name.replace("@V", `@${v}`)));

/** The options passed to jco's generator; part of every cache key. */
export const TRANSPILE_OPTIONS = {
  name: GLUE.replace(/\.js$/, ""),
  map: [],
  instantiation: { tag: "async" },
  asyncMode: {
    tag: "jspi",
    val: {
      imports: [...withVersions(WAITING_IMPORTS), ...SUSPENDING_IMPORTS],
      exports: [
        ...withVersions(SUSPENDABLE_EXPORTS),
        "trailbase:component/init-endpoint@0.2.0#get-manifest",
      ],
    },
  },
  validLiftingOptimization: false,
  tracing: false,
  noComponentErrorWrapping: true,
  noNodejsCompat: true,
  noTypescript: true,
  tlaCompat: false,
  // Keep every core module a file: the worker compiles each once and reuses it.
  base64Cutoff: 0,
  noNamespacedExports: false,
  multiMemory: false,
};

/** jco's output: file name to contents, and the interfaces the component imports. */
export interface Transpiled {
  files: Record<string, Uint8Array>;
  imports: string[];
  /**
   * jco's core module files are the component's top-level core modules, in
   * order (see {@link coreFile}): its glue serves any component of the same
   * shape (`shape.ts`).
   */
  ownModules: boolean;
}

/** jco's file name of a component's `index`th core module. */
export const coreFile = (index: number) => `component.core${index === 0 ? "" : index + 1}.wasm`;

/** A core module as Pier stores it: loops interruptible, memory cap padded. */
const rewrite = (module: Uint8Array) => limitMemory(instrumentLoops(module), NO_MEMORY_CAP);

const sameBytes = async (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && await sha256(a) === await sha256(b);

/**
 * Transpiles a component; throws with jco's reason when `bytes` is not a
 * valid component.
 */
export async function transpile(bytes: Uint8Array): Promise<Transpiled> {
  assertComponent(bytes);
  // Loaded on the first cache miss only: jco's generator is itself a large component.
  const { $init, generate } = await import("@bytecodealliance/jco-transpile/component");
  await $init;
  // deno-lint-ignore no-explicit-any
  const { files, imports } = generate(bytes, TRANSPILE_OPTIONS as any);
  const byName: Record<string, Uint8Array> = Object.fromEntries(files);
  const wasmFiles = Object.keys(byName).filter((name) => name.endsWith(".wasm"));
  const modules = coreModules(bytes);
  let ownModules = wasmFiles.length === modules.length;
  for (const [i, module] of modules.entries()) {
    ownModules &&= byName[coreFile(i)] !== undefined &&
      await sameBytes(byName[coreFile(i)], module);
  }
  for (const name of wasmFiles) byName[name] = rewrite(byName[name]);
  const glue = new TextDecoder().decode(byName[GLUE]);
  byName[GLUE] = new TextEncoder().encode(slimGlue(glue).code);
  return { files: byName, imports, ownModules };
}

/**
 * Transpiles a component without jco, given the output of a component of
 * the same shape (`shape.ts`): that glue, and that output's core modules
 * with the data sections of this one's. Same shape, the modules differ in
 * their data alone, which the rewrite passes on as it is (nor does it
 * depend on it), so this equals the rewrite of this one's modules, without
 * the rewrite's pass over their code.
 */
export function transpileLike(bytes: Uint8Array, like: Transpiled): Transpiled {
  const files: Record<string, Uint8Array> = { [GLUE]: like.files[GLUE] };
  coreModules(bytes).forEach((module, i) => {
    files[coreFile(i)] = withDataOf(like.files[coreFile(i)], module) ?? rewrite(module);
  });
  return { files, imports: like.imports, ownModules: true };
}

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
/** Binary format "version" field: 1 for a core module, 0x0d 0 1 0 for a component. */
const CORE_MODULE_VERSION = 1;

/** Throws a clear error for bytes that are not a WebAssembly component. */
function assertComponent(bytes: Uint8Array): void {
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error("not a WebAssembly file (no \\0asm header): rebuild it or remove it");
  }
  const version = new DataView(bytes.buffer, bytes.byteOffset + 4, 4).getUint32(0, true);
  if (version === CORE_MODULE_VERSION) {
    throw new Error(
      "a core WebAssembly module, not a component: build it for the component model " +
        "(wasm32-wasip2, componentize-js, or `wasm-tools component new`)",
    );
  }
}
