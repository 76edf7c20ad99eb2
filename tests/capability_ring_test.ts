/**
 * Capability calls over the worker's rings (issue 15, the SpiderMonkey DB
 * row): a guest's database and key-value calls and their replies travel on
 * the shared-memory rings between its worker and the server thread, and by
 * `postMessage` only when they do not fit. Against a real Pier and a real
 * component: many requests' calls at once, with values small, larger than a
 * quarter of the ring and larger than the whole ring, arrive whole and in
 * order; only the big ones go as messages (`pier_capability_messages_total`);
 * a transaction's big first statement (a message) still follows the `begin`
 * sent with it (on the ring); a statement that outlives its request is
 * stopped with it.
 */
import assert from "node:assert/strict";
import { buildFixtures, componentsWithManifests, type Pier, startPier } from "./harness.ts";

const fixtures = await buildFixtures(["capability_ring"]);

/** The component's `pier_capability_messages_total`. */
async function messages(pier: Pier): Promise<number> {
  const text = await (await pier.fetch("/_/metrics")).text();
  const line = /^pier_capability_messages_total\{component="ring"\} (\d+)$/m.exec(text);
  assert.ok(line, "pier_capability_messages_total for the component");
  return Number(line[1]);
}

async function getJson(pier: Pier, path: string) {
  const response = await pier.fetch(path);
  const text = await response.text();
  assert.equal(response.status, 200, `${path}: ${text}`);
  return JSON.parse(text);
}

Deno.test("capability calls and replies over the rings", async (t) => {
  const setup = await componentsWithManifests({
    ring: [fixtures.capability_ring, { db: "write", kv: [""], limits: { timeoutMs: 10_000 } }],
  });
  const pier = await startPier(setup);
  try {
    await t.step("many requests' calls, small and big, arrive whole and in order", async () => {
      const before = await messages(pier);
      const requests = 8;
      const keys = 6;
      const results = await Promise.all(
        Array.from({ length: requests }, (_, r) => getJson(pier, `/kv/r${r}/${keys}`)),
      );
      for (const result of results) {
        assert.deepEqual(result, { calls: 3 * keys, bad: [], gone: true });
      }
      // Per request, the writes of the two big values (70 kB, 300 kB: over a quarter of the
      // 256 KiB ring) and the replies to the reads of them go as messages; every other call and
      // reply (the key-value open, 18 more calls, their replies) by the ring.
      assert.equal(await messages(pier) - before, requests * 4);
    });

    await t.step("a transaction's big first statement follows its begin", async () => {
      const results = await Promise.all(
        Array.from({ length: 4 }, (_, r) => getJson(pier, `/tx/t${r}/20`)),
      );
      for (const result of results) {
        assert.deepEqual(result, { order: Array.from({ length: 20 }, (_, i) => i), blob: true });
      }
    });

    await t.step("a statement that outlives its request is stopped with it", async () => {
      const slow = await pier.fetch("/slow");
      await slow.body?.cancel();
      assert.equal(slow.status, 504);
      // The endless statement held the write lock: the next transaction gets it, well within
      // its own time limit.
      assert.deepEqual(await getJson(pier, "/tx/after/2"), { order: [0, 1], blob: true });
    });
  } finally {
    await pier.stop();
  }
});
