/**
 * The on-disk compile cache: one directory per (wasm hash, transpiler,
 * options), written atomically. Finding a component's entry again is cheap:
 * a fingerprint of its `.wasm` (size, mtime, inode) leads to the entry, whose files
 * are checked by size; only a changed `.wasm` is read and hashed, and an entry
 * that fails to start is checked against its recorded hashes (see
 * {@link checkEntry}), so a damaged entry is rebuilt rather than run.
 *
 * @module
 */
import { COMPONENT_FILE, readRegularFile } from "../files.ts";
import { sha256 } from "../hash.ts";
import { writeAtomic } from "../write_atomic.ts";
import {
  transpile,
  TRANSPILE_OPTIONS,
  type Transpiled,
  transpileLike,
  TRANSPILER,
} from "./transpile.ts";
import { shapeOf } from "./shape.ts";

/** A compiled component ready for a worker to load. */
export interface CacheEntry {
  /** Directory with the glue (`component.js`) and the core modules. */
  dir: string;
  /** True when the entry was already on disk and intact. */
  hit: boolean;
  /** Why an existing entry was rebuilt, if it was. */
  rebuilt?: string;
  /** Compiled with the glue of this entry, of the same shape, instead of by jco. */
  sameShapeAs?: string;
  /** Interfaces the component imports (without versions). */
  imports: string[];
}

/** What `entry.json` records of an entry. */
interface EntryIndex {
  transpiler: string;
  files: Record<string, { size: number; sha256: string }>;
  imports: string[];
  /** Its component's shape (`shape.ts`), when its glue serves others of that shape. */
  shape?: string;
}

/** What a fingerprint records of a `.wasm` file, and the entry it was compiled into. */
interface SourceFingerprint {
  size: number;
  mtimeMs: number;
  /** Changes with every write, also under a copy that keeps the mtime. */
  ctimeMs: number;
  ino: number | null;
  key: string;
}

const fingerprintOf = (info: Deno.FileInfo, key: string): SourceFingerprint => ({
  size: info.size,
  mtimeMs: info.mtime?.getTime() ?? 0,
  ctimeMs: info.ctime?.getTime() ?? 0,
  ino: info.ino,
  key,
});

const INDEX = "entry.json";
const FINGERPRINTS = "sources";
/** `shapes/<shape>.json`: the key of an entry whose glue serves components of that shape. */
const SHAPES = "shapes";

/** What else than a component's bytes its entry depends on. */
const SETTINGS = JSON.stringify({ TRANSPILER, TRANSPILE_OPTIONS });

/** The cache key of a component's bytes under the pinned transpiler. */
async function cacheKey(wasm: Uint8Array): Promise<string> {
  const settings = await sha256(SETTINGS);
  return (await sha256(wasm)).slice(0, 32) + settings.slice(0, 8);
}

const KEY = /^[0-9a-f]{40}$/;

/** How closely {@link checkEntry} looks: file sizes, or file contents. */
export type Depth = "sizes" | "hashes";

async function readIndex(dir: string): Promise<EntryIndex | { problem: string }> {
  try {
    const index = JSON.parse(await Deno.readTextFile(`${dir}/${INDEX}`));
    if (index.transpiler !== TRANSPILER || !index.files || !Array.isArray(index.imports)) {
      throw new Error("incomplete");
    }
    return index;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { problem: "missing" };
    return { problem: `unreadable index (${(error as Error).message})` };
  }
}

/** Why the entry in `dir` cannot be used, or undefined when it can. */
export async function checkEntry(dir: string, depth: Depth): Promise<string | undefined> {
  const index = await readIndex(dir);
  return "problem" in index ? index.problem : await damage(dir, index, depth);
}

async function damage(dir: string, index: EntryIndex, depth: Depth) {
  for (const [file, { size, sha256: hash }] of Object.entries(index.files)) {
    try {
      if (depth === "sizes") {
        if ((await Deno.stat(`${dir}/${file}`)).size !== size) return `${file} changed size`;
      } else if (await sha256(await Deno.readFile(`${dir}/${file}`)) !== hash) {
        return `${file} does not match its hash`;
      }
    } catch {
      return `${file} is missing`;
    }
  }
  return undefined;
}

