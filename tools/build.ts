/**
 * The component build tool.
 *
 * ```sh
 * deno task build                         # every components/*.ts whose bundle changed
 * deno task build components/invoices.ts  # one component
 * deno task build ./elsewhere             # every *.ts of another directory
 * ```
 *
 * Each `<name>.ts` (names starting with `_` are shared modules, not
 * components) becomes `<name>.wasm` beside it: the entry is bundled with its
 * imports, type-checked, and componentized by its engine, SpiderMonkey unless
 * the source selects QuickJS with a line `// @pier-engine quickjs`. The
 * `.wasm` records the hash of the bundle and engine in a custom section, so
 * an unchanged component is not rebuilt. A failed build names the file and
 * line, leaves the previous `.wasm` untouched and makes the tool exit 1.
 *
 * @module
 */
import type { EngineName } from "./componentize.ts";
import {
  jsStampOf,
  leftImports,
  NATIVE_ENGINE,
  NATIVE_KEY,
  nativeEntryModule,
  nativeImportMap,
  stampJs,
} from "./native_build.ts";
import { customSection } from "./custom_section.ts";
// The custom section that holds a build's hash: the first section after the preamble.
import { STAMP_SECTION } from "../runtime/compile/shape.ts";
import type { BuildAnswer, BuildJob } from "./build_worker.ts";
import { basename, dirname, fromFileUrl, join, resolve, toFileUrl } from "../runtime/paths.ts";
import { componentNameProblem } from "../runtime/discovery.ts";
import { sha256 } from "../runtime/hash.ts";
import { writeAtomic } from "../runtime/write_atomic.ts";
import { relative } from "node:path";

const ROOT = fromFileUrl(new URL("..", import.meta.url));

const PRAGMA = /^\/\/\s*@pier-engine\s+(\S+)\s*$/m;

/** What happened to one component. */
export interface BuildResult {
  name: string;
  source: string;
  /** Its output: `<name>.wasm`, or `<name>.js` for the native engine. */
  wasm: string;
  /** `built`: a new output; `fresh`: the output was up to date; `failed`: see `error`. */
  status: "built" | "fresh" | "failed";
  engine?: EngineName | typeof NATIVE_ENGINE;
  /** Wall-clock time spent on this component. */
  ms: number;
  /** Size of the `.wasm`. */
  bytes?: number;
  error?: string;
}

/** Options of {@link buildComponents}. */
export interface BuildOptions {
  /** Where the `.wasm` files go; beside each source unless given. */
  outDir?: string;
  /** A directory of earlier builds by hash, reused across output paths (the tests use it). */
  cacheDir?: string;
  /**
   * Build every source with this engine, whatever its pragma says (the tests
   * run the examples under both engines from one source).
   */
  engine?: string;
  /** Components built at once; default 2 (each build takes one core). */
  concurrency?: number;
  /** Progress lines; nothing is printed unless given. */
  log?: (line: string) => void;
}

const encoder = new TextEncoder();

/** `wasm` with a custom section recording `key` right after the 8-byte preamble. */
function stamp(wasm: Uint8Array, key: string): Uint8Array {
  const section = customSection(STAMP_SECTION, key);
  const out = new Uint8Array(wasm.length + section.length);
  out.set(wasm.subarray(0, 8));
  out.set(section, 8);
  out.set(wasm.subarray(8), 8 + section.length);
  return out;
}

/** The first bytes of the build output at `path`, if it is a regular file. */
async function readHead(path: string): Promise<Uint8Array | undefined> {
  // Only a regular file has a stamp: opening a FIFO would block until a writer comes.
  if (!(await Deno.stat(path).catch(() => undefined))?.isFile) return undefined;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return undefined;
  }
  try {
    const head = new Uint8Array(128);
    return head.subarray(0, (await file.read(head)) ?? 0);
  } finally {
    file.close();
  }
}

/** The key recorded in the build output at `path` (`.wasm` or native `.js`), if any. */
async function readStamp(path: string): Promise<string | undefined> {
  const head = await readHead(path);
  if (!head) return undefined;
  return path.endsWith(".js") ? jsStampOf(head) : wasmStampOf(head);
}

