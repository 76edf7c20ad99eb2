/**
 * The native engine (`// @pier-engine native`): the build's bundled `.js`,
 * discovery, the SDK's capabilities through the server process, the guest's
 * log lines, streamed responses, and every fault a component's process can
 * have: each takes only its own requests, the process starts again, and its
 * neighbour and `/_/health` answer throughout. A real Pier serving
 * `tests/fixtures/native_app.ts` and `native_neighbour.ts`.
 */
import assert from "node:assert/strict";
import { type Pier, startPier } from "./harness.ts";
import { buildNative } from "./native_harness.ts";
import { buildComponents } from "../tools/build.ts";
import { scaffold } from "../tools/new.ts";
import { scratchDir } from "./scratch.ts";

/** Polls `path` until it answers 200; fails after `limitMs` (a generous bound: not frozen). */
async function until200(pier: Pier, path: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const response = await pier.fetch(path);
    await response.body?.cancel();
    if (response.status === 200) return;
    if (Date.now() > deadline) assert.fail(`${path} still answers ${response.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The neighbour and `/_/health` answer. */
async function neighboursAnswer(pier: Pier) {
  const neighbour = await pier.fetch("/neighbour");
  assert.equal(await neighbour.text(), "still here");
  const health = await pier.fetch("/_/health");
  assert.equal(health.status, 200);
  await health.body?.cancel();
}

Deno.test("native engine: build, capabilities, logs, faults", async (t) => {
  const componentsDir = await buildNative(["native_app", "native_neighbour"]);
  const bundle = await Deno.readTextFile(`${componentsDir}/native_app.js`);
  assert.doesNotMatch(bundle, /^\s*import\s/m, "no imports are left");
  assert.doesNotMatch(bundle, /wasi:/, "no WASI imports");
  // `deno task new --engine native`'s scaffold builds to a `.js` and is served as it is.
  const scratch = await scratchDir("pier-native-new-");
  const [source] = await scaffold("greeter_native", scratch, "native");
  const [scaffolded] = await buildComponents([source], { outDir: componentsDir });
  assert.equal(scaffolded.status, "built", scaffolded.error);
  assert.equal(scaffolded.engine, "native");
  assert.match(scaffolded.wasm, /greeter_native\.js$/);

  const dataDir = await scratchDir("pier-native-data-");
  await Deno.mkdir(`${dataDir}/files`);
  await Deno.writeTextFile(`${dataDir}/files/hello.txt`, "from a granted dir");
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("upstream says hi"),
  );
  await Deno.writeTextFile(
    `${componentsDir}/native_app.permissions.json`,
    JSON.stringify({
      env: ["NATIVE_GRANTED"],
      db: "write",
      kv: ["native"],
      read: ["files"],
      net: [`127.0.0.1:${upstream.addr.port}`],
      limits: { timeoutMs: 3000, memoryMb: 64 },
    }),
  );
  const pier = await startPier({
    componentsDir,
    dataDir,
    env: { NATIVE_GRANTED: "yes", NATIVE_SECRET: "no" },
  });
  try {
    await t.step("serves routes from the .js with web-standard Request/Response", async () => {
      assert.deepEqual(await (await pier.fetch("/native/hello?name=v8")).json(), { hello: "v8" });
      const echo = await pier.fetch("/native/echo", { method: "POST", body: "bytes back" });
      assert.equal(echo.headers.get("x-echo"), "yes");
      assert.equal(await echo.text(), "bytes back");
    });

    await t.step("an existing `export default { fetch }` handler, mounted", async () => {
      const got = await (await pier.fetch("/mounted/a/b?c=1", { method: "POST" })).json();
      assert.deepEqual(got, { mounted: "/mounted/a/b", method: "POST" });
    });

    await t.step("the scaffold of `deno task new --engine native` serves its route", async () => {
      const response = await pier.fetch("/greeter_native?name=Ada");
      assert.deepEqual(await response.json(), { hello: "Ada" });
    });

    await t.step("health lists it with its routes", async () => {
      const health = await (await pier.fetch("/_/health")).json();
      const app = health.components.find((c: { name: string }) => c.name === "native_app");
      assert.equal(app.state, "loaded");
      assert.equal(app.running, true);
      assert.ok(app.routes.includes("GET /native/hello"));
    });

    await t.step("env: granted variables only", async () => {
      assert.deepEqual(await (await pier.fetch("/native/env")).json(), {
        granted: "yes",
        other: null,
      });
    });

    await t.step("db: statements, transactions, exact integers, refusals", async () => {
      const body = await (await pier.fetch("/native/db")).json();
      assert.deepEqual(body.rows, [["a", 6, "9007199254740993"], ["b", 6, "9007199254740993"]]);
      assert.equal(body.rolledBack, "roll back");
      assert.equal(body.refused, "DbError");
    });

    await t.step("SQL functions: called by a statement, answered by the process", async () => {
      const body = await (await pier.fetch("/native/sqlfn")).json();
      assert.deepEqual(body, [["42", String(2n ** 41n)]]);
    });

    await t.step("kv: granted bucket, refused bucket", async () => {
      assert.deepEqual(await (await pier.fetch("/native/kv")).json(), {
        value: "v",
        count: 2,
        keys: ["k", "n"],
        denied: "access-denied",
      });
    });

    await t.step("fs: a granted directory", async () => {
      assert.deepEqual(await (await pier.fetch("/native/fs")).json(), {
        text: "from a granted dir",
      });
    });

    await t.step("fetch: a granted host, through the server", async () => {
      const url = `http://127.0.0.1:${upstream.addr.port}/`;
      const body = await (await pier.fetch(`/native/fetch?url=${encodeURIComponent(url)}`)).json();
      assert.deepEqual(body, { status: 200, body: "upstream says hi" });
    });

    await t.step("console output becomes [name:out] and [name:err] lines", async () => {
      assert.equal(await (await pier.fetch("/native/log")).text(), "logged");
      await pier.waitForLog(/\[native_app:out\] native says hello/, 10_000);
      await pier.waitForLog(/\[native_app:err\] native complains/, 10_000);
    });

    await t.step("a streamed response arrives whole", async () => {
      const body = await (await pier.fetch("/native/stream")).text();
      assert.equal(body.split("\n").filter(Boolean).length, 20);
    });

    await t.step("a thrown error: 500, the process lives on", async () => {
      const response = await pier.fetch("/native/throw");
      assert.equal(response.status, 500);
      await response.body?.cancel();
      await until200(pier, "/native/hello");
      await pier.waitForLog(/thrown on purpose/, 10_000);
    });

    const faults: [string, number, RegExp][] = [
      ["/native/exit", 500, /process exited \(code 7\)/],
      ["/native/reject", 500, /process exited/],
      ["/native/heap", 500, /process exited/],
      ["/native/loop", 504, /ran past the 3000 ms limit/],
    ];
    for (const [path, status, logged] of faults) {
      await t.step(`${path}: ${status}, restarted, neighbours answer`, async () => {
        const pending = pier.fetch(path);
        await neighboursAnswer(pier);
        const response = await pending;
        assert.equal(response.status, status, await response.text());
        await pier.waitForLog(logged, 10_000);
        await neighboursAnswer(pier);
        await until200(pier, "/native/hello");
      });
    }

    await t.step("a crash mid-stream: the body fails, the process restarts", async () => {
      const response = await pier.fetch("/native/midstream");
      assert.equal(response.status, 200);
      await assert.rejects(response.text());
      await neighboursAnswer(pier);
      await until200(pier, "/native/hello");
    });

    await t.step("metrics count its restarts and time-outs like a worker's", async () => {
      const text = await (await pier.fetch("/_/metrics")).text();
      const sample = (name: string) =>
        Number(text.match(new RegExp(`^${name}\\{component="native_app"\\} (\\d+)`, "m"))?.[1]);
      assert.ok(sample("pier_worker_restarts_total") >= 5, text);
      assert.ok(sample("pier_timeouts_total") >= 1, text);
      assert.equal(sample("pier_workers"), 1);
    });
  } finally {
    await upstream.shutdown();
    await pier.stop();
  }
});

