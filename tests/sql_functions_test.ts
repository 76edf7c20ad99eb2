/** SQL functions written in WebAssembly, called from another component's SQL. */
import assert from "node:assert/strict";
import { buildFixtures, type Pier, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["data", "sqlfn"]);

async function query(pier: Pier, sql: string) {
  const response = await pier.fetch("/sql/query", {
    method: "POST",
    body: JSON.stringify({ sql }),
  });
  return { status: response.status, body: await response.json() };
}

Deno.test("SQL functions from components", async (t) => {
  const root = await scratchDir("pier-sqlfn-");
  const componentsDir = `${root}/components`;
  await Deno.mkdir(componentsDir);
  await Deno.copyFile(fixtures.data, `${componentsDir}/data.wasm`);
  await Deno.writeTextFile(`${componentsDir}/data.permissions.json`, '{"db": "write"}');
  await Deno.copyFile(fixtures.sqlfn, `${componentsDir}/sqlfn.wasm`);
  const pier = await startPier({ componentsDir, dataDir: `${root}/data` });
  try {
    await t.step("another component's SQL calls them, values exact", async () => {
      const r = await query(
        pier,
        "SELECT pier_slug('Hello, World!'), pier_add(9007199254740993, 2), " +
          "pier_describe(1, 2.5, 'x', x'00', NULL), pier_describe()",
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.rows, [[
        { text: "hello-world" },
        { integer: "9007199254740995" },
        { text: "integer,real,text,blob,null" },
        { text: "" },
      ]]);
    });

    await t.step("a guest error or trap is a SQL error, not a crash", async () => {
      let r = await query(pier, "SELECT pier_fail()");
      assert.equal(r.status, 400);
      assert.match(r.body.error, /pier_fail always fails/);
      r = await query(pier, "SELECT pier_trap()");
      assert.equal(r.status, 400);
      assert.match(r.body.error, /sqlfn\.pier_trap/);
      r = await query(pier, "SELECT pier_slug('still works')");
      assert.deepEqual(r.body.rows, [[{ text: "still-works" }]]);
    });

    await t.step("a looping function fails its statement; its worker is replaced", async () => {
      const started = performance.now();
      const r = await query(pier, "SELECT pier_loop()");
      assert.equal(r.status, 400);
      assert.match(r.body.error, /sqlfn\.pier_loop: no answer within 1000 ms/);
      assert.ok(performance.now() - started < 5000);
      await pier.waitForLog(
        /sqlfn: worker replaced: SQL function pier_loop ran past 1000 ms/,
        2000,
      );
      const ping = await pier.fetch("/sqlfn/ping");
      assert.equal(await ping.text(), "pong");
      const again = await query(pier, "SELECT pier_slug('back again')");
      assert.deepEqual(again.body.rows, [[{ text: "back-again" }]]);
    });

    await t.step("arity and flags are honoured", async () => {
      let r = await query(pier, "SELECT pier_add(1)");
      assert.match(r.body.error, /wrong number of arguments/);
      await query(
        pier,
        "CREATE TABLE slugs (title TEXT, slug TEXT GENERATED ALWAYS AS (pier_slug(title)))",
      );
      r = await query(pier, "SELECT pier_direct()");
      assert.deepEqual(r.body.rows, [[{ real: 0.5 }]]);
      // DirectOnly: not from a view.
      await query(pier, "CREATE VIEW direct_view AS SELECT pier_direct() AS v");
      r = await query(pier, "SELECT v FROM direct_view");
      assert.match(r.body.error, /unsafe use of pier_direct/);
    });

    await t.step("bad declarations are refused, the rest load", async () => {
      const health = await (await pier.fetch("/_/health")).json();
      const sqlfn = health.components.find((c: { name: string }) => c.name === "sqlfn");
      assert.equal(sqlfn.state, "loaded");
      assert.deepEqual(sqlfn.warnings.map((w: string) => w.replace(/:.*/, "")), [
        'SQL function "bad name" refused',
        'SQL function "pier_badflag" refused',
      ]);
    });
  } finally {
    await pier.stop();
  }
});
