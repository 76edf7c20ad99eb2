/**
 * The runtime core over real HTTP: discovery, compile cache, routing,
 * dispatch, failure containment, concurrency and health.
 */
import assert from "node:assert/strict";
import { checkEntry, compileCached } from "../runtime/compile/cache.ts";
import { componentizeWat } from "../tools/componentize.ts";
import { buildFixtures, type Pier, readTimed, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["fixture", "conflict", "badinit", "routes_file"]);

async function json(response: Response) {
  assert.equal(response.headers.get("content-type"), "application/json");
  return await response.json();
}

Deno.test("runtime core", async (t) => {
  const pier: Pier = await startPier({
    components: {
      fixture: fixtures.fixture,
      // "conflict" sorts after "broken" and "badinit" but before nothing that matters:
      // it loads after "fixture"? No: discovery order is alphabetical, so name it to load last.
      zconflict: fixtures.conflict,
      badinit: fixtures.badinit,
      broken: new TextEncoder().encode("this is not wasm"),
      core: new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]),
    },
  });
  await Deno.writeTextFile(`${pier.componentsDir}/Bad Name.wasm`, "");
  try {
    await t.step("path params, query, headers and body reach the guest", async () => {
      const response = await pier.fetch("/echo/al%20ice?x=1&y=two", {
        method: "POST",
        headers: { "x-custom": "yes", "__context": "forged" },
        body: "hello body",
      });
      assert.equal(response.status, 200);
      const echo = await json(response);
      assert.equal(echo.method, "post");
      assert.equal(echo.pathWithQuery, "/echo/al%20ice?x=1&y=two");
      assert.match(echo.authority, /^127\.0\.0\.1:\d+$/);
      assert.equal(echo.custom, "yes");
      assert.equal(echo.body, "hello body");
      assert.equal(echo.contextHeaders, 1, "the client's __context is replaced, not added to");
      assert.deepEqual(echo.context, {
        kind: "Http",
        registered_path: "/echo/{name}",
        path_params: [["name", "al ice"]],
        user: null,
      });
    });

    await t.step("wildcard binds the rest of the path", async () => {
      const echo = await json(await pier.fetch("/files/a/b/c.txt"));
      assert.equal(echo.context.registered_path, "/files/{*rest}");
      assert.deepEqual(echo.context.path_params, [["rest", "a/b/c.txt"]]);
    });

    await t.step("unknown path is 404, wrong method is 405 with Allow", async () => {
      const missing = await pier.fetch("/nothing/here");
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
      const wrong = await pier.fetch("/only-post");
      assert.equal(wrong.status, 405);
      assert.deepEqual(wrong.headers.get("allow")!.split(", ").sort(), ["DELETE", "POST"]);
      await wrong.body?.cancel();
      const put = await pier.fetch("/echo/x", { method: "PUT" });
      assert.equal(put.status, 405);
      assert.deepEqual(put.headers.get("allow")!.split(", ").sort(), ["GET", "HEAD", "POST"]);
      await put.body?.cancel();
    });

    await t.step("HEAD falls back to GET without a body", async () => {
      const response = await pier.fetch("/echo/head", { method: "HEAD" });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "application/json");
      assert.equal(await response.text(), "");
    });

    await t.step("204 is answered without a body", async () => {
      const response = await pier.fetch("/no-content");
      assert.equal(response.status, 204);
      assert.equal(response.headers.get("x-done"), "yes");
      assert.equal(await response.text(), "");
    });

    await t.step("the response body streams", async () => {
      const { first, rest, firstAt, allAt } = await readTimed(await pier.fetch("/stream"));
      assert.equal(first, "one\n");
      assert.equal(rest, "two\nthree\n");
      // The chunks are 200 ms apart: the first must arrive before the last was written.
      assert.ok(firstAt < allAt - 150, `first chunk at ${firstAt} ms, all at ${allAt} ms`);
    });

    await t.step("guest stdout goes to the log with the component's name", async () => {
      const response = await pier.fetch("/log");
      assert.equal(await response.text(), "logged");
      await pier.waitForLog(/\[fixture:out\] fixture says hello to the log/, 5000);
    });

    await t.step("a trap is a short 500 and the next request works", async () => {
      const trapped = await pier.fetch("/trap");
      assert.equal(trapped.status, 500);
      const text = await trapped.text();
      assert.ok(!text.includes("at "), `no stack to the client: ${text}`);
      assert.match(pier.log(), /fixture trapped on purpose/);
      const after = await pier.fetch("/echo/again");
      assert.equal(after.status, 200);
      await after.body?.cancel();
    });

    await t.step(
      "a status the server cannot send (1xx) gives 502; the server serves on",
      async () => {
        const response = await pier.fetch("/status/150");
        assert.equal(response.status, 502);
        assert.match(await response.text(), /response is unusable/);
        const teapot = await pier.fetch("/status/418");
        assert.equal(teapot.status, 418);
        assert.equal(await teapot.text(), "with this status");
      },
    );

    await t.step("a guest that sets no response gives 500", async () => {
      const response = await pier.fetch("/no-response");
      assert.equal(response.status, 500);
      assert.match(await response.text(), /component/);
    });

    await t.step("a slow request does not delay a fast one", async () => {
      const started = performance.now();
      const slow = pier.fetch("/sleep/1000").then(async (r) => {
        assert.equal(await r.text(), "slept 1000");
        return performance.now() - started;
      });
      await new Promise((r) => setTimeout(r, 100));
      const fast = await pier.fetch("/echo/fast");
      await fast.body?.cancel();
      const fastAt = performance.now() - started;
      const slowAt = await slow;
      assert.ok(fastAt < slowAt, `fast answered at ${fastAt} ms, slow at ${slowAt} ms`);
      assert.ok(slowAt >= 1000);
    });

    await t.step("many requests in flight on one component", async () => {
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) => pier.fetch(`/sleep/${100 + i}`).then((r) => r.text())),
      );
      responses.forEach((text, i) => assert.equal(text, `slept ${100 + i}`));
    });

    await t.step("a looping guest does not stall the server", async () => {
      const looping = pier.fetch("/loop").catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
      const health = await pier.fetch("/_/health");
      assert.equal(health.status, 200);
      await health.body?.cancel();
      void looping;
    });

    await t.step("route conflicts refuse the later route; Pier's own routes win", async () => {
      const health = await json(await pier.fetch("/_/health"));
      const byName = Object.fromEntries(
        health.components.map((c: { name: string }) => [c.name, c]),
      );
      assert.equal(byName.zconflict.state, "loaded");
      assert.match(byName.zconflict.warnings[0], /GET \/echo\/\{other\}.*component "fixture"/);
      assert.match(byName.zconflict.warnings[1], /GET \/_\/health is inside Pier's own paths/);
      assert.deepEqual(byName.zconflict.routes, ["GET /_/mine", "GET /conflict-ok"]);
      const ok = await json(await pier.fetch("/conflict-ok"));
      assert.deepEqual(ok, { from: "conflict" });
    });

    await t.step("health lists failed components with their reasons", async () => {
      const health = await json(await pier.fetch("/_/health"));
      const byName = Object.fromEntries(
        health.components.map((c: { name: string }) => [c.name, c]),
      );
      assert.equal(byName.fixture.state, "loaded");
      assert.equal(byName.broken.state, "failed");
      assert.match(byName.broken.error, /not a WebAssembly file/);
      assert.match(byName.core.error, /core WebAssembly module, not a component/);
      assert.equal(byName.badinit.state, "failed");
      assert.match(byName.badinit.error, /badinit refuses to start/);
    });
  } finally {
    await pier.stop();
  }
});

