/**
 * The guest SDK's lean per-request paths for the SpiderMonkey engine
 * (`guest/backend.ts`, `db.ts`, `response.ts`), over HTTP through a real
 * Pier serving `tests/fixtures/sm_guest_app.ts`: text bodies the SDK made
 * are written at once instead of read from their stream, `db.query` and
 * `db.execute` run in a transaction of their own without the SDK's async
 * wrapper, and the request's fields are read once for both `__context` and
 * the request's headers. See docs/request-path.md, "SpiderMonkey guest cost".
 */
import assert from "node:assert/strict";
import { buildComponents } from "../tools/build.ts";
import { fromFileUrl } from "../runtime/paths.ts";
import { startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

/** The fixture's `/sm/long` body: multi-byte characters, longer than one 4096-byte WASI write. */
const LONG = "é€😀 ".repeat(1000);
const ROOT = fromFileUrl(new URL("..", import.meta.url)).replace(/\/$/, "");

Deno.test("SDK lean paths under SpiderMonkey", async (t) => {
  const root = await scratchDir("pier-sm-guest-test-");
  const [built] = await buildComponents([`${ROOT}/tests/fixtures/sm_guest_app.ts`], {
    cacheDir: `${ROOT}/.build/components`,
    outDir: root,
    log: (line) => console.log(`  ${line}`),
  });
  assert.equal(built.status, "built", built.error);
  const componentsDir = `${root}/components`;
  await Deno.mkdir(componentsDir);
  await Deno.copyFile(built.wasm, `${componentsDir}/sm.wasm`);
  await Deno.writeTextFile(`${componentsDir}/sm.permissions.json`, '{"db": "write"}');
  const pier = await startPier({ componentsDir, dataDir: `${root}/data` });
  const get = async (path: string, init?: RequestInit) => {
    const response = await pier.fetch(path, init);
    return { status: response.status, headers: response.headers, body: await response.text() };
  };
  try {
    await t.step("a text body longer than one write, multi-byte, arrives whole", async () => {
      const r = await get("/sm/long");
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
      assert.equal(r.body, LONG);
      const head = await get("/sm/long", { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.body, "");
    });

    await t.step("json and HttpError keep their status, headers and body", async () => {
      const r = await get("/sm/json");
      assert.equal(r.status, 201);
      assert.equal(r.headers.get("content-type"), "application/json");
      assert.equal(r.headers.get("x-a"), "1");
      assert.equal(r.body, '{"n":"18446744073709551616","s":"ü"}');
      const teapot = await get("/sm/teapot");
      assert.equal(teapot.status, 418);
      assert.equal(teapot.body, "short and stout");
    });

    await t.step("a response its handler read is not sent from the remembered text", async () => {
      // As before the lean path: its used body stream gives nothing (the body fails midway).
      const response = await pier.fetch("/sm/read-own");
      assert.equal(response.status, 200);
      assert.equal(await response.text().catch(() => ""), "");
    });

    await t.step("the request's headers, without __context", async () => {
      const r = await get("/sm/headers", { headers: { "x-one": "1", "__context": "forged" } });
      const names: string[] = JSON.parse(r.body);
      assert.ok(names.includes("x-one"), r.body);
      assert.ok(!names.includes("__context"), r.body);
    });

    await t.step("single statements: counts, a failure as DbError rolled back", async () => {
      const first = JSON.parse((await get("/sm/rows", { method: "POST" })).body);
      assert.equal(first.changed, 2);
      assert.match(first.failure, /UNIQUE constraint failed.*\(in: INSERT INTO sm_rows \(id, v\)/);
      assert.deepEqual(first.rows, [[2, 2]], "the failed statement inserted nothing");
      const second = JSON.parse((await get("/sm/rows", { method: "POST" })).body);
      assert.deepEqual(second.rows, [[4, 4]]);
    });
  } finally {
    await pier.stop();
  }
});
