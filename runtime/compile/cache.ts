/**
 * The on-disk compile cache: one directory per (wasm hash, transpiler,
 * options), written atomically and checked against its recorded hashes on
 * every load, so a corrupt or truncated entry is rebuilt rather than run.
 *
 * @module
 */
import { transpile, TRANSPILE_OPTIONS, TRANSPILER } from "./transpile.ts";

/** A compiled component ready for a worker to load. */
export interface CacheEntry {
  /** Directory with `component.js` and the core modules. */
  dir: string;
  /** True when the entry was already on disk and intact. */
  hit: boolean;
  /** Why an existing entry was rebuilt, if it was. */
  rebuilt?: string;
  /** Interfaces the component imports (without versions). */
  imports: string[];
}

const INDEX = "entry.json";

/** Hex SHA-256 of some bytes. */
export async function sha256(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const digest = await crypto.subtle.digest("SHA-256", data as BufferSource);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** The cache key of a component's bytes under the pinned transpiler. */
export async function cacheKey(wasm: Uint8Array): Promise<string> {
  const settings = await sha256(JSON.stringify({ TRANSPILER, TRANSPILE_OPTIONS }));
  return (await sha256(wasm)).slice(0, 32) + settings.slice(0, 8);
}

/** The entry's imports, or why the entry in `dir` cannot be used. */
async function verify(dir: string): Promise<{ imports: string[] } | { problem: string }> {
  let index: { files: Record<string, string>; imports: string[] };
  try {
    index = JSON.parse(await Deno.readTextFile(`${dir}/${INDEX}`));
    if (!index.files || !Array.isArray(index.imports)) throw new Error("incomplete");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { problem: "missing" };
    return { problem: `unreadable index (${(error as Error).message})` };
  }
  for (const [file, hash] of Object.entries(index.files)) {
    try {
      if (await sha256(await Deno.readFile(`${dir}/${file}`)) !== hash) {
        return { problem: `${file} does not match its hash` };
      }
    } catch {
      return { problem: `${file} is missing` };
    }
  }
  return { imports: index.imports };
}

/**
 * Returns the cache entry for `wasm`, transpiling and storing it when it is
 * missing or damaged.
 */
export async function compileCached(
  wasm: Uint8Array,
  cacheDir: string,
): Promise<CacheEntry> {
  const dir = `${cacheDir}/${await cacheKey(wasm)}`;
  const existing = await verify(dir);
  if ("imports" in existing) return { dir, hit: true, imports: existing.imports };

  const { files, imports } = await transpile(wasm);
  const staging = `${dir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(staging, { recursive: true });
  const hashes: Record<string, string> = {};
  for (const [name, contents] of Object.entries(files)) {
    await Deno.writeFile(`${staging}/${name}`, contents);
    hashes[name] = await sha256(contents);
  }
  await Deno.writeTextFile(
    `${staging}/${INDEX}`,
    JSON.stringify({ transpiler: TRANSPILER, files: hashes, imports }),
  );
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(staging, dir);
  const rebuilt = existing.problem === "missing" ? undefined : existing.problem;
  return { dir, hit: false, rebuilt, imports };
}