const fingerprintPath = async (cacheDir: string, wasmPath: string) =>
  `${cacheDir}/${FINGERPRINTS}/${(await sha256(wasmPath)).slice(0, 32)}.json`;

/**
 * The entry of the `.wasm` at `wasmPath` if its fingerprint still matches the file
 * and the entry's files have their recorded sizes; reads no `.wasm`.
 */
export async function findCached(
  wasmPath: string,
  cacheDir: string,
): Promise<{ entry: CacheEntry; size: number } | undefined> {
  try {
    const [info, known] = await Promise.all([
      Deno.stat(wasmPath),
      Deno.readTextFile(await fingerprintPath(cacheDir, wasmPath)).then(JSON.parse) as Promise<
        SourceFingerprint
      >,
    ]);
    const now = fingerprintOf(info, known.key);
    const same = (Object.keys(now) as (keyof SourceFingerprint)[]).every((k) =>
      now[k] === known[k]
    );
    if (!same || !KEY.test(known.key)) return undefined;
    const dir = `${cacheDir}/${known.key}`;
    const index = await readIndex(dir);
    if ("problem" in index || await damage(dir, index, "sizes")) return undefined;
    return { entry: { dir, hit: true, imports: index.imports }, size: info.size };
  } catch {
    return undefined;
  }
}

/**
 * Returns the cache entry of the `.wasm` at `wasmPath`, transpiling and
 * storing it when it is missing or damaged, and fingerprints the file so that the
 * next start finds the entry with {@link findCached}. A component of a shape
 * already cached is transpiled without jco (see `shape.ts`).
 */
