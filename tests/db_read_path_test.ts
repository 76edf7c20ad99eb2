/**
 * The database read path (issues 12 and 15, DB rows): a standalone read goes
 * to a read process without waiting for the reads sent before it (see
 * `capabilities/database/store.ts`). What that must not cost: a read queued
 * behind a statement that gets its process killed is not failed with it.
 */
import assert from "node:assert/strict";
import {
  buildFixtures,
  componentsWithManifests,
  healthMs,
  type Pier,
  startPier,
} from "./harness.ts";

const fixtures = await buildFixtures(["data", "data_reader"]);

const ENDLESS =
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A standalone query through in-band `__sqlite` of the component serving under `prefix`. */
async function inband(pier: Pier, prefix: string, query: string) {
  const response = await pier.fetch(`${prefix}/inband/__sqlite/query`, {
    method: "POST",
    body: JSON.stringify({ query, params: [] }),
  });
  const text = await response.text();
  return { status: response.status, body: response.status === 200 ? JSON.parse(text).body : text };
}

Deno.test("a read queued behind an endless one is answered by the next read process", async () => {
  const pier = await startPier(
    await componentsWithManifests({
      hog: [fixtures.data, { db: "read", limits: { timeoutMs: 3000 } }],
      reader: [fixtures.data_reader, { db: "read", limits: { timeoutMs: 10000 } }],
    }),
  );
  try {
    // Both components' workers started, a read process too.
    for (const prefix of ["", "/reader"]) {
      assert.equal((await inband(pier, prefix, "SELECT 1")).status, 200);
    }
    // One after the other, each endless read finds the read processes busy and gets a new one,
    // up to four.
    const hogs = [];
    for (let i = 0; i < 4; i++) {
      hogs.push(inband(pier, "", ENDLESS));
      await sleep(300);
    }
    // Every read process runs an endless statement: this read queues behind one of them, which
    // is killed at its 3 s limit.
    const started = performance.now();
    const read = await inband(pier, "/reader", "SELECT 41 + 1");
    assert.equal(read.status, 200);
    assert.deepEqual(JSON.parse(read.body), { Query: { rows: [[{ Integer: 42 }]] } });
    assert.ok(performance.now() - started > 1000, "the read did not queue behind an endless one");
    for (const hog of await Promise.all(hogs)) {
      assert.ok(hog.status === 504 || /Error/.test(hog.body), JSON.stringify(hog));
    }
    await healthMs(pier);
  } finally {
    await pier.stop();
  }
});
