/**
 * Attacks on the database capability (issue 17, items 1-5), each by a real
 * component against a real Pier process: objects hung on Pier's own tables,
 * state left on shared connections, statements that never end, slow SQL
 * functions, and transactions that outlive their request.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  buildFixtures,
  componentsWithManifests,
  healthMs,
  type Pier,
  startPier,
} from "./harness.ts";

const fixtures = await buildFixtures(["data", "data_reader", "db_attacker", "db_manifest_tx"]);

/** Component name: its fixture and its permission manifest. */
type Components = Record<string, [string, unknown]>;

const WRITER: Components = {
  writer: [fixtures.data, { db: "write", kv: [""], limits: { timeoutMs: 10000 } }],
};

const COMPONENTS: Components = {
  ...WRITER,
  reader: [fixtures.data_reader, { db: "read", limits: { timeoutMs: 2000 } }],
  atk: [fixtures.db_attacker, { db: "write", kv: [""], limits: { timeoutMs: 3000 } }],
};

async function post(pier: Pier, path: string, body: unknown) {
  const response = await pier.fetch(path, { method: "POST", body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text.startsWith("{") ? JSON.parse(text) : text };
}

/** SQL through the `transaction` resource of the writer (`/sql/...`) or the reader. */
const sql = (pier: Pier, component: "writer" | "reader", mode: string, text: string) =>
  post(pier, `${component === "reader" ? "/reader" : ""}/sql/${mode}`, { sql: text });

/** A standalone statement through in-band `__sqlite` (no transaction around it). */
const inband = (pier: Pier, mode: "query" | "execute", query: string) =>
  post(pier, `/inband/__sqlite/${mode}`, { query, params: [] }).then((r) =>
    JSON.parse(r.body.body)
  );

/**
 * Runs the reader's query `text` (meant to run far past the reader's 2 s limit): meanwhile the
 * server and the writer answer; the query fails well before it could have finished.
 */
async function stoppedInTime(pier: Pier, text: string) {
  const started = performance.now();
  const attack = sql(pier, "reader", "query", text);
  await new Promise((r) => setTimeout(r, 500));
  await healthMs(pier);
  const write = await sql(pier, "writer", "query", "SELECT body FROM notes WHERE rowid = 1");
  assert.deepEqual(write.body.rows, [[{ text: "real" }]]);
  await new Promise((r) => setTimeout(r, 1000));
  await healthMs(pier);
  const r = await attack;
  assert.ok([400, 504].includes(r.status), JSON.stringify(r.body));
  assert.ok(performance.now() - started < 8000, "the statement ran on past its time limit");
}

/** The schema objects hung on Pier's `_pier_*` tables (other than Pier's own). */
function objectsOnPierTables(dataDir: string): string[] {
  const db = new DatabaseSync(`${dataDir}/main.db`, { readOnly: true });
  try {
    return db.prepare(
      "SELECT type || ' ' || name AS object FROM sqlite_master WHERE type != 'table' " +
        "AND (tbl_name LIKE '\\_pier\\_%' ESCAPE '\\' OR sql LIKE '%\\_pier\\_%' ESCAPE '\\') " +
        "AND name NOT LIKE 'sqlite_autoindex%' AND name != '_pier_job_runs_by_job'",
    ).all().map((row) => row.object as string);
  } finally {
    db.close();
  }
}

Deno.test("a transaction left open by get-manifest is rolled back", async () => {
  const pier = await startPier(
    await componentsWithManifests({ ...WRITER, mtx: [fixtures.db_manifest_tx, { db: "write" }] }),
  );
  try {
    // The component's get-manifest opened a write transaction and kept it.
    await pier.waitForLog(/get-manifest: holding the write lock/, 5000);
    const started = performance.now();
    const r = await sql(pier, "writer", "execute", "CREATE TABLE notes (body TEXT)");
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(performance.now() - started < 2000, "the write waited for the manifest's lock");
  } finally {
    await pier.stop();
  }
});

// Ordered so that, on a Pier without these defences, each attack fails by itself: the last two
// freeze such a server.
Deno.test("database attacks", async (t) => {
  const dirs = await componentsWithManifests(COMPONENTS);
  const pier = await startPier(dirs);
  try {
    await t.step("no trigger, index or view can be hung on Pier's tables", async () => {
      await sql(pier, "writer", "execute", "CREATE TABLE notes (body TEXT)");
      await sql(pier, "writer", "execute", "INSERT INTO notes VALUES ('real')");
      for (
        const statement of [
          "CREATE TRIGGER steal AFTER INSERT ON _pier_kv BEGIN SELECT 1; END",
          "CREATE TRIGGER forge AFTER INSERT ON notes BEGIN " +
          "UPDATE _pier_kv SET value = x'00'; END",
          "CREATE INDEX peek ON _pier_kv (value)",
          "CREATE VIEW kv_view AS SELECT * FROM _pier_kv",
          "ALTER TABLE _pier_kv ADD COLUMN extra",
          "ALTER TABLE _pier_kv RENAME TO mine",
          "DROP TABLE _pier_kv",
          "CREATE TRIGGER runs AFTER INSERT ON _pier_job_runs BEGIN SELECT 1; END",
        ]
      ) {
        const r = await sql(pier, "writer", "execute", statement);
        assert.equal(r.status, 400, `${statement}: ${JSON.stringify(r.body)}`);
        assert.match(r.body.error, /not authorized|prohibited/, statement);
      }
      assert.deepEqual(objectsOnPierTables(dirs.dataDir), []);
    });

    await t.step("nobody creates temp objects; no state outlives a statement", async () => {
      for (
        const [component, statement] of [
          ["reader", "CREATE TEMP VIEW notes AS SELECT 'forged' AS body"],
          ["reader", "CREATE TEMP TABLE scratch (x)"],
          ["reader", "CREATE TABLE temp.scratch (x)"],
          ["writer", "CREATE TABLE temp.scratch (x)"],
          ["writer", "CREATE TEMP VIEW notes AS SELECT 'forged' AS body"],
          ["writer", "CREATE TEMP TRIGGER t AFTER INSERT ON notes BEGIN SELECT 1; END"],
          ["reader", "PRAGMA foreign_keys = OFF"],
          ["writer", "PRAGMA foreign_keys = OFF"],
        ] as const
      ) {
        const r = await sql(pier, component, "execute", statement);
        assert.equal(r.status, 400, `${component}: ${statement}: ${JSON.stringify(r.body)}`);
        assert.match(r.body.error, /not authorized/, statement);
      }
      const rows = await sql(pier, "reader", "query", "SELECT body FROM notes");
      assert.deepEqual(rows.body.rows, [[{ text: "real" }]]);
      const fk = await sql(pier, "reader", "query", "PRAGMA foreign_keys");
      assert.deepEqual(fk.body.rows, [[{ integer: "1" }]]);
      // A transaction of its own on the shared writer: refused, or rolled back with its statement.
      for (const statement of ["BEGIN", "SAVEPOINT mine"]) {
        const r = await inband(pier, "execute", statement);
        assert.match(r.Error ?? "", /not authorized|left one open/, statement);
      }
      const after = await sql(pier, "writer", "execute", "INSERT INTO notes VALUES ('real')");
      assert.equal(after.status, 200, JSON.stringify(after.body));
      await sql(pier, "writer", "execute", "DELETE FROM notes WHERE rowid > 1");
    });

    await t.step("a key-value write waits for the write lock, the server answers", async () => {
      // The writer holds the write lock for 3.5 s in a transaction of a live request.
      const holder = post(pier, "/sql/slow", {
        sql: "INSERT INTO notes VALUES ('slow')",
        ms: 3500,
      });
      await new Promise((r) => setTimeout(r, 300));
      const kv = post(pier, "/kv/default/set", { key: "k", value: "v" });
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(await healthMs(pier) < 2000);
      assert.deepEqual((await holder).body, { done: true });
      assert.deepEqual((await kv).body, { ok: true });
    });

    await t.step("a guest past its response can neither open a transaction nor write", async () => {
      const r = await post(pier, "/atk/after-response", {});
      assert.equal(r.status, 200);
      await pier.waitForLog(/after-response: refused: the request has ended/, 5000);
      await pier.waitForLog(/after-response kv: refused: the request has ended/, 5000);
      const started = performance.now();
      const write = await sql(pier, "writer", "execute", "INSERT INTO notes VALUES ('later')");
      assert.equal(write.status, 200, JSON.stringify(write.body));
      assert.ok(performance.now() - started < 2000, "the write waited for a dead request's lock");
    });

    await t.step("an endless query is stopped at its time limit; the server answers", async () => {
      await stoppedInTime(
        pier,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
      );
      await pier.waitForLog(/database read process stopped/, 5000);
      // The reader's next statement gets a fresh process.
      const rows = await sql(pier, "reader", "query", "SELECT body FROM notes WHERE rowid = 1");
      assert.deepEqual(rows.body.rows, [[{ text: "real" }]]);
    });

    await t.step("a slow SQL function is bounded by its statement's time limit", async () => {
      // 20 calls of 900 ms each: 18 s, against the reader's 2 s limit.
      await stoppedInTime(
        pier,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) " +
          "SELECT sum(atk_sleep(900)) FROM c",
      );
      // The function's worker may still be inside the call the statement was stopped in (up to
      // 900 ms, longer on a loaded machine): a call that meets it busy may fail; one must work soon.
      const deadline = performance.now() + 15_000;
      let rows = await sql(pier, "reader", "query", "SELECT atk_sleep(1)");
      while (rows.status !== 200 && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        rows = await sql(pier, "reader", "query", "SELECT atk_sleep(1)");
      }
      assert.deepEqual(rows.body.rows, [[{ integer: "1" }]], JSON.stringify(rows.body));
    });
  } finally {
    await pier.stop();
  }
});

