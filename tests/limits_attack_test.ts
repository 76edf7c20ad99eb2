/**
 * Limits that really bound: a component cannot make the server hold memory
 * (request bodies it refuses, response bodies a client does not read, huge
 * writes) or open connections without bound. Each step performs the attack
 * against a real Pier and reads the server process's memory from `/proc`.
 */
import assert from "node:assert/strict";
import { instrumentLoops, INTERRUPT_EXPORT } from "../runtime/compile/interrupt.ts";
import { buildFixtures, type Pier, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["limits_attacker"]);
const MIB = 1 << 20;

/** The resident memory of process `pid`, in bytes. */
function rss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

/** Samples the server's resident memory every 50 ms until `stop`, which returns the peak. */
function watchRss(pier: Pier): { stop(): number } {
  let peak = rss(pier.pid);
  const timer = setInterval(() => peak = Math.max(peak, rss(pier.pid)), 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rss(pier.pid));
    },
  };
}

/** A generous bound: well above what the server needs, far below what each attack used to take. */
const GROWTH_BOUND = 256 * MIB;

function assertBounded(peak: number, before: number, what: string) {
  const grew = Math.round((peak - before) / MIB);
  assert.ok(peak - before < GROWTH_BOUND, `${what}: server RSS grew by ${grew} MiB`);
}

/** A loopback server that counts the requests it serves at once (each takes 300 ms). */
function startCountingTarget() {
  let active = 0;
  let peak = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    peak = Math.max(peak, ++active);
    await new Promise((resolve) => setTimeout(resolve, 300));
    active--;
    return new Response("counted");
  });
  return { server, port: server.addr.port, peak: () => peak };
}