/** The key recorded by {@link stamp} in the head of a `.wasm`, if any. */
function wasmStampOf(head: Uint8Array): string | undefined {
  const name = encoder.encode(STAMP_SECTION);
  // preamble, section id 0, one-byte size, one-byte name length, name, 64 hex digits
  const start = 8 + 3 + name.length;
  if (head.length < start + 64 || head[8] !== 0 || head[10] !== name.length) return undefined;
  if (new TextDecoder().decode(head.subarray(11, start)) !== STAMP_SECTION) return undefined;
  return new TextDecoder().decode(head.subarray(start, start + 64));
}

/** The nearest `deno.json` at or above `dir`, else the project's. */
async function findConfig(dir: string): Promise<string> {
  for (let current = dir;; current = dirname(current)) {
    const candidate = join(current, "deno.json");
    try {
      await Deno.stat(candidate);
      return candidate;
    } catch {
      if (dirname(current) === current) return join(ROOT, "deno.json");
    }
  }
}

/** Runs `deno check` on `sources`; resolves to its diagnostics, or `undefined` when they pass. */
async function typeCheck(sources: string[], config: string): Promise<string | undefined> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", `--config=${config}`, ...sources],
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code === 0) return undefined;
  return new TextDecoder().decode(stderr).replace(/\n*error: Type checking failed\.[\s\S]*$/, "")
    .trim();
}

/** A component to build, once bundled. */
interface Planned {
  result: BuildResult;
  started: number;
  config: string;
  bundle: string;
  key: string;
  /** Bundled fine, and the `.wasm` is missing or older. */
  stale: boolean;
  /** The files the bundle was made of, as they were (see {@link upToDate}). */
  inputs?: InputsRecord;
}

/**
 * What a build of a source into a `.wasm` was made of: the `.wasm`'s key, and the size and
 * mtime of every file it read. While they all hold, the `.wasm` is up to
 * date without bundling anything (`deno task start` checks this before it
 * runs a build).
 */
interface InputsRecord {
  key: string;
  files: Record<string, [size: number, mtimeMs: number]>;
}

/** Where the build keeps each source's {@link InputsRecord}. */
const INPUTS_DIR = join(ROOT, ".build", "inputs");

/** Where the record of building `source` into `wasm` is kept. */
const inputsPath = async (source: string, wasm: string) =>
  join(INPUTS_DIR, `${(await sha256(`${resolve(source)}\n${resolve(wasm)}`)).slice(0, 32)}.json`);

/** Files whose change can change any build: the engines' pins, the world, the build tool itself. */
const TOOL_FILES = [
  "deno.json",
  "deno.lock",
  "wit/component.wit",
  "tools/build.ts",
  "tools/componentize.ts",
  "tools/custom_section.ts",
].map((file) => join(ROOT, file));

async function fileStates(paths: string[]): Promise<InputsRecord["files"]> {
  const files: InputsRecord["files"] = {};
  for (const path of paths) {
    const info = await Deno.stat(path).catch(() => undefined);
    if (info?.isFile) files[path] = [info.size, info.mtime?.getTime() ?? 0];
  }
  return files;
}

/**
 * The inputs of a bundle made at `since` (ms since the epoch): the files its
 * module comments name, the entry source and config, and {@link TOOL_FILES}.
 * Undefined when a file changed during the bundling, so no record is kept.
 */
async function inputsOf(
  planned: Planned,
  cwd: string,
  since: number,
): Promise<InputsRecord | undefined> {
  const named = [...planned.bundle.matchAll(/^\/\/ (\S[^\n]*)$/gm)].map((m) => resolve(cwd, m[1]));
  const files = await fileStates([
    ...new Set([planned.result.source, planned.config, ...TOOL_FILES, ...named]),
  ]);
  if (Object.values(files).some(([, mtime]) => mtime >= since)) return undefined;
  return { key: planned.key, files };
}

/**
 * True when `wasm` (beside `source` unless given) was built from files that
 * are all as they were then, and still carries that build's key: nothing to
 * bundle.
 */