Deno.test("Pier's own connections run no trigger found in the file", async () => {
  const dirs = await componentsWithManifests(WRITER);
  // Before Pier starts, someone with the file hangs triggers on Pier's key-value table.
  await Deno.mkdir(dirs.dataDir, { recursive: true });
  const plain = new DatabaseSync(`${dirs.dataDir}/main.db`);
  plain.exec(`PRAGMA journal_mode = WAL;
    CREATE TABLE _pier_kv (
      component TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
      PRIMARY KEY (component, bucket, key)) WITHOUT ROWID;
    INSERT INTO _pier_kv VALUES ('victim', '', 'secret', x'2a');
    CREATE TABLE loot (component, key, value);
    CREATE TRIGGER steal AFTER INSERT ON _pier_kv BEGIN
      INSERT INTO loot SELECT component, key, value FROM _pier_kv;
      UPDATE _pier_kv SET value = x'00' WHERE component = 'victim';
    END;`);
  plain.close();
  const pier = await startPier(dirs);
  try {
    await post(pier, "/kv/default/set", { key: "k", value: "v" });
    await post(pier, "/inband/__prefs", { Set: { key: "p", value: "v" } });
  } finally {
    await pier.stop();
  }
  const after = new DatabaseSync(`${dirs.dataDir}/main.db`, { readOnly: true });
  try {
    assert.deepEqual(after.prepare("SELECT * FROM loot").all(), []);
    const victim = after.prepare("SELECT value FROM _pier_kv WHERE component = 'victim'").get();
    assert.deepEqual(new Uint8Array(victim!.value as Uint8Array), new Uint8Array([0x2a]));
  } finally {
    after.close();
  }
});
