/**
 * The database's write lock held by a component (issue 17, items 3 and 5):
 * Pier's own job-store writes wait for it without blocking the server thread;
 * and the database processes started for a burst of readers stop once idle.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../runtime/pier_db.ts";
import type { RunRecord } from "../runtime/scheduling/store.ts";
import { JobStore } from "../runtime/scheduling/store.ts";
import {
  buildFixtures,
  componentsWithManifests,
  healthMs,
  type Pier,
  startPier,
} from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["lock_holder", "data_reader"]);
const TOKEN = "lock-attack-admin-token";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The slowest answer of `/_/health`, polled every 100 ms until `until` settles. */
async function slowestHealth(pier: Pier, until: Promise<unknown>): Promise<number> {
  let settled = false;
  until.finally(() => settled = true).catch(() => {});
  let slowest = 0;
  while (!settled) {
    slowest = Math.max(slowest, await healthMs(pier, 3000));
    await sleep(100);
  }
  return slowest;
}

async function runs(pier: Pier, job: string): Promise<RunRecord[]> {
  const response = await pier.fetch(`/_/jobs/lock/${job}?limit=100`);
  assert.equal(response.status, 200);
  return (await response.json()).runs;
}

Deno.test("a job-store write waits for another connection's write lock, in order", async () => {
  const dir = await scratchDir("pier-lock-");
  const db = openDatabase(`${dir}/main.db`);
  const store = new JobStore(db);
  const holder = new DatabaseSync(`${dir}/main.db`);
  try {
    holder.exec("BEGIN IMMEDIATE");
    const hold = { token: "t1", expires: Date.now() + 60_000 };
    // Issued while the lock is held: neither may block this thread.
    const first = store.claimTick("c", "j", 1000, "A", hold);
    const second = store.claimTick("c", "j", 2000, "A", null);
    let timerRan = false;
    setTimeout(() => timerRan = true, 50);
    await sleep(300);
    assert.ok(timerRan, "the thread was blocked");
    holder.exec("COMMIT");
    // The earlier tick wins its run; the later one finds it going.
    assert.equal(await first, "run");
    assert.equal(await second, "busy");
    // The hold lasts its full time from when the claim got through.
    const { run_expires } = db.prepare("SELECT run_expires FROM _pier_job_leases").get()!;
    assert.ok((run_expires as number) >= hold.expires + 300, "the wait shortened the hold");
  } finally {
    holder.close();
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a component holding the write lock: jobs wait, the server answers", async () => {
  const pier = await startPier({
    ...await componentsWithManifests({ lock: [fixtures.lock_holder, { db: "write" }] }),
    env: { PIER_ADMIN_TOKEN: TOKEN },
  });
  try {
    assert.equal((await pier.fetch("/ping").then((r) => r.json())).pong, true);
    // A write transaction held for 4 s in a live request.
    const heldFrom = Date.now();
    const hold = pier.fetch("/hold", { method: "POST", body: JSON.stringify({ ms: 4000 }) });
    await pier.waitForLog(/holding the write lock/, 5000);
    // Meanwhile the "tick" job fires every second, and a manual run is asked for: every one needs
    // Pier to write its claim, its lease and its record.
    const manual = pier.fetch("/_/jobs/lock/manual/run", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const slowest = await slowestHealth(pier, hold);
    const heldUntil = Date.now();
    assert.equal((await hold).status, 200);
    assert.ok(heldUntil - heldFrom > 3500, "the lock was not held");
    assert.ok(slowest < 1000, `/_/health took ${slowest.toFixed(0)} ms while the lock was held`);

    const run = await manual;
    assert.equal(run.status, 200);
    assert.equal((await run.json() as RunRecord).outcome, "ok");
    assert.equal((await runs(pier, "manual"))[0]?.outcome, "ok");
    // A tick that fell in the hold ran once the lock was free, and its run is recorded.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ticks = await runs(pier, "tick");
      const during = ticks.filter((r) =>
        r.outcome === "ok" && r.scheduled_at! >= heldFrom && r.scheduled_at! <= heldUntil
      );
      if (during.length > 0) break;
      assert.ok(Date.now() < deadline, `no run of a tick in the hold: ${JSON.stringify(ticks)}`);
      await sleep(200);
    }
    assert.doesNotMatch(pier.log(), /database is locked/);
  } finally {
    await pier.stop();
  }
});
/** The server's database processes of `grant` ("read" or "write"), found in `/proc`. */
function databaseProcesses(pier: Pier, grant: string): number {
  let count = 0;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent !== pier.pid) continue;
      const args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      if (args.some((arg) => arg.endsWith("database/child.ts")) && args.includes(grant)) count++;
    } catch {
      // it exited meanwhile
    }
  }
  return count;
}

Deno.test("extra database read processes stop once idle; one stays", async () => {
  const pier = await startPier({
    ...await componentsWithManifests({ reader: [fixtures.data_reader, { db: "read" }] }),
    args: ["--worker-idle", "1"],
  });
  const read = (mode: string, body: unknown) =>
    pier.fetch(`/reader/sql/${mode}`, { method: "POST", body: JSON.stringify(body) })
      .then((r) => r.json());
  try {
    // Read transactions side by side, each holding its process for a second.
    const burst = Array.from({ length: 8 }, () => read("slow", { sql: "SELECT 1", ms: 1000 }));
    await sleep(700);
    const duringLoad = databaseProcesses(pier, "read");
    assert.deepEqual(await Promise.all(burst), Array(8).fill({ done: true }));
    assert.ok(duringLoad > 1, `${duringLoad} read processes under load`);
    const deadline = Date.now() + 10_000;
    while (databaseProcesses(pier, "read") > 1) {
      assert.ok(Date.now() < deadline, `still ${databaseProcesses(pier, "read")} read processes`);
      await sleep(200);
    }
    assert.deepEqual(await read("query", { sql: "SELECT 7" }), { rows: [[{ integer: "7" }]] });
    assert.equal(databaseProcesses(pier, "read"), 1);
  } finally {
    await pier.stop();
  }
});
