/**
 * Builds the bench's guest components from `bench/guests/` with Pier's own
 * build tool (`tools/componentize.ts`), cached by engine, world and bundle
 * hash in `.build/bench/`.
 *
 * @module
 */
import {
  buildOnce,
  bundle,
  componentize,
  componentizeKey,
  componentizeWat,
  type EngineName,
  worldOf,
} from "../tools/componentize.ts";
import { sha256 } from "../runtime/hash.ts";
import { fromFileUrl } from "../runtime/paths.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url));
const BUILD_DIR = `${ROOT}/.build/bench`;

/** Builds `bench/guests/<entry>` with `engine` against `world` (or the entry's own). */
export async function buildGuest(
  entry: string,
  engine: EngineName,
  world?: string,
): Promise<string> {
  const source = `${ROOT}/bench/guests/${entry}`;
  const js = await bundle(source);
  world ??= await worldOf(source);
  const key = await sha256(`${await componentizeKey(engine)}\n${world ?? ""}\n${js}`);
  const out = `${BUILD_DIR}/${entry.replace(/\.js$/, "")}-${engine}-${key.slice(0, 16)}.wasm`;
  return await buildOnce(out, () => componentize(js, { engine, world }));
}

/** Builds the WebAssembly-text guest `bench/guests/<entry>` against Pier's world. */
export async function buildWatGuest(entry: string): Promise<string> {
  const wat = await Deno.readTextFile(`${ROOT}/bench/guests/${entry}`);
  const key = await sha256(`wat\n${wat}`);
  const out = `${BUILD_DIR}/${entry.replace(/\.wat$/, "")}-wat-${key.slice(0, 16)}.wasm`;
  return await buildOnce(out, () => componentizeWat(wat));
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