Deno.test("compile once: cache hit on restart, a damaged entry is rebuilt", async () => {
  const root = await scratchDir("pier-cache-");
  const dirs = { componentsDir: `${root}/components`, dataDir: `${root}/data` };
  let pier = await startPier({
    ...dirs,
    components: { fixture: fixtures.fixture, other: fixtures.conflict },
  });
  assert.match(pier.log(), /fixture: [\d.]+ MB, cache miss, \d+ ms/);
  assert.match(pier.log(), /other: [\d.]+ MB, cache miss, \d+ ms/);
  await pier.stop();

  pier = await startPier(dirs);
  assert.match(pier.log(), /fixture: [\d.]+ MB, cache hit, \d+ ms/);
  // Its manifest is known: Pier listens first and starts the component after.
  assert.match(pier.log(), /fixture: loaded \(from its cached manifest; starting\)/);
  const health = await (await pier.fetch("/_/health")).json();
  assert.ok(health.components.every((c: { cache: string }) => c.cache === "hit"));
  const started = await pier.fetch("/echo/from-cached-manifest");
  assert.equal(started.status, 200);
  await started.body?.cancel();
  await pier.stop();

  // Truncate one file of one entry: that entry alone is rebuilt.
  const entries = [];
  for await (const { name } of Deno.readDir(`${dirs.dataDir}/cache`)) {
    if (/^[0-9a-f]{40}$/.test(name)) entries.push(name);
  }
  assert.equal(entries.length, 2);
  const damaged = `${dirs.dataDir}/cache/${entries[0]}/component.js`;
  await Deno.truncate(damaged, 100);
  pier = await startPier(dirs);
  assert.match(pier.log(), /cache miss \(rebuilt: component\.js does not match its hash\)/);
  assert.match(pier.log(), /cache hit/);
  const echo = await pier.fetch("/echo/after-rebuild");
  assert.equal(echo.status, 200);
  await echo.body?.cancel();
  await pier.stop();

  // Damage that keeps the size passes the start-up check; each start fails, the entry's hashes
  // are checked, and it is rebuilt and started.
  for (const entry of entries) {
    const glue = `${dirs.dataDir}/cache/${entry}/component.js`;
    const size = (await Deno.stat(glue)).size;
    await Deno.writeTextFile(glue, "export const broken = ;".padEnd(size, " "));
  }
  pier = await startPier(dirs);
  for (const name of ["fixture", "other"]) {
    await pier.waitForLog(
      new RegExp(`${name}: compiled entry damaged \\(component\\.js does not match its hash\\)`),
    );
    await pier.waitForLog(new RegExp(`${name}: worker ready`));
  }
  assert.equal(pier.log().match(/cache miss \(rebuilt: component\.js does not match/g)?.length, 2);
  for (const path of ["/echo/after-repair", "/conflict-ok"]) {
    const response = await pier.fetch(path);
    assert.equal(response.status, 200, path);
    await response.body?.cancel();
  }
  await pier.stop();
});

Deno.test("a cached manifest that changed is replaced once the component has started", async () => {
  const root = await scratchDir("pier-manifest-");
  const dirs = { componentsDir: `${root}/components`, dataDir: `${root}/data` };
  await Deno.mkdir(`${dirs.dataDir}/conf`, { recursive: true });
  await Deno.writeTextFile(`${dirs.dataDir}/conf/routes.txt`, "get /one\n");
  await Deno.mkdir(dirs.componentsDir, { recursive: true });
  await Deno.writeTextFile(
    `${dirs.componentsDir}/routes.permissions.json`,
    JSON.stringify({ read: ["conf"] }),
  );
  const status = async (pier: Pier, path: string) => {
    const response = await pier.fetch(path);
    await response.body?.cancel();
    return response.status;
  };
  let pier = await startPier({ ...dirs, components: { routes: fixtures.routes_file } });
  assert.equal(await status(pier, "/one"), 200);
  await pier.stop();

  // The component is the same, its manifest is not: Pier serves the cached one until the
  // component answers, then the new one.
  await Deno.writeTextFile(`${dirs.dataDir}/conf/routes.txt`, "get /two\npost /three\n");
  pier = await startPier(dirs);
  assert.match(
    pier.log(),
    /routes: loaded \(from its cached manifest; starting\), routes: GET \/one/,
  );
  await pier.waitForLog(
    /routes: its manifest changed since the last start: routes now GET \/two, POST \/three/,
  );
  assert.equal(await status(pier, "/one"), 404);
  assert.equal(await status(pier, "/two"), 200);
  assert.equal(await status(pier, "/three"), 405);
  const health = await json(await pier.fetch("/_/health"));
  assert.deepEqual(health.components[0].routes, ["GET /two", "POST /three"]);
  await pier.stop();

  // The next start serves the new manifest from the cache.
  pier = await startPier(dirs);
  assert.match(
    pier.log(),
    /routes: loaded \(from its cached manifest; starting\), routes: GET \/two/,
  );
  assert.equal(await status(pier, "/two"), 200);
  await pier.stop();

  // Without its file the component cannot start: its cached routes answer 503 with the reason.
  await Deno.remove(`${dirs.dataDir}/conf/routes.txt`);
  pier = await startPier(dirs);
  await pier.waitForLog(/routes: init failed: /);
  const down = await pier.fetch("/two");
  assert.equal(down.status, 503);
  assert.match(await down.text(), /routes: init failed: /);
  const failed = await json(await pier.fetch("/_/health"));
  assert.equal(failed.components[0].state, "failed");
  await pier.stop();
});

Deno.test("a busy component gets another worker; a stalled one holds up no one", async (t) => {
  const componentsDir = await scratchDir("pier-pool-");
  await Deno.copyFile(fixtures.fixture, `${componentsDir}/fixture.wasm`);
  await Deno.writeTextFile(
    `${componentsDir}/fixture.permissions.json`,
    JSON.stringify({ limits: { workers: 2, timeoutMs: 2000 } }),
  );
  const pier = await startPier({ componentsDir, args: ["--worker-idle", "1"] });
  const workers = async () => {
    const health = await (await pier.fetch("/_/health")).json();
    return health.components[0].workers;
  };
  const ok = async (path: string) => {
    const response = await pier.fetch(path);
    assert.equal(response.status, 200, path);
    return await response.text();
  };
  try {
    await t.step("one worker while requests come one at a time", async () => {
      for (let i = 0; i < 5; i++) assert.match(await ok(`/echo/${i}`), new RegExp(`"${i}"`));
      assert.equal(await workers(), 1);
    });

    await t.step("a request does not queue behind a looping one", async () => {
      let loopEnded = false;
      const looping = pier.fetch("/loop").then((response) => {
        loopEnded = true;
        return response;
      });
      await new Promise((r) => setTimeout(r, 300));
      await ok("/echo/meanwhile");
      assert.equal(loopEnded, false, "the echo was answered while the loop still ran");
      assert.equal(await workers(), 2);
      const response = await looping;
      assert.equal(response.status, 504);
      await response.body?.cancel();
      // The looping worker was replaced; the other one serves on.
      assert.equal(await workers(), 1, pier.log());
      await ok("/echo/after");
    });

    await t.step(
      "requests behind a slow one grow the pool; an idle extra worker stops",
      async () => {
        const first = ok("/sleep/300");
        // Once the first request has been in flight a while, its worker is behind: the next go elsewhere.
        await new Promise((r) => setTimeout(r, 50));
        const texts = await Promise.all([first, ok("/sleep/300"), ok("/sleep/300")]);
        assert.deepEqual(texts, ["slept 300", "slept 300", "slept 300"]);
        await pier.waitForLog(/fixture: busy: now 2 workers/);
        await pier.waitForLog(/fixture: idle: now 1 workers/, 10_000);
        assert.equal(await workers(), 1);
        await ok("/echo/still");
      },
    );
  } finally {
    await pier.stop();
  }
});

Deno.test("discovery: a missing dir serves nothing; links to components load", async () => {
  const root = await scratchDir("pier-discovery-");
  let pier = await startPier({ componentsDir: `${root}/missing`, dataDir: `${root}/data` });
  const empty = await json(await pier.fetch("/_/health"));
  assert.deepEqual(empty.components, []);
  assert.match(pier.log(), /no components in/);
  await pier.stop();

  await Deno.mkdir(`${root}/linked`);
  await Deno.symlink(fixtures.conflict, `${root}/linked/via-link.wasm`);
  await Deno.symlink(`${root}/nowhere.wasm`, `${root}/linked/dangling.wasm`);
  await Deno.writeTextFile(`${root}/linked/notes.txt`, "not a component");
  pier = await startPier({ componentsDir: `${root}/linked`, dataDir: `${root}/data` });
  const health = await json(await pier.fetch("/_/health"));
  const byName = Object.fromEntries(health.components.map((c: { name: string }) => [c.name, c]));
  assert.equal(byName["via-link"].state, "loaded");
  assert.match(byName["dangling.wasm"].error, /link does not point to a file/);
  assert.equal(Object.keys(byName).length, 2);
  await pier.stop();
});

Deno.test("--help prints the flags; a bad flag is refused with the usage", async () => {
  const run = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        new URL("../main.ts", import.meta.url).href,
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const help = await run("--help");
  assert.equal(help.code, 0);
  const text = new TextDecoder().decode(help.stdout);
  for (const flag of ["--components", "--data", "--port", "--hostname", "--worker-idle"]) {
    assert.match(text, new RegExp(flag));
  }
  const bad = await run("--port", "eighty");
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /--port: "eighty" is not a port number/);
  const idle = await run("--worker-idle", "0");
  assert.equal(idle.code, 2);
  assert.match(new TextDecoder().decode(idle.stderr), /--worker-idle: "0" is not a positive/);
});

