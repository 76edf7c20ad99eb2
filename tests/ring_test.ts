/**
 * The shared-memory ring between the server thread and a component worker:
 * order, wrap-around, a full ring, oversized records, and a real second
 * thread.
 */
import assert from "node:assert/strict";
import { Ring } from "../runtime/isolation/ring.ts";

const bytes = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i + seed) % 251);

Deno.test("records come out in order, whole, across many wrap-arounds", () => {
  const buffer = Ring.buffer(4096);
  const writer = new Ring(buffer);
  const reader = new Ring(buffer);
  let written = 0;
  let read = 0;
  // Sizes that do not divide the ring, so records wrap at every offset.
  for (let round = 0; round < 2000; round++) {
    const size = (round * 37) % 900;
    while (!writer.write({ n: written, text: "é".repeat(round % 5) }, bytes(size, written))) {
      const record = reader.read()!;
      assert.deepEqual(record.head, { n: read, text: "é".repeat(read % 5) });
      assert.deepEqual(record.body, bytes((read * 37) % 900, read));
      read++;
    }
    written++;
  }
  for (let record = reader.read(); record; record = reader.read()) {
    assert.equal((record.head as { n: number }).n, read++);
  }
  assert.equal(read, written);
  assert.equal(reader.read(), undefined);
});

Deno.test("a full ring refuses a record and takes it once read; a large one never", () => {
  const buffer = Ring.buffer(1024);
  const writer = new Ring(buffer);
  const reader = new Ring(buffer);
  assert.equal(writer.write({ big: true }, new Uint8Array(300)), false, "over a quarter");
  let count = 0;
  while (writer.write(count, new Uint8Array(100))) count++;
  assert.ok(count >= 7 && count <= 9, `${count} records of 112 bytes in 1024`);
  assert.equal(reader.read()!.head, 0);
  assert.ok(writer.write(count, new Uint8Array(100)), "room again after a read");
  const body = reader.read()!.body;
  assert.equal(body.buffer instanceof SharedArrayBuffer, false, "the reader owns a copy");
});

Deno.test("a second thread reads what this one writes, woken when it waits", async () => {
  const toWorker = Ring.buffer(8192);
  const fromWorker = Ring.buffer(8192);
  const source = `
    import { Ring } from ${
    JSON.stringify(new URL("../runtime/isolation/ring.ts", import.meta.url).href)
  };
    self.onmessage = (event) => {
      const [inbound, outbound] = event.data.map((b) => new Ring(b));
      inbound.listen(({ head, body }) => {
        if (head === "stop") return inbound.close();
        outbound.write({ echo: head }, body.reverse());
        outbound.notify();
      });
    };
  `;
  const worker = new Worker(
    URL.createObjectURL(new Blob([source], { type: "text/javascript" })),
    { type: "module" },
  );
  worker.postMessage([toWorker, fromWorker]);
  const inbound = new Ring(fromWorker);
  const outbound = new Ring(toWorker);
  const answers: unknown[] = [];
  const done = Promise.withResolvers<void>();
  const listening = inbound.listen(({ head, body }) => {
    answers.push([head, [...body]]);
    if (answers.length === 300) done.resolve();
  });
  for (let i = 0; i < 300; i++) {
    // Some while the worker is busy, some after it went back to waiting.
    if (i % 50 === 0) await new Promise((r) => setTimeout(r, 20));
    while (!outbound.write(i, Uint8Array.of(1, 2, 3))) await new Promise((r) => setTimeout(r, 1));
    outbound.notify();
  }
  await done.promise;
  assert.deepEqual(answers[0], [{ echo: 0 }, [3, 2, 1]]);
  assert.deepEqual(answers.map((a) => (a as [{ echo: number }])[0].echo), [...Array(300).keys()]);
  outbound.write("stop");
  outbound.notify();
  inbound.close();
  await listening;
  worker.terminate();
});
