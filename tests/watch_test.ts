/**
 * The dev loop over a real Pier process started with `--watch`: a component
 * source edited while Pier serves is built again and reloaded; a broken edit
 * prints its error with file and line and leaves the running version serving.
 */
import assert from "node:assert/strict";
import { startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

/** A component source answering `GET /greet` with `greeting`; `extra` goes at its line 3. */
const source = (greeting: string, extra = "") =>
  `import { defineComponent, text } from "@pier/guest";

${extra}
export default defineComponent({
  routes: { "GET /greet": () => text(${JSON.stringify(greeting)}) },
});
`;

Deno.test("--watch: a saved source is built and served without restart; a broken save keeps the old version", async () => {
  const root = await scratchDir("pier-watch-");
  const componentsDir = `${root}/components`;
  await Deno.mkdir(componentsDir);
  const file = `${componentsDir}/greet.ts`;
  await Deno.writeTextFile(file, source("first"));
  const pier = await startPier({ componentsDir, dataDir: `${root}/data`, args: ["--watch"] });
  const greeting = async () => await (await pier.fetch("/greet")).text();
  try {
    assert.equal(await greeting(), "first");

    await Deno.writeTextFile(file, source("second"));
    await pier.waitForLog(/watch: built greet\.ts/, 240_000);
    await pier.waitForLog(/greet: reloaded/, 30_000);
    assert.equal(await greeting(), "second");

    await Deno.writeTextFile(file, source("third", 'const broken: number = "not a number";'));
    await pier.waitForLog(/watch: the build failed/, 240_000);
    assert.match(pier.log(), /greet\.ts:3:\d+/, "the error names the file and line");
    assert.equal(await greeting(), "second");
    assert.equal(pier.log().match(/greet: reloaded/g)?.length, 1);
  } finally {
    await pier.stop();
    await Deno.remove(root, { recursive: true });
  }
});