Deno.test("a guest with no JS engine: hand-written WebAssembly text, built with jco's wasm-tools", async () => {
  const wat = await Deno.readTextFile(new URL("../bench/guests/hello.wat", import.meta.url));
  const pier = await startPier({ components: { plain: await componentizeWat(wat) } });
  try {
    const hello = await pier.fetch("/hello");
    assert.equal(hello.status, 200);
    assert.equal(hello.headers.get("content-type"), "text/plain");
    assert.equal(await hello.text(), "Hello, world!\n");
    const other = await pier.fetch("/other");
    assert.equal(other.status, 404);
    await other.body?.cancel();
    const health = await json(await pier.fetch("/_/health"));
    assert.deepEqual(health.components[0].routes, ["GET /hello"]);
  } finally {
    await pier.stop();
  }
});

Deno.test("copies of one component compiled at once share one entry that stays whole", async () => {
  const wat = await Deno.readTextFile(new URL("../bench/guests/hello.wat", import.meta.url));
  const wasm = await componentizeWat(wat);
  const root = await scratchDir("pier-cache-race-");
  const copies = ["a", "b", "c", "d"].map((name) => `${root}/${name}.wasm`);
  for (const path of copies) await Deno.writeFile(path, wasm);
  const cacheDir = `${root}/cache`;
  // Watch the entry from the moment the first compile has returned it: a worker would be
  // loading from it then, and later compiles of the same bytes must not take it away.
  let firstDir: string | undefined;
  let done = false;
  const problems: string[] = [];
  const watch = (async () => {
    while (!done) {
      if (firstDir) {
        const problem = await checkEntry(firstDir, "sizes");
        if (problem) problems.push(problem);
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  })();
  try {
    const results = await Promise.all(copies.map(async (path) => {
      const result = await compileCached(path, cacheDir);
      firstDir ??= result.entry.dir;
      return result;
    }));
    assert.equal(new Set(results.map((r) => r.entry.dir)).size, 1);
    done = true;
    await watch;
    assert.deepEqual(problems, []);
    const left = [];
    for await (const { name } of Deno.readDir(cacheDir)) left.push(name);
    assert.deepEqual(left.filter((name) => name.includes(".tmp")), [], "no staging left");
  } finally {
    done = true;
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a component whose manifest call never returns does not keep Pier from listening", async () => {
  const { reload_loop: looping } = await buildFixtures(["reload_loop"]);
  const componentsDir = await scratchDir("pier-looping-");
  await Deno.copyFile(looping, `${componentsDir}/looping.wasm`);
  await Deno.copyFile(fixtures.fixture, `${componentsDir}/fixture.wasm`);
  // Its start may take its time limit, and at least 10 s.
  await Deno.writeTextFile(
    `${componentsDir}/looping.permissions.json`,
    JSON.stringify({ limits: { timeoutMs: 1000 } }),
  );
  const pier = await startPier({ componentsDir });
  try {
    // Pier listens once the looping start is stopped at its limit; the neighbour serves.
    const echo = await pier.fetch("/echo/neighbour");
    assert.equal(echo.status, 200);
    await echo.body?.cancel();
    await pier.waitForLog(/looping: init failed: no manifest within 10000 ms/, 60_000);
    const health = await json(await pier.fetch("/_/health"));
    const looping = health.components.find((c: { name: string }) => c.name === "looping");
    assert.equal(looping.state, "failed");
  } finally {
    await pier.stop();
    await Deno.remove(componentsDir, { recursive: true });
  }
});