Deno.test("native engine: refused at load: a .wasm and a .js of one name, a module that throws, a link out of a granted dir", async () => {
  const componentsDir = await buildNative(["native_neighbour", "native_broken"]);
  await Deno.copyFile(`${componentsDir}/native_neighbour.js`, `${componentsDir}/twin.js`);
  await Deno.writeFile(`${componentsDir}/twin.wasm`, new Uint8Array([0, 97, 115, 109]));
  // A granted directory holding a link out of it: Deno's read permission would follow it.
  await Deno.copyFile(`${componentsDir}/native_neighbour.js`, `${componentsDir}/linked.js`);
  await Deno.writeTextFile(`${componentsDir}/linked.permissions.json`, '{"read": ["shared"]}');
  const dataDir = await scratchDir("pier-native-data-");
  await Deno.mkdir(`${dataDir}/shared/deeper`, { recursive: true });
  await Deno.writeTextFile(`${dataDir}/outside.txt`, "not granted");
  await Deno.symlink(`${dataDir}/outside.txt`, `${dataDir}/shared/deeper/escape`);
  await Deno.symlink(`${dataDir}/shared/deeper`, `${dataDir}/shared/inside`);
  const pier = await startPier({ componentsDir, dataDir });
  try {
    const health = await (await pier.fetch("/_/health")).json();
    const twin = health.components.filter((c: { name: string }) => c.name.startsWith("twin"));
    assert.equal(twin.length, 1, JSON.stringify(health.components));
    assert.equal(twin[0].state, "failed");
    assert.match(twin[0].error, /twin\.js and .*twin\.wasm are both component "twin"/);
    const broken = health.components.find((c: { name: string }) => c.name === "native_broken");
    assert.equal(broken.state, "failed");
    assert.match(broken.error, /init failed: broken on purpose at load/);
    const linked = health.components.find((c: { name: string }) => c.name === "linked");
    assert.equal(linked.state, "failed");
    assert.match(linked.error, /shared\/deeper\/escape is a link out of its granted directory/);
    assert.equal(await (await pier.fetch("/neighbour")).text(), "still here");
  } finally {
    await pier.stop();
  }
});