/** Asks for `path` over a raw connection and never reads the answer. */
async function requestWithoutReading(pier: Pier, path: string): Promise<Deno.Conn> {
  const { hostname, port } = new URL(pier.url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nhost: pier\r\n\r\n`));
  return conn;
}

/** Asks for `path` until it is served (the component allows one request at a time). */
async function untilServed(pier: Pier, path: string) {
  for (const started = performance.now(); performance.now() - started < 10_000;) {
    const response = await pier.fetch(path);
    await response.body?.cancel();
    if (response.status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`${path} was not served within 10 s`);
}

const target = startCountingTarget();

/** CPU time (user + system) the process `pid` used so far, in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

async function startAttacked(limits: Record<string, number>): Promise<Pier> {
  const root = await scratchDir("pier-limits-");
  const componentsDir = `${root}/components`;
  await Deno.mkdir(componentsDir);
  await Deno.copyFile(fixtures.limits_attacker, `${componentsDir}/attacker.wasm`);
  await Deno.writeTextFile(
    `${componentsDir}/attacker.permissions.json`,
    JSON.stringify({
      net: [`127.0.0.1:${target.port}`],
      limits,
    }),
  );
  return await startPier({ componentsDir, dataDir: `${root}/data` });
}

Deno.test("an instrumented loop traps once its interrupt flag is set", async () => {
  // (module (func (export "spin") (loop (br 0)))): no memory, no other export.
  const spin = new Uint8Array([
    0,
    97,
    115,
    109,
    1,
    0,
    0,
    0,
    1,
    4,
    1,
    96,
    0,
    0,
    3,
    2,
    1,
    0,
    7,
    8,
    1,
    4,
    115,
    112,
    105,
    110,
    0,
    0,
    10,
    9,
    1,
    7,
    0,
    3,
    64,
    12,
    0,
    11,
    11,
  ]);
  const module = await WebAssembly.compile(instrumentLoops(spin) as BufferSource);
  const instance = await WebAssembly.instantiate(module);
  const flag = instance.exports[INTERRUPT_EXPORT] as WebAssembly.Memory;
  const worker = new Worker(
    `data:text/javascript,self.onmessage = async (e) => {
      const instance = await WebAssembly.instantiate(e.data);
      self.postMessage(instance.exports["${INTERRUPT_EXPORT}"].buffer);
      try { instance.exports.spin(); } catch (error) { self.postMessage(String(error)); }
    };`,
    { type: "module" },
  );
  const messages: unknown[] = [];
  const trapped = new Promise((resolve) => {
    worker.onmessage = (e) => messages.push(e.data) === 2 && resolve(e.data);
  });
  worker.postMessage(module);
  while (messages.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  Atomics.store(new Int32Array(messages[0] as SharedArrayBuffer), 0, 1);
  assert.match(String(await trapped), /unreachable/);
  worker.terminate();
  assert.ok(flag.buffer instanceof SharedArrayBuffer);
});

Deno.test("a component past its time limit stops using CPU", async () => {
  const pier = await startAttacked({ timeoutMs: 1000, concurrency: 10, workers: 2 });
  try {
    const loops = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const response = await pier.fetch("/loop");
        await response.body?.cancel();
        return response.status;
      }),
    );
    assert.deepEqual(loops, Array(10).fill(504));
    // Give the dropped workers a moment to go, then watch the server for 3 s.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = cpuTicks(pier.pid);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const used = (cpuTicks(pier.pid) - before) / 100;
    assert.ok(used < 0.9, `the server used ${used.toFixed(2)} s of CPU in 3 s after the 504s`);
    const health = await pier.fetch("/_/health");
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    await pier.stop();
  }
});

Deno.test("a loop in a guest instance made for it stops too", async () => {
  // One worker: a guest held back by a client that does not read keeps the worker's idle instance,
  // so the looping request gets a new instance that loops in the turn it was made.
  const pier = await startAttacked({ timeoutMs: 1000, concurrency: 4, workers: 1 });
  try {
    const held = await requestWithoutReading(pier, "/stream/polled/64");
    const loop = await pier.fetch("/loop");
    await loop.body?.cancel();
    assert.equal(loop.status, 504);
    held.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = cpuTicks(pier.pid);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const used = (cpuTicks(pier.pid) - before) / 100;
    assert.ok(used < 0.9, `the server used ${used.toFixed(2)} s of CPU in 3 s after the 504`);
  } finally {
    await pier.stop();
  }
});

Deno.test("limits that really bound", async (t) => {
  const pier = await startAttacked({ memoryMb: 1024, timeoutMs: 6000, concurrency: 1, workers: 1 });
  try {
    await t.step(
      "uploads beyond the concurrency limit are refused before they are read",
      async () => {
        const before = rss(pier.pid);
        const watch = watchRss(pier);
        const body = new Uint8Array(16 * MIB);
        const uploads = await Promise.allSettled(
          Array.from({ length: 40 }, async () => {
            const response = await pier.fetch("/upload", { method: "POST", body });
            await response.body?.cancel();
            return response.status;
          }),
        );
        const peak = watch.stop();
        const statuses = uploads.map((u) => u.status === "fulfilled" ? u.value : "error");
        assert.equal(statuses.filter((s) => s === 200).length, 1, String(statuses));
        assert.ok(statuses.every((s) => s === 200 || s === 503 || s === "error"), String(statuses));
        assertBounded(peak, before, "40 uploads of 16 MiB");
      },
    );

    for (const how of ["polled", "blocking", "zeroes"]) {
      await t.step(`a client that does not read holds back the guest (${how} writes)`, async () => {
        const before = rss(pier.pid);
        const watch = watchRss(pier);
        const conn = await requestWithoutReading(pier, `/stream/${how}/1024`);
        await new Promise((resolve) => setTimeout(resolve, 3000));
        const peak = watch.stop();
        conn.close();
        assertBounded(peak, before, `1 GiB streamed to a client that does not read (${how})`);
        // The client went away: the guest's next write fails, and the component serves on.
        await untilServed(pier, "/stream/polled/1");
      });
    }

    await t.step("a client that reads gets the whole stream", async () => {
      const response = await pier.fetch("/stream/polled/64");
      let size = 0;
      for await (const chunk of response.body!) size += chunk.byteLength;
      assert.equal(size, 64 * MIB);
    });

    await t.step("one write-zeroes of 1 GiB fails without the host allocating it", async () => {
      const before = rss(pier.pid);
      const watch = watchRss(pier);
      const response = await pier.fetch("/zeroes");
      const read = await new Response(response.body).arrayBuffer().then(
        (b) => b.byteLength,
        () => -1,
      );
      const peak = watch.stop();
      assert.ok(read < 1 << 30, `the client got ${read} bytes`);
      assertBounded(peak, before, "write-zeroes of 1 GiB");
      assert.match(pier.log(), /a write of 1073741824 bytes, beyond the \d+ permitted/);
    });

    await t.step("outbound requests are bounded by limits.outbound", async () => {
      const url = encodeURIComponent(`http://127.0.0.1:${target.port}/`);
      const response = await pier.fetch(`/fanout/100?url=${url}`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { "200": 100 });
      assert.ok(target.peak() <= 16, `${target.peak()} outbound requests at once`);
    });
  } finally {
    await pier.stop();
  }
});

globalThis.addEventListener("unload", () => target.server.shutdown());