export async function upToDate(source: string, wasm?: string): Promise<boolean> {
  try {
    wasm ??= outputPath(source, await engineOf(source), dirname(source));
    const record: InputsRecord = JSON.parse(
      await Deno.readTextFile(await inputsPath(source, wasm)),
    );
    if (await readStamp(wasm) !== record.key) return false;
    const now = await fileStates(Object.keys(record.files));
    return Object.entries(record.files).every(([path, [size, mtime]]) =>
      now[path]?.[0] === size && now[path]?.[1] === mtime
    );
  } catch {
    return false;
  }
}

/**
 * The entry that is bundled: the source's default export (or its named exports) as the
 * world's exports.
 */
function entryModule(source: string): string {
  const url = JSON.stringify(toFileUrl(source).href);
  const where = JSON.stringify(basename(source));
  return `import * as entry from ${url};
const component = entry.default ?? entry;
if (typeof component?.incomingHandler?.handle !== "function") {
  throw new Error(${where} + " must export default defineComponent({ ... }) from @pier/guest");
}
export const incomingHandler = component.incomingHandler;
export const initEndpoint = component.initEndpoint;
export const sqliteFunctionEndpoint = component.sqliteFunctionEndpoint;
`;
}

/**
 * The engine the source at `source` names with its pragma (not checked), else
 * `wasm`: enough to tell its output (without loading the engines' packages).
 */
async function engineOf(source: string): Promise<string> {
  return (await Deno.readTextFile(source)).match(PRAGMA)?.[1] ?? "wasm";
}

/** Where the build of `source` by `engine` goes in `dir`. */
function outputPath(source: string, engine: string, dir: string): string {
  const name = basename(source).replace(/\.ts$/, "");
  return join(dir, `${name}.${engine === NATIVE_ENGINE ? "js" : "wasm"}`);
}

/** Bundles one source and decides whether it must be built. */
async function plan(
  source: string,
  options: BuildOptions,
  tempDir: string,
): Promise<Planned> {
  const started = performance.now();
  const name = basename(source).replace(/\.ts$/, "");
  const result: BuildResult = { name, source, wasm: "", status: "fresh", ms: 0 };
  const planned: Planned = { result, started, config: "", bundle: "", key: "", stale: false };
  const { bundle, componentizeKey, DEFAULT_ENGINE, ENGINES } = await import("./componentize.ts");
  try {
    const nameProblem = componentNameProblem(name);
    if (nameProblem) throw new Error(nameProblem);
    const text = await Deno.readTextFile(source);
    const engine = options.engine ?? text.match(PRAGMA)?.[1] ?? DEFAULT_ENGINE;
    const native = engine === NATIVE_ENGINE;
    if (!(engine in ENGINES) && !native) {
      const line = text.slice(0, text.search(PRAGMA)).split("\n").length;
      const known = [...Object.keys(ENGINES), NATIVE_ENGINE].join(", ");
      throw new Error(`${source}:${line}: unknown engine "${engine}" (known: ${known})`);
    }
    result.engine = engine as BuildResult["engine"];
    result.wasm = outputPath(source, engine, options.outDir ?? dirname(source));
    planned.config = await findConfig(dirname(source));
    const entry = join(tempDir, `${name}.entry.js`);
    await Deno.writeTextFile(entry, native ? nativeEntryModule(source) : entryModule(source));
    // Paths in the bundle's module comments are relative to the project, wherever the tool runs;
    // the temporary entry's own comment is dropped, so the same source bundles the same.
    const cwd = dirname(planned.config);
    const bundledAt = Date.now();
    const importMap = native ? await nativeImportMap(planned.config, tempDir) : undefined;
    const js = await bundle(entry, { config: planned.config, cwd, importMap });
    planned.bundle = js.replace(`// ${relative(cwd, entry)}\n`, "");
    const left = native ? leftImports(planned.bundle) : [];
    if (left.length) {
      throw new Error(
        `${source}: the native engine runs one module with no imports, but ${
          left.join(", ")
        } stayed imported (a WASI import is for the WebAssembly engines only)`,
      );
    }
    const engineKey = native ? NATIVE_KEY : await componentizeKey(engine as EngineName);
    planned.key = await sha256(`${engineKey}\n${planned.bundle}`);
    planned.stale = await readStamp(result.wasm) !== planned.key;
    planned.inputs = await inputsOf(planned, cwd, bundledAt);
  } catch (error) {
    result.status = "failed";
    result.error = (error as Error).message;
  }
  return planned;
}