Deno.test("a native component is replaced and removed while Pier serves (hot reload)", async () => {
  const [v1, v2] = await Promise.all([
    buildNative(["native_reload_v1"]),
    buildNative(["native_reload_v2"]),
  ]);
  const componentsDir = await buildNative(["native_neighbour"]);
  const served = `${componentsDir}/svc.js`;
  await Deno.copyFile(`${v1}/native_reload_v1.js`, served);
  const pier = await startPier({ componentsDir });
  /** Polls `/version` until it answers `expected` (a generous bound: not frozen). */
  const untilVersion = async (expected: string | number) => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const response = await pier.fetch("/version");
      const body = await response.text();
      if (expected === response.status || expected === body) return;
      if (Date.now() > deadline) assert.fail(`/version still answers ${response.status} ${body}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  try {
    assert.equal(await (await pier.fetch("/version")).text(), "v1");
    const firstPid = await processOf("svc", pier);
    await Deno.copyFile(`${v2}/native_reload_v2.js`, `${served}.new`);
    await Deno.rename(`${served}.new`, served);
    await untilVersion("v2");
    await pier.waitForLog(/svc: reloaded in \d+ ms/);
    await neighboursAnswer(pier);
    // The old version's process is stopped once drained.
    const deadline = Date.now() + 20_000;
    while (await alive(firstPid)) {
      if (Date.now() > deadline) assert.fail(`the old process ${firstPid} still runs`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await Deno.remove(served);
    await untilVersion(404);
    await neighboursAnswer(pier);
  } finally {
    await pier.stop();
    for (const dir of [v1, v2, componentsDir]) await Deno.remove(dir, { recursive: true });
  }
});

/** The pid of the native process running component `name` (a child of the server process). */
async function processOf(name: string, pier: Pier): Promise<number> {
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`).catch(() => "");
    if (cmdline.includes("deno") && cmdline.includes(`${name}.js`)) {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`).catch(() => "");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pier.pid || (await parentOf(ppid)) === pier.pid) return Number(entry.name);
    }
  }
  throw new Error(`no process runs ${name}.js`);
}

async function parentOf(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

const alive = (pid: number) => Deno.stat(`/proc/${pid}`).then(() => true, () => false);
