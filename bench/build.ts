/**
 * Builds the bench's guest components from `bench/guests/` with Pier's own
 * build tool (`guest/componentize.ts`), cached by engine, world and bundle
 * hash in `.build/bench/`.
 *
 * @module
 */
import {
  bundle,
  componentize,
  componentizeWat,
  type EngineName,
  ENGINES,
} from "../guest/componentize.ts";
import { sha256 } from "../runtime/compile/cache.ts";
import { fromFileUrl } from "../runtime/paths.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url));
const BUILD_DIR = `${ROOT}/.build/bench`;

/** A guest entry names its world with a `// @world <name>` line. */
const WORLD_PRAGMA = /^\/\/ @world (\S+)$/m;

/** Returns `out` if it was built before; else builds it with `make` and stores it there. */
async function cached(out: string, make: () => Promise<Uint8Array>): Promise<string> {
  try {
    await Deno.stat(out);
    return out;
  } catch {
    // not built yet
  }
  const bytes = await make();
  await Deno.mkdir(BUILD_DIR, { recursive: true });
  const staging = `${out}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await Deno.writeFile(staging, bytes);
  await Deno.rename(staging, out);
  return out;
}

/** Builds `bench/guests/<entry>` with `engine` against `world` (or the entry's own). */
export async function buildGuest(
  entry: string,
  engine: EngineName,
  world?: string,
): Promise<string> {
  const source = `${ROOT}/bench/guests/${entry}`;
  const js = await bundle(source);
  world ??= WORLD_PRAGMA.exec(await Deno.readTextFile(source))?.[1];
  const key = await sha256(`${ENGINES[engine]}\n${world ?? ""}\n${js}`);
  const out = `${BUILD_DIR}/${entry.replace(/\.js$/, "")}-${engine}-${key.slice(0, 16)}.wasm`;
  return await cached(out, () => componentize(js, { engine, world }));
}

/** Builds the WebAssembly-text guest `bench/guests/<entry>` against Pier's world. */
export async function buildWatGuest(entry: string): Promise<string> {
  const wat = await Deno.readTextFile(`${ROOT}/bench/guests/${entry}`);
  const key = await sha256(`wat\n${wat}`);
  const out = `${BUILD_DIR}/${entry.replace(/\.wat$/, "")}-wat-${key.slice(0, 16)}.wasm`;
  return await cached(out, () => componentizeWat(wat));
}

if (import.meta.main) {
  const [entry, engine = "spidermonkey", world] = Deno.args;
  const started = performance.now();
  console.log(
    entry.endsWith(".wat")
      ? await buildWatGuest(entry)
      : await buildGuest(entry, engine as EngineName, world),
  );
  console.log(`${(performance.now() - started).toFixed(0)} ms`);
}