/** Componentizes bundles on a pool of workers, one build per worker at a time. */
class WorkerPool {
  #workers = new Set<Worker>();
  #idle: Worker[] = [];
  #waiting: (() => void)[] = [];
  /** The job each busy worker runs. */
  #jobs = new Map<Worker, PromiseWithResolvers<Uint8Array>>();

  constructor(size: number) {
    for (let i = 0; i < size; i++) this.#idle.push(this.#spawn());
  }

  #spawn(): Worker {
    const worker = new Worker(new URL("./build_worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }: MessageEvent<BuildAnswer>) => {
      const job = this.#jobs.get(worker)!;
      this.#jobs.delete(worker);
      if ("wasm" in data) job.resolve(data.wasm);
      else job.reject(new Error(data.error));
      this.#release(worker);
    };
    worker.onerror = (event) => {
      // The worker died (e.g. out of memory): fail its job and start another worker.
      event.preventDefault();
      this.#jobs.get(worker)?.reject(new Error(`the build worker died: ${event.message}`));
      this.#jobs.delete(worker);
      this.#workers.delete(worker);
      worker.terminate();
      this.#release(this.#spawn());
    };
    this.#workers.add(worker);
    return worker;
  }

  #release(worker: Worker) {
    this.#idle.push(worker);
    this.#waiting.shift()?.();
  }

  async run(source: string, engine: EngineName): Promise<Uint8Array> {
    while (this.#idle.length === 0) await new Promise<void>((r) => this.#waiting.push(r));
    const worker = this.#idle.pop()!;
    const job = Promise.withResolvers<Uint8Array>();
    this.#jobs.set(worker, job);
    worker.postMessage({ source, engine } satisfies BuildJob);
    return await job.promise;
  }

  close() {
    for (const worker of this.#workers) worker.terminate();
  }
}

/** Where the cache keeps the build of `key`, if there is a cache. */
function cachePath(options: BuildOptions, key: string, output: string): string | undefined {
  const ext = output.endsWith(".js") ? "js" : "wasm";
  return options.cacheDir && join(options.cacheDir, `${key.slice(0, 24)}.${ext}`);
}

/** Runs `step` for a planned component, recording a failure and the time it took. */
async function settle(planned: Planned, step: () => Promise<Uint8Array>): Promise<void> {
  const { result } = planned;
  try {
    const wasm = await step();
    await writeAtomic(result.wasm, wasm);
    // The component's build by the other engine goes: both beside each other do not load.
    const other = result.wasm.replace(/\.(js|wasm)$/, (_, ext) => ext === "js" ? ".wasm" : ".js");
    if (await readStamp(other) !== undefined) await Deno.remove(other).catch(() => {});
    result.status = "built";
    result.bytes = wasm.length;
  } catch (error) {
    result.status = "failed";
    result.error = (error as Error).message;
  }
  result.ms = performance.now() - planned.started;
}

/** Componentizes a planned component on the pool; keeps the result in the cache. */
async function componentizePlanned(
  planned: Planned,
  pool: WorkerPool,
  options: BuildOptions,
): Promise<Uint8Array> {
  const { engine } = planned.result;
  const wasm = engine === NATIVE_ENGINE ? stampJs(planned.bundle, planned.key) : stamp(
    await pool.run(planned.bundle, engine as EngineName).catch((error: Error) => {
      throw new Error(`${engine}: ${error.message}`);
    }),
    planned.key,
  );
  const cached = cachePath(options, planned.key, planned.result.wasm);
  if (cached) {
    await Deno.mkdir(options.cacheDir!, { recursive: true });
    await writeAtomic(cached, wasm);
  }
  return wasm;
}

/** Type-checks the sources (grouped by config); maps each failing source to its diagnostics. */
async function checkAll(planned: Planned[]): Promise<Map<string, string>> {
  const failures = new Map<string, string>();
  const byConfig = Map.groupBy(planned, (p) => p.config);
  for (const [config, group] of byConfig) {
    const sources = group.map((p) => p.result.source);
    if (await typeCheck(sources, config) === undefined) continue;
    // Something failed: check one by one to tell which.
    for (const source of sources) {
      const diagnostics = await typeCheck([source], config);
      if (diagnostics) failures.set(source, diagnostics);
    }
  }
  return failures;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function describe(result: BuildResult, width: number): string {
  const name = result.name.padEnd(width);
  switch (result.status) {
    case "fresh":
      return `${name}  up to date (${seconds(result.ms)})`;
    case "built":
      return `${name}  built with ${result.engine} in ${seconds(result.ms)}: ${result.wasm} (${
        (result.bytes! / 2 ** 20).toFixed(1)
      } MB)`;
    case "failed":
      return `${name}  FAILED after ${seconds(result.ms)}\n${result.error!.replace(/^/gm, "    ")}`;
  }
}

/**
 * Builds `sources` (paths of `.ts` entries): each whose bundle or engine
 * changed since its `.wasm` was built is type-checked and componentized.
 * A failure leaves that component's previous `.wasm` untouched.
 */
export async function buildComponents(
  sources: string[],
  options: BuildOptions = {},
): Promise<BuildResult[]> {
  const log = options.log ?? (() => {});
  const width = Math.max(0, ...sources.map((s) => basename(s).length - 3));
  const report = (result: BuildResult) => log(describe(result, width));
  const tempDir = await Deno.makeTempDir({ prefix: "pier-entries-" });
  const planned: Planned[] = [];
  try {
    // Bundling is quick but spawns a process each: two at a time, after a first one alone (on a
    // fresh Deno cache the first `deno bundle` installs esbuild, and two at once race over it).
    const queue = sources.map((s) => resolve(s));
    const first = queue.shift();
    if (first) planned.push(await plan(first, options, tempDir));
    await Promise.all([0, 1].map(async () => {
      for (let source = queue.shift(); source; source = queue.shift()) {
        planned.push(await plan(source, options, tempDir));
      }
    }));
  } finally {
    await Deno.remove(tempDir, { recursive: true });
  }
  const stale = planned.filter((p) => p.stale);
  for (const p of planned) {
    if (!p.stale) {
      p.result.ms = performance.now() - p.started;
      report(p.result);
    }
  }
  // A build found in the cache was type-checked when it was made.
  const uncached: Planned[] = [];
  for (const p of stale) {
    const cached = cachePath(options, p.key, p.result.wasm);
    const wasm = cached && await Deno.readFile(cached).catch(() => undefined);
    if (!wasm) {
      uncached.push(p);
      continue;
    }
    await settle(p, () => Promise.resolve(wasm));
    report(p.result);
  }
  if (uncached.length > 0) {
    log(`type-checking ${uncached.map((p) => p.result.name).join(", ")}`);
    const typeErrors = await checkAll(uncached);
    const checked = uncached.filter((p) => {
      const diagnostics = typeErrors.get(p.result.source);
      if (!diagnostics) return true;
      p.result.status = "failed";
      p.result.error = diagnostics;
      p.result.ms = performance.now() - p.started;
      report(p.result);
      return false;
    });
    const pool = new WorkerPool(Math.min(checked.length, options.concurrency ?? 2));
    try {
      await Promise.all(checked.map(async (p) => {
        await settle(p, () => componentizePlanned(p, pool, options));
        report(p.result);
      }));
    } finally {
      pool.close();
    }
  }
  await recordInputs(planned);
  const order = new Map(sources.map((s, i) => [resolve(s), i]));
  return planned.map((p) => p.result).sort((a, b) => order.get(a.source)! - order.get(b.source)!);
}

/** Keeps the inputs of every component whose `.wasm` now matches its bundle. */
async function recordInputs(planned: Planned[]) {
  for (const { result, inputs } of planned) {
    const path = await inputsPath(result.source, result.wasm);
    if (!inputs || result.status === "failed") {
      await Deno.remove(path).catch(() => {});
      continue;
    }
    await Deno.mkdir(INPUTS_DIR, { recursive: true });
    await writeAtomic(path, JSON.stringify(inputs));
  }
}

/** The component sources directly in `dir`: `*.ts` files not starting with `_` (and not `.d.ts`). */
export async function componentSources(dir: string): Promise<string[]> {
  const sources: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const { name } = entry;
      if (
        entry.isFile && name.endsWith(".ts") && !name.endsWith(".d.ts") && !name.startsWith("_")
      ) {
        sources.push(join(dir, name));
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return sources.sort();
}

/** Where Deno installs the Wizer binary that componentize-js runs (pinned by componentize-js 0.23.0). */
function wizerPath(): string {
  const os = { windows: "win32" }[Deno.build.os as string] ?? Deno.build.os;
  const arch = { x86_64: "x64", aarch64: "arm64" }[Deno.build.arch as string] ?? Deno.build.arch;
  const pkg = `wizer-${os}-${arch}`;
  const exe = os === "win32" ? "wizer.exe" : "wizer";
  return join(
    ROOT,
    `node_modules/.deno/@bytecodealliance+${pkg}@10.0.0/node_modules/@bytecodealliance/${pkg}/${exe}`,
  );
}

/** The directories a build of `targets` writes: each directory target, and each file target's. */
function outputDirs(targets: string[]): string[] {
  return [...new Set(targets.map((t) => resolve(t.endsWith(".ts") ? dirname(t) : t)))];
}

/** The system temp dir, where the engines work. */
function tempDir(): string {
  try {
    return Deno.env.get("TMPDIR") || "/tmp";
  } catch {
    return "/tmp"; // no env permission
  }
}

/**
 * The `deno` arguments that run this tool on `targets` (component sources or
 * directories of them) with only the permissions a build needs:
 *
 * - read the project (sources, `wit/`, `node_modules`), the targets and the temp dir;
 * - write the targets' directories (the `.wasm` files), the temp dir and `.build/inputs/`;
 * - run `deno` (bundle, check) and the Wizer binary componentize-js pre-initializes with;
 * - `--allow-env`: jco's WASI shim, which componentize-js runs its WIT tooling on, copies the
 *   whole environment at load;
 * - `--allow-sys=cpus,networkInterfaces,hostname` and `--allow-ffi` of `node_modules`: the
 *   engines' native parsers (oxc-parser, componentize-qjs) probe the platform and load `.node`
 *   libraries.
 */
export function buildCommand(targets: string[]): string[] {
  const dirs = outputDirs(targets);
  const temp = tempDir();
  return [
    "run",
    `--allow-read=${[ROOT, ...dirs, temp].join(",")}`,
    `--allow-write=${[...dirs, temp, INPUTS_DIR].join(",")}`,
    `--allow-run=${Deno.execPath()},${wizerPath()}`,
    "--allow-env",
    "--allow-sys=cpus,networkInterfaces,hostname",
    `--allow-ffi=${join(ROOT, "node_modules")}`,
    join(ROOT, "tools/build.ts"),
    ...targets.map((t) => resolve(t)),
  ];
}

if (import.meta.main) {
  const targets = Deno.args.length > 0 ? Deno.args : [join(ROOT, "components")];
  const writable = outputDirs(targets).every((path) =>
    Deno.permissions.querySync({ name: "write", path }).state === "granted"
  );
  if (!writable) {
    // Started by `deno task build` with read and run only: run again with exactly what a build needs.
    const child = new Deno.Command(Deno.execPath(), { args: buildCommand(targets) }).spawn();
    Deno.exit((await child.status).code);
  }
  const started = performance.now();
  const sources: string[] = [];
  for (const target of targets) {
    const info = await Deno.stat(target).catch(() => undefined);
    if (!info) {
      console.error(`build: ${target} does not exist`);
      Deno.exit(1);
    }
    sources.push(...(info.isDirectory ? await componentSources(target) : [target]));
  }
  const results = await buildComponents(sources, { log: console.log });
  const count = (status: BuildResult["status"]) =>
    results.filter((r) => r.status === status).length;
  console.log(
    `${results.length} component(s): ${count("built")} built, ${count("fresh")} up to date, ${
      count("failed")
    } failed, in ${seconds(performance.now() - started)}`,
  );
  if (count("failed") > 0) Deno.exit(1);
}
