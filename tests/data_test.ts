/**
 * The data capabilities over real HTTP with real components: SQLite through
 * the `transaction` resource, the deprecated `tx-*` functions and in-band
 * `__sqlite`/`__prefs` calls; the durable key-value store; and the grants.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { buildFixtures, componentsWithManifests, type Pier, startPier } from "./harness.ts";

const fixtures = await buildFixtures(["data", "data_reader", "data_nodb"]);

/** Component name: its fixture and its permission manifest (none: deny all). */
const COMPONENTS: Record<string, [string, unknown]> = {
  data: [fixtures.data, { db: "write", kv: ["", "sessions"] }],
  reader: [fixtures.data_reader, { db: "read", kv: [] }],
  nodb: [fixtures.data_nodb, undefined],
};

const setup = () => componentsWithManifests(COMPONENTS);

async function post(pier: Pier, path: string, body: unknown) {
  const response = await pier.fetch(path, { method: "POST", body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

const sql = (pier: Pier, component: string, mode: string, body: unknown) =>
  post(pier, `/${component}/sql/${mode}`.replace(/^\/data/, ""), body);

Deno.test("data capabilities", async (t) => {
  const dirs = await setup();
  let pier = await startPier(dirs);
  const health = await (await pier.fetch("/_/health")).json();
  const loaded = health.components.filter((c: { state: string }) => c.state === "loaded");
  assert.equal(loaded.length, 3, JSON.stringify(health));
  try {
    await t.step("execute and query keep every SQLite type exact", async () => {
      let r = await sql(pier, "data", "execute", {
        sql: "CREATE TABLE things (i INTEGER, r REAL, t TEXT, b BLOB, n)",
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      r = await sql(pier, "data", "execute", {
        sql: "INSERT INTO things VALUES (?, ?, ?, ?, ?), (?, 0.5, 'é', x'00ff', NULL)",
        params: [
          { integer: "9223372036854775807" },
          { real: 1.25 },
          { text: "hello ✓" },
          { blob: [0, 1, 254, 255] },
          null,
          { integer: "-9007199254740993" },
        ],
      });
      assert.deepEqual(r.body, { changes: "2" });
      r = await sql(pier, "data", "query", {
        sql: "SELECT i, r, t, b, n FROM things ORDER BY r DESC",
      });
      assert.deepEqual(r.body.rows, [
        [{ integer: "9223372036854775807" }, { real: 1.25 }, { text: "hello ✓" }, {
          blob: [0, 1, 254, 255],
        }, null],
        [{ integer: "-9007199254740993" }, { real: 0.5 }, { text: "é" }, { blob: [0, 255] }, null],
      ]);
      // The same values are in the database file.
      const file = new DatabaseSync(`${dirs.dataDir}/main.db`, { readOnly: true });
      const statement = file.prepare("SELECT i FROM things ORDER BY i");
      statement.setReadBigInts(true);
      assert.deepEqual(statement.all().map((row) => row.i), [
        -9007199254740993n,
        9223372036854775807n,
      ]);
      file.close();
    });

    await t.step("SQLite's errors reach the guest", async () => {
      let r = await sql(pier, "data", "query", { sql: "SELEKT 1" });
      assert.equal(r.status, 400);
      assert.match(r.body.error, /syntax error/);
      r = await sql(pier, "data", "query", {
        sql: "SELECT ?",
        params: [{ integer: "1" }, { integer: "2" }],
      });
      assert.equal(r.status, 400);
      assert.match(r.body.error, /column index out of range/);
      r = await sql(pier, "data", "query", { sql: "SELECT * FROM missing_table" });
      assert.match(r.body.error, /no such table/);
      // Raised while stepping, not while preparing.
      r = await sql(pier, "data", "query", { sql: "SELECT abs(-9223372036854775808)" });
      assert.match(r.body.error, /integer overflow/);
    });

    await t.step("rollback discards, a transaction left open is rolled back", async () => {
      await sql(pier, "data", "execute", { sql: "CREATE TABLE log (v TEXT)" });
      let r = await sql(pier, "data", "rollback", {
        sql: "INSERT INTO log VALUES ('rolled back')",
      });
      assert.deepEqual(r.body, { rolledBack: true });
      r = await sql(pier, "data", "left-open", { sql: "INSERT INTO log VALUES ('left open')" });
      assert.deepEqual(r.body, { leftOpen: true });
      await pier.waitForLog(/rolled back 1 transaction\(s\) left open/, 5000);
      r = await sql(pier, "data", "query", { sql: "SELECT count(*) FROM log" });
      assert.deepEqual(r.body.rows, [[{ integer: "0" }]]);
    });

    await t.step("deprecated tx-* functions", async () => {
      await sql(pier, "data", "execute", { sql: "CREATE TABLE legacy (v)" });
      const r = await sql(pier, "data", "legacy", { sql: "INSERT INTO legacy VALUES (1)" });
      assert.deepEqual(r.body.rows, [[{ integer: "1" }]]);
    });

    await t.step("concurrent transactions are isolated and serialized", async () => {
      await sql(pier, "data", "execute", { sql: "CREATE TABLE counter (n INTEGER)" });
      await sql(pier, "data", "execute", { sql: "INSERT INTO counter VALUES (0)" });
      const bump = { sql: "UPDATE counter SET n = n + 1", ms: 300 };
      const results = await Promise.all([
        sql(pier, "data", "slow", bump),
        sql(pier, "data", "slow", bump),
        sql(pier, "data", "execute", { sql: "UPDATE counter SET n = n + 100" }),
      ]);
      for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
      const r = await sql(pier, "data", "query", { sql: "SELECT n FROM counter" });
      assert.deepEqual(r.body.rows, [[{ integer: "104" }]]);
    });

    await t.step("waiting too long for the write lock fails clearly", async () => {
      const slow = sql(pier, "data", "slow", { sql: "UPDATE counter SET n = n + 1", ms: 6000 });
      await new Promise((r) => setTimeout(r, 300));
      const r = await sql(pier, "data", "execute", { sql: "UPDATE counter SET n = 0" });
      assert.equal(r.status, 400);
      assert.match(r.body.error, /waited 5000 ms for the database write lock/);
      assert.equal((await slow).status, 200);
    });

    await t.step("statements reaching other files or Pier's tables are refused", async () => {
      for (
        const statement of [
          `ATTACH DATABASE '${dirs.dataDir}/other.db' AS other`,
          "DETACH DATABASE main",
          // Inside the fixture's transaction SQLite refuses VACUUM itself; see the in-band step too.
          `VACUUM INTO '${dirs.dataDir}/copy.db'`,
          "PRAGMA journal_mode = DELETE",
          "SELECT load_extension('libevil')",
          "SELECT * FROM _pier_kv",
        ]
      ) {
        const r = await sql(pier, "data", "query", { sql: statement });
        assert.equal(r.status, 400, statement);
        assert.match(
          r.body.error,
          /not authorized|authorization denied|prohibited|cannot VACUUM/,
          statement,
        );
      }
      await assert.rejects(Deno.stat(`${dirs.dataDir}/copy.db`));
      await assert.rejects(Deno.stat(`${dirs.dataDir}/other.db`));
    });

    await t.step(
      "a read grant reads but SQLite refuses its writes; no grant, no access",
      async () => {
        let r = await post(pier, "/reader/sql/query", { sql: "SELECT count(*) FROM things" });
        assert.deepEqual(r.body.rows, [[{ integer: "2" }]]);
        r = await post(pier, "/reader/sql/execute", { sql: "DELETE FROM things" });
        assert.equal(r.status, 400);
        assert.match(r.body.error, /readonly database/);
        r = await post(pier, "/nodb/sql/query", { sql: "SELECT 1" });
        assert.equal(r.status, 400);
        assert.match(r.body.error, /not granted/);
      },
    );

    await t.step("a read transaction holds up no other reader", async () => {
      let slowEnded = false;
      const slow = post(pier, "/reader/sql/slow", { sql: "SELECT count(*) FROM things", ms: 1500 })
        .then((r) => {
          slowEnded = true;
          return r;
        });
      await new Promise((r) => setTimeout(r, 300));
      const r = await post(pier, "/reader/sql/query", { sql: "SELECT count(*) FROM things" });
      assert.deepEqual(r.body.rows, [[{ integer: "2" }]]);
      assert.equal(slowEnded, false, "the query was answered while the transaction was open");
      assert.equal((await slow).status, 200);
    });

    await t.step("in-band __sqlite answers the ABI's JSON shapes", async () => {
      const inband = (path: string, body: unknown) =>
        post(pier, `/inband/${path}`, body).then((r) => JSON.parse(r.body.body));
      assert.deepEqual(
        await inband("__sqlite/execute", {
          query: "INSERT INTO things (i, b) VALUES (?, ?), (?, ?), (?, ?)",
          params: [
            { Integer: 9007199254740993 },
            { Blob: { Array: [1, 2] } },
            { Integer: 7 },
            { Blob: { Base64UrlSafe: "_-8=" } },
            { Integer: 8 },
            { Blob: { Hex: "0aff" } },
          ],
        }),
        { Execute: { rows_affected: 3 } },
      );
      assert.deepEqual(
        await inband("__sqlite/query", {
          query:
            "SELECT i, b, 'x', 2.5, NULL FROM things WHERE i BETWEEN 7 AND 9007199254740993 ORDER BY i",
          params: [],
        }),
        {
          Query: {
            rows: [
              [
                { Integer: 7 },
                { Blob: { Base64UrlSafe: "_-8=" } },
                { Text: "x" },
                { Real: 2.5 },
                "Null",
              ],
              [
                { Integer: 8 },
                { Blob: { Base64UrlSafe: "Cv8=" } },
                { Text: "x" },
                { Real: 2.5 },
                "Null",
              ],
              [{ Integer: 9007199254740993 }, { Blob: { Base64UrlSafe: "AQI=" } }, { Text: "x" }, {
                Real: 2.5,
              }, "Null"],
            ],
          },
        },
      );
      // Written as text: a JS number cannot hold 2^53 + 3.
      const raw = (path: string, body: string) =>
        pier.fetch(`/inband/__sqlite/${path}`, { method: "POST", body }).then((r) => r.json());
      await sql(pier, "data", "execute", { sql: "CREATE TABLE big (n INTEGER)" });
      await raw(
        "execute",
        '{"query": "INSERT INTO big VALUES (?)", "params": [{"Integer": 9007199254740995}]}',
      );
      const exact = await raw("query", '{"query": "SELECT n FROM big", "params": []}');
      assert.equal(exact.body, '{"Query":{"rows":[[{"Integer":9007199254740995}]]}}');
      assert.match(
        (await inband("__sqlite/query", { query: "SELECT ?", params: [{ Blob: { Base85: "x" } }] }))
          .Error,
        /blob encoding not understood/,
      );
      assert.match((await inband("__sqlite/query", { query: "nonsense" })).Error, /syntax error/);
      assert.match(
        (await inband("__sqlite/execute", { query: `VACUUM INTO '${dirs.dataDir}/copy.db'` }))
          .Error,
        /not authorized|authorization denied/,
      );
      await assert.rejects(Deno.stat(`${dirs.dataDir}/copy.db`));
      assert.ok((await inband("__sqlite/query", "not an object")).Error);
    });

    await t.step("in-band __prefs", async () => {
      const prefs = (body: unknown) =>
        post(pier, "/inband/__prefs/", body).then((r) => JSON.parse(r.body.body));
      assert.deepEqual(await prefs({ Get: { key: "theme" } }), { Value: null });
      assert.equal(await prefs({ Set: { key: "theme", value: "dark" } }), "Ok");
      assert.deepEqual(await prefs({ Get: { key: "theme" } }), { Value: "dark" });
      assert.equal(await prefs({ Set: { key: "theme", value: null } }), "Ok");
      assert.deepEqual(await prefs({ Get: { key: "theme" } }), { Value: null });
    });

    await t.step("key-value: default and named buckets, batch, paging", async () => {
      const kv = (bucket: string, op: string, body: unknown = {}) =>
        post(pier, `/kv/${bucket}/${op}`, body).then((r) => r.body);
      assert.deepEqual(await kv("default", "set", { key: "a", value: "1" }), { ok: true });
      assert.deepEqual(await kv("sessions", "set", { key: "a", value: "session" }), { ok: true });
      assert.deepEqual(await kv("default", "get", { key: "a" }), { value: "1" });
      assert.deepEqual(await kv("sessions", "get", { key: "a" }), { value: "session" });
      assert.deepEqual(await kv("default", "exists", { key: "a" }), { exists: true });
      assert.deepEqual(await kv("default", "delete", { key: "a" }), { ok: true });
      assert.deepEqual(await kv("default", "get", { key: "a" }), { value: null });
      assert.deepEqual(await kv("default", "exists", { key: "a" }), { exists: false });
      const entries = Object.fromEntries(
        Array.from({ length: 250 }, (_, i) => [`k${String(i).padStart(3, "0")}`, `v${i}`]),
      );
      await kv("sessions", "set-many", { entries });
      const listed = await kv("sessions", "list");
      assert.equal(listed.pages, 3);
      assert.equal(listed.keys.length, 251);
      assert.deepEqual(await kv("sessions", "get-many", { keys: ["k001", "nope"] }), {
        values: [["k001", "v1"], null],
      });
    });

    await t.step("key-value: grants, bad keys and values", async () => {
      const denied = await post(pier, "/kv/other/get", { key: "a" });
      assert.equal(denied.status, 400);
      assert.equal(denied.body.error, "access-denied");
      const reader = await post(pier, "/reader/kv/default/get", { key: "a" });
      assert.equal(reader.body.error, "access-denied");
      const huge = await post(pier, "/kv/default/set", {
        key: "big",
        value: "x".repeat(1024 * 1024 + 1),
      });
      assert.match(huge.body.error, /larger than/);
      const longKey = await post(pier, "/kv/default/set", { key: "k".repeat(2000), value: "v" });
      assert.match(longKey.body.error, /key longer than/);
    });

    await t.step("increment is exact under concurrent requests", async () => {
      const n = 40;
      await Promise.all(
        Array.from({ length: n }, () => post(pier, "/kv/default/increment", { key: "hits" })),
      );
      const last = await post(pier, "/kv/default/increment", { key: "hits", delta: 0 });
      assert.deepEqual(last.body, { value: String(n) });
    });

    await t.step("data survives a restart", async () => {
      await pier.stop();
      pier = await startPier(dirs);
      const r = await post(pier, "/kv/default/increment", { key: "hits", delta: 0 });
      assert.deepEqual(r.body, { value: "40" });
      const rows = await sql(pier, "data", "query", { sql: "SELECT count(*) FROM things" });
      assert.deepEqual(rows.body.rows, [[{ integer: "5" }]]);
    });

    await t.step("no acknowledged write is lost when Pier is killed", async () => {
      await sql(pier, "data", "execute", { sql: "CREATE TABLE acked (n INTEGER)" });
      const acknowledged: number[] = [];
      let stop = false;
      const writer = (async () => {
        for (let n = 0; !stop; n++) {
          try {
            const r = await sql(pier, "data", "execute", {
              sql: "INSERT INTO acked VALUES (?)",
              params: [{ integer: String(n) }],
            });
            if (r.status === 200) acknowledged.push(n);
          } catch {
            return; // the server is gone
          }
        }
      })();
      await new Promise((r) => setTimeout(r, 1500));
      await pier.crash();
      stop = true;
      await writer;
      assert.ok(acknowledged.length > 10, `only ${acknowledged.length} writes before the kill`);
      pier = await startPier(dirs);
      const r = await sql(pier, "data", "query", { sql: "SELECT n FROM acked ORDER BY n" });
      const stored = new Set(
        r.body.rows.map((row: { integer: string }[]) => Number(row[0].integer)),
      );
      const lost = acknowledged.filter((n) => !stored.has(n));
      assert.deepEqual(lost, [], `acknowledged but lost: ${lost.join(", ")}`);
    });
  } finally {
    await pier.stop();
  }
});