export async function compileCached(
  wasmPath: string,
  cacheDir: string,
): Promise<{ entry: CacheEntry; size: number }> {
  // The stat of what was read: a file changed meanwhile leaves a fingerprint that no longer matches.
  const { bytes: wasm, info } = await readRegularFile(wasmPath, COMPONENT_FILE);
  const key = await cacheKey(wasm);
  const dir = `${cacheDir}/${key}`;
  const writeFingerprint = async () => {
    await Deno.mkdir(`${cacheDir}/${FINGERPRINTS}`, { recursive: true });
    const fingerprint = JSON.stringify(fingerprintOf(info, key));
    await writeAtomic(await fingerprintPath(cacheDir, wasmPath), fingerprint);
  };
  const problem = await checkEntry(dir, "hashes");
  if (!problem) {
    await writeFingerprint();
    const imports = (await readIndex(dir) as EntryIndex).imports;
    return { entry: { dir, hit: true, imports }, size: wasm.byteLength };
  }

  // Bytes that are not framed as a binary have no shape: jco says what is wrong with them.
  const shape = await shapeOf(wasm, SETTINGS).catch(() => undefined);
  const like = shape === undefined ? undefined : await sameShape(cacheDir, shape);
  const { files, imports, ownModules } = like ? transpileLike(wasm, like) : await transpile(wasm);
  const staging = `${dir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(staging, { recursive: true });
  const recorded: EntryIndex["files"] = {};
  for (const [name, contents] of Object.entries(files)) {
    await Deno.writeFile(`${staging}/${name}`, contents);
    recorded[name] = { size: contents.byteLength, sha256: await sha256(contents) };
  }
  const index: EntryIndex = { transpiler: TRANSPILER, files: recorded, imports };
  if (ownModules) index.shape = shape;
  await Deno.writeTextFile(`${staging}/${INDEX}`, JSON.stringify(index));
  await install(staging, dir);
  if (index.shape && !like) {
    await Deno.mkdir(`${cacheDir}/${SHAPES}`, { recursive: true });
    await writeAtomic(`${cacheDir}/${SHAPES}/${index.shape}.json`, JSON.stringify({ key }));
  }
  await writeFingerprint();
  const rebuilt = problem === "missing" ? undefined : problem;
  return {
    entry: { dir, hit: false, rebuilt, sameShapeAs: like?.key, imports },
    size: wasm.byteLength,
  };
}

/**
 * The files and imports of the entry recorded for `shape`, if that entry
 * records the same shape and its files match their recorded hashes.
 */
async function sameShape(
  cacheDir: string,
  shape: string,
): Promise<Transpiled & { key: string } | undefined> {
  try {
    const { key } = JSON.parse(await Deno.readTextFile(`${cacheDir}/${SHAPES}/${shape}.json`));
    if (typeof key !== "string" || !KEY.test(key)) return undefined;
    const index = await readIndex(`${cacheDir}/${key}`);
    if ("problem" in index || index.shape !== shape) return undefined;
    const files: Record<string, Uint8Array> = {};
    for (const [name, { sha256: hash }] of Object.entries(index.files)) {
      files[name] = await Deno.readFile(`${cacheDir}/${key}/${name}`);
      if (await sha256(files[name]) !== hash) return undefined;
    }
    return { key, files, imports: index.imports, ownModules: true };
  } catch {
    return undefined;
  }
}

/**
 * Moves the `staging` entry to `dir`. Another compile of the same bytes (a
 * second copy of the component, another Pier process) may have installed an
 * entry meanwhile, and a worker may already be loading from it: an intact
 * entry is kept and `staging` dropped; only a damaged one is replaced.
 */
async function install(staging: string, dir: string): Promise<void> {
  for (let attempt = 0;; attempt++) {
    const problem = await checkEntry(dir, "hashes");
    if (!problem) {
      await Deno.remove(staging, { recursive: true });
      return;
    }
    if (problem !== "missing" || attempt > 0) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    try {
      await Deno.rename(staging, dir);
      return;
    } catch (error) {
      // A rename onto a directory another compile has just filled fails: look again.
      if (attempt >= 3) throw error;
    }
  }
}

/** How long a cache file is kept at least: another server process may have just written it. */
const PRUNE_MIN_AGE_MS = 10 * 60 * 1000;

/**
 * Removes what no component needs any more: entries that neither a component
 * of `wasmPaths` (its fingerprint) nor a shape (`shapes/`, whose glue serves
 * the next build of that shape) points to, the fingerprints of files no
 * longer there, and staging directories of compiles that never finished,
 * each once it is older than {@link PRUNE_MIN_AGE_MS} (so that what another
 * server process sharing the data dir just wrote stays). A reload adds an
 * entry per version (about 14 MB for a SpiderMonkey component); without this
 * the cache grows by one per save in the dev loop. Returns how many it removed.
 */
export async function pruneCache(
  cacheDir: string,
  wasmPaths: string[],
  now = Date.now(),
): Promise<number> {
  const fingerprints = new Set(
    await Promise.all(wasmPaths.map((path) => fingerprintPath(cacheDir, path))),
  );
  const keep = new Set<string>();
  const keyIn = async (file: string) => {
    try {
      const { key } = JSON.parse(await Deno.readTextFile(file));
      if (typeof key === "string") keep.add(key);
    } catch {
      // unreadable: it points nowhere
    }
  };
  await Promise.all([...fingerprints].map(keyIn));
  const shapeFiles = await list(`${cacheDir}/${SHAPES}`);
  await Promise.all(shapeFiles.map(({ path }) => keyIn(path)));
  const old = (info: Deno.FileInfo) => now - (info.mtime?.getTime() ?? now) >= PRUNE_MIN_AGE_MS;
  const unwanted = [
    ...(await list(cacheDir)).filter(({ name, info }) =>
      info.isDirectory && (KEY.test(name) ? !keep.has(name) : /\.tmp-[0-9a-f]{8}$/.test(name))
    ),
    ...(await list(`${cacheDir}/${FINGERPRINTS}`)).filter(({ path }) => !fingerprints.has(path)),
  ].filter(({ info }) => old(info));
  for (const { path } of unwanted) await Deno.remove(path, { recursive: true }).catch(() => {});
  return unwanted.length;
}

/** The entries of `dir` with their `lstat`, or none when it is missing. */
async function list(dir: string): Promise<{ name: string; path: string; info: Deno.FileInfo }[]> {
  const out = [];
  try {
    for await (const { name } of Deno.readDir(dir)) {
      const path = `${dir}/${name}`;
      const info = await Deno.lstat(path).catch(() => undefined);
      if (info) out.push({ name, path, info });
    }
  } catch {
    // missing
  }
  return out;
}
