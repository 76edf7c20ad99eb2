/**
 * `--processes 2`: two server processes serve one port and share the data
 * dir. Key-value counters, transactions and SQLite's write lock must hold
 * across them: each process answers some of the requests, yet every
 * increment is counted once, and a transaction open in one process keeps the
 * other's writes waiting until it commits.
 */
import assert from "node:assert/strict";
import { buildFixtures, componentsWithManifests, type Pier, startPier } from "./harness.ts";

const fixtures = await buildFixtures(["data"]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `test` on a Pier serving the data fixture from two processes. */
async function withTwoProcesses(test: (pier: Pier) => Promise<void>): Promise<void> {
  const { componentsDir, dataDir } = await componentsWithManifests({
    data: [fixtures.data, { db: "write", kv: [""] }],
  });
  const pier = await startPier({ componentsDir, dataDir, args: ["--processes", "2"] });
  try {
    // The second starts once the first listens (the port is 0: the first one picks it).
    await pier.waitForLog(/listening on[^]*listening on/);
    await test(pier);
  } finally {
    await pier.stop();
    await Deno.remove(`${dataDir}/..`, { recursive: true });
  }
}

/** POSTs `body` as JSON through `client` (a connection of its own when none); the JSON answer. */
async function post(
  pier: Pier,
  path: string,
  body: unknown,
  client?: Deno.HttpClient,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${pier.url}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    client,
    headers: client ? {} : { connection: "close" },
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, json: await response.json() };
}

/** The pid of the server process answering `/_/health` through `client` (a new connection when none). */
async function servedBy(pier: Pier, client?: Deno.HttpClient): Promise<number> {
  const response = await fetch(`${pier.url}/_/health`, {
    client,
    headers: client ? {} : { connection: "close" },
  });
  return (await response.json()).pid;
}

/** One kept-alive client per server process, each on a connection to that process. */
async function clientPerProcess(pier: Pier): Promise<Map<number, Deno.HttpClient>> {
  const clients = new Map<number, Deno.HttpClient>();
  for (let tries = 0; clients.size < 2 && tries < 100; tries++) {
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 1 });
    const pid = await servedBy(pier, client);
    if (clients.has(pid)) client.close();
    else clients.set(pid, client);
  }
  assert.equal(clients.size, 2, "the kernel spread 100 connections over both processes");
  return clients;
}

Deno.test("two processes: every key-value increment counted once; a crash of one stops both", () =>
  withTwoProcesses(async (pier) => {
    const pids = new Set<number>();
    for (let i = 0; i < 40; i++) pids.add(await servedBy(pier));
    assert.equal(pids.size, 2, "new connections go to both processes");

    // 32 clients, 25 increments each, each on a new connection (so spread over both processes).
    const values: number[] = [];
    await Promise.all(Array.from({ length: 32 }, async () => {
      for (let i = 0; i < 25; i++) {
        const { status, json } = await post(pier, "/kv/default/increment", { key: "hits" });
        assert.equal(status, 200, JSON.stringify(json));
        values.push(Number(json.value));
      }
    }));
    const { json } = await post(pier, "/kv/default/increment", { key: "hits", delta: 0 });
    assert.equal(json.value, "800");
    assert.deepEqual(
      values.sort((a, b) => a - b),
      Array.from({ length: 800 }, (_, i) => i + 1),
      "each increment saw its own value",
    );

    // One process dies: the launcher stops the other and exits with the dead one's status.
    const [victim, other] = [...pids];
    Deno.kill(victim, "SIGKILL");
    assert.equal(await pier.stop("SIGCONT"), 137); // SIGCONT: no signal, just wait for the exit
    assert.match(pier.log(), new RegExp(`server process ${victim} exited with 137; stopping`));
    assert.throws(() => Deno.kill(other, "SIGCONT"), "the other process has exited");
  }));

Deno.test("two processes: a transaction in one holds the write lock against writes in the other", () =>
  withTwoProcesses(async (pier) => {
    const clients = await clientPerProcess(pier);
    try {
      const [first, second] = [...clients.values()];
      const sql = (mode: string, body: unknown, client: Deno.HttpClient) =>
        post(pier, `/sql/${mode}`, body, client);
      assert.equal((await sql("execute", { sql: "CREATE TABLE t (who TEXT)" }, first)).status, 200);

      // The first process inserts, holds the transaction open 1.5 s, inserts again, commits.
      const transaction = sql("slow", { sql: "INSERT INTO t VALUES ('tx')", ms: 1500 }, first);
      let committed = false;
      void transaction.then(() => committed = true);
      await sleep(400);
      assert.ok(!committed, "the transaction is still open");
      // Meanwhile the second process reads, in a transaction of a write grant (BEGIN IMMEDIATE):
      // it waits for the commit, and sees both rows, never one; then it writes (each write
      // lands after the transaction's rows).
      const seen = await sql("query", { sql: "SELECT count(*) FROM t" }, second);
      assert.deepEqual(seen.json.rows, [[{ integer: "2" }]]);
      for (let i = 0; i < 3; i++) {
        const write = await sql("execute", { sql: "INSERT INTO t VALUES ('other')" }, second);
        assert.equal(write.status, 200, JSON.stringify(write.json));
      }
      assert.equal((await transaction).status, 200);
      const rows = await sql("query", { sql: "SELECT who FROM t ORDER BY rowid" }, second);
      assert.deepEqual(
        (rows.json.rows as { text: string }[][]).map(([cell]) => cell.text),
        ["tx", "tx", "other", "other", "other"],
      );
      // Both answered on their own process throughout.
      for (const [pid, client] of clients) assert.equal(await servedBy(pier, client), pid);
    } finally {
      for (const client of clients.values()) client.close();
    }
  }));
