/**
 * The worker's entry gate (issue 15): it lets a few guest calls in at once
 * while they run on in microtasks, and never holds a request behind guests
 * that wait for the event loop. Eight requests to one worker each wait in an
 * outbound call that is answered only once all eight have arrived: a gate
 * that kept the fifth out until one of the first four returned would stall
 * them all until their time limit (504).
 */
import assert from "node:assert/strict";
import { buildFixtures, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["entry_gate"]);

const CALLS = 8;

/** A server that answers nothing until `CALLS` requests wait, then all of them. */
function startBarrier() {
  const waiting: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    const released = new Promise<void>((resolve) => waiting.push(resolve));
    if (waiting.length === CALLS) { for (const release of waiting) release(); }
    await released;
    return new Response("together");
  });
  // Whatever is still held goes, so that the server can shut down.
  const close = () => {
    for (const release of waiting) release();
    return server.shutdown();
  };
  return { close, port: server.addr.port };
}

Deno.test("guests waiting on the network all get in, past the entry gate", async () => {
  const barrier = startBarrier();
  const root = await scratchDir("pier-gate-");
  const componentsDir = `${root}/components`;
  await Deno.mkdir(componentsDir);
  await Deno.copyFile(fixtures.entry_gate, `${componentsDir}/gate.wasm`);
  await Deno.writeTextFile(
    `${componentsDir}/gate.permissions.json`,
    JSON.stringify({
      net: [`127.0.0.1:${barrier.port}`],
      // One worker takes all eight; the limit turns a stall into a 504 rather than a hang.
      limits: { workers: 1, timeoutMs: 10_000 },
    }),
  );
  const pier = await startPier({ componentsDir, dataDir: `${root}/data` });
  try {
    const url = encodeURIComponent(`http://127.0.0.1:${barrier.port}/`);
    const responses = await Promise.all(
      Array.from({ length: CALLS }, () => pier.fetch(`/call?url=${url}`)),
    );
    const bodies = await Promise.all(responses.map((response) => response.text()));
    assert.deepEqual(
      responses.map((response) => response.status),
      Array(CALLS).fill(200),
      bodies[0],
    );
    for (const body of bodies) {
      assert.deepEqual(JSON.parse(body), { status: 200, body: "together" });
    }
  } finally {
    await pier.stop();
    await barrier.close();
  }
});
