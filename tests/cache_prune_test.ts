/**
 * The compile cache's clean-up (`pruneCache` in `runtime/compile/cache.ts`):
 * a reload leaves the old version's entry behind (about 14 MB for a
 * SpiderMonkey component); what no component and no shape points to goes,
 * once it is old enough that no other server process can be writing it.
 */
import assert from "node:assert/strict";
import { compileCached, pruneCache } from "../runtime/compile/cache.ts";
import { STAMP_SECTION } from "../runtime/compile/shape.ts";
import { componentizeWat } from "../tools/componentize.ts";
import { customSection } from "../tools/custom_section.ts";
import { scratchDir } from "./scratch.ts";

const hello = await componentizeWat(
  await Deno.readTextFile(new URL("../bench/guests/hello.wat", import.meta.url)),
);
/** The hello component as build `n` of its source: same code, its own stamp and cache key. */
const build = (n: number) =>
  new Uint8Array([...hello, ...customSection(STAMP_SECTION, `build ${n}`)]);

const LATER = Date.now() + 11 * 60 * 1000;

Deno.test("compile cache: entries no component or shape needs are removed once old enough", async () => {
  const root = await scratchDir("pier-prune-");
  const cacheDir = `${root}/cache`;
  const app = `${root}/app.wasm`;
  const gone = `${root}/gone.wasm`;
  const keys: string[] = [];
  for (const n of [1, 2, 3]) {
    await Deno.writeFile(app, build(n));
    const { entry } = await compileCached(app, cacheDir);
    keys.push(entry.dir.slice(cacheDir.length + 1));
  }
  await Deno.writeFile(gone, build(4));
  const goneEntry = (await compileCached(gone, cacheDir)).entry.dir;
  await Deno.remove(gone);
  assert.equal(new Set(keys).size, 3);

  const shapeSources = new Set<string>();
  const shapes = await Deno.stat(`${cacheDir}/shapes`).then(() => true, () => false);
  for (const { name } of shapes ? Deno.readDirSync(`${cacheDir}/shapes`) : []) {
    shapeSources.add(JSON.parse(await Deno.readTextFile(`${cacheDir}/shapes/${name}`)).key);
  }
  const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
  const fingerprints = () => [...Deno.readDirSync(`${cacheDir}/sources`)].length;
  assert.equal(fingerprints(), 2);

  // Just written: another server process may be about to point to them; nothing goes.
  assert.equal(await pruneCache(cacheDir, [app]), 0);
  for (const key of keys) assert.ok(await exists(`${cacheDir}/${key}`));

  const removed = await pruneCache(cacheDir, [app], LATER);
  // The current version stays, and so does the entry whose glue serves its shape.
  assert.ok(await exists(`${cacheDir}/${keys[2]}/entry.json`));
  for (const key of shapeSources) assert.ok(await exists(`${cacheDir}/${key}/entry.json`), key);
  // Build 2 was superseded and lends nothing: gone, with the removed file's entry and fingerprint.
  assert.ok(!shapeSources.has(keys[1]));
  assert.ok(!await exists(`${cacheDir}/${keys[1]}`));
  assert.ok(!await exists(goneEntry));
  assert.equal(fingerprints(), 1);
  assert.equal(removed, (shapeSources.has(keys[0]) ? 1 : 2) + 1 + 1);

  // What is left still serves: the current version is found again without a compile.
  const again = await compileCached(app, cacheDir);
  assert.equal(again.entry.hit, true);
});
