/**
 * A new version of a component compiled without jco: its glue taken from a
 * cached component of the same shape (`runtime/compile/shape.ts`), which is
 * what makes a `.ts` saved under `--watch` serve soon after its build. The
 * entry so made is the one jco makes; an entry whose files do not match
 * their hashes, or that records another shape, lends nothing.
 */
import assert from "node:assert/strict";
import { buildFixtures, startPier } from "./harness.ts";
import { compileCached } from "../runtime/compile/cache.ts";
import { componentizeWat } from "../tools/componentize.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["reload_v1", "reload_v2"]);

/** Every file of the entry in `dir`, by name. */
async function entryFiles(dir: string): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  for await (const { name } of Deno.readDir(dir)) {
    files[name] = await Deno.readFile(`${dir}/${name}`);
  }
  return files;
}

/** `source` copied to `dir` as `<name>.wasm`. */
async function place(dir: string, name: string, source: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.copyFile(source, `${dir}/${name}.wasm`);
  return `${dir}/${name}.wasm`;
}

Deno.test("a component of a cached shape is compiled without jco into the entry jco makes", async () => {
  const root = await scratchDir("pier-shape-");
  try {
    const v1 = await place(`${root}/components`, "v1", fixtures.reload_v1);
    const v2 = await place(`${root}/components`, "v2", fixtures.reload_v2);
    const first = await compileCached(v1, `${root}/cache`);
    assert.equal(first.entry.sameShapeAs, undefined, "the first of its shape goes through jco");
    const second = await compileCached(v2, `${root}/cache`);
    assert.equal(second.entry.hit, false);
    assert.equal(second.entry.sameShapeAs, first.entry.dir.split("/").at(-1));

    const byJco = await compileCached(v2, `${root}/alone`);
    assert.equal(byJco.entry.sameShapeAs, undefined);
    const [made, expected] = await Promise.all([
      entryFiles(second.entry.dir),
      entryFiles(byJco.entry.dir),
    ]);
    assert.deepEqual(Object.keys(made).sort(), Object.keys(expected).sort());
    const text = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));
    assert.deepEqual(text(made["entry.json"]), text(expected["entry.json"]));
    for (const name of Object.keys(expected).filter((name) => name !== "entry.json")) {
      assert.ok(made[name].length === expected[name].length, name);
      assert.deepEqual(made[name], expected[name], name);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a shape record that names an entry of another shape lends nothing", async () => {
  const root = await scratchDir("pier-shape-other-");
  const cache = `${root}/cache`;
  try {
    const wat = await Deno.readTextFile(new URL("../bench/guests/hello.wat", import.meta.url));
    await Deno.writeFile(`${root}/hello.wasm`, await componentizeWat(wat));
    const hello = await compileCached(`${root}/hello.wasm`, cache);
    await compileCached(await place(root, "v1", fixtures.reload_v1), cache);
    // Every shape record now names the WAT component's entry.
    for await (const { name } of Deno.readDir(`${cache}/shapes`)) {
      const key = hello.entry.dir.split("/").at(-1);
      await Deno.writeTextFile(`${cache}/shapes/${name}`, JSON.stringify({ key }));
    }
    const v2 = await compileCached(await place(root, "v2", fixtures.reload_v2), cache);
    assert.equal(v2.entry.sameShapeAs, undefined);
    assert.ok(Object.keys(await entryFiles(v2.entry.dir)).includes("component.core4.wasm"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a damaged entry lends no glue: the next component of its shape is compiled by jco and serves", async () => {
  const root = await scratchDir("pier-shape-damaged-");
  const dirs = { componentsDir: `${root}/components`, dataDir: `${root}/data` };
  try {
    await place(dirs.componentsDir, "reload", fixtures.reload_v1);
    let pier = await startPier(dirs);
    await pier.stop();
    // Damage that keeps the size: only the hashes tell.
    const cache = `${dirs.dataDir}/cache`;
    for await (const { name } of Deno.readDir(cache)) {
      if (!/^[0-9a-f]{40}$/.test(name)) continue;
      const glue = `${cache}/${name}/component.js`;
      const size = (await Deno.stat(glue)).size;
      await Deno.writeTextFile(glue, "export const broken = ;".padEnd(size, " "));
    }
    await Deno.remove(`${dirs.componentsDir}/reload.wasm`);
    await place(dirs.componentsDir, "other", fixtures.reload_v2);
    pier = await startPier(dirs);
    try {
      assert.match(pier.log(), /other: [\d.]+ MB, cache miss, \d+ ms/);
      assert.doesNotMatch(pier.log(), /no jco/);
      const response = await pier.fetch("/reload/version");
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "v2");
    } finally {
      await pier.stop();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--watch: a saved source is reloaded without jco", async () => {
  const root = await scratchDir("pier-watch-shape-");
  const componentsDir = `${root}/components`;
  await Deno.mkdir(componentsDir);
  const file = `${componentsDir}/greet.ts`;
  const source = (greeting: string) =>
    `import { defineComponent, text } from "@pier/guest";
export default defineComponent({ routes: { "GET /greet": () => text(${
      JSON.stringify(greeting)
    }) } });
`;
  await Deno.writeTextFile(file, source("first"));
  const pier = await startPier({ componentsDir, dataDir: `${root}/data`, args: ["--watch"] });
  try {
    assert.match(pier.log(), /greet: [\d.]+ MB, cache miss, \d+ ms/, "the first build: jco");
    await Deno.writeTextFile(file, source("second"));
    await pier.waitForLog(/greet: reloaded/, 240_000);
    assert.match(
      pier.log(),
      /greet: [\d.]+ MB, cache miss \(no jco: the glue of a cached component of the same shape\)/,
    );
    assert.equal(await (await pier.fetch("/greet")).text(), "second");
  } finally {
    await pier.stop();
    await Deno.remove(root, { recursive: true });
  }
});
