/**
 * Attacks by a hostile native component (`tests/fixtures/native_attacker.ts`):
 * a native component has V8's and Deno's whole API, so everything it must
 * not do is refused by its process's Deno permissions (`sandbox.ts`'s
 * `nativeProcessCommand`), its memory limits, or the server process's checks
 * on its outbound requests. Each attack must be denied, and the component
 * must still answer after all of them; the controls (a granted file, a
 * granted host) must be allowed, so a test that denies everything fails.
 */
import assert from "node:assert/strict";
import { startPier } from "./harness.ts";
import { buildNative } from "./native_harness.ts";
import { scratchDir } from "./scratch.ts";

/** A port nothing listens on. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("native engine: a hostile component is denied every escape", async (t) => {
  const componentsDir = await buildNative(["native_attacker", "native_neighbour"]);
  const dataDir = await scratchDir("pier-native-attack-");
  await Deno.mkdir(`${dataDir}/files`);
  await Deno.writeTextFile(`${dataDir}/files/granted.txt`, "granted");
  const elsewhere = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("not granted"),
  );
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const { pathname } = new URL(req.url);
    if (pathname === "/redirect") {
      return Response.redirect(`http://127.0.0.1:${elsewhere.addr.port}/`, 302);
    }
    return new Response("granted host");
  });
  const listenPort = freePort();
  await Deno.writeTextFile(
    `${componentsDir}/native_attacker.permissions.json`,
    JSON.stringify({
      read: ["files"],
      env: ["NATIVE_GRANTED"],
      net: [`127.0.0.1:${upstream.addr.port}`, `127.0.0.1:${listenPort}`],
      limits: { memoryMb: 64, timeoutMs: 10_000 },
    }),
  );
  const pier = await startPier({
    componentsDir,
    dataDir,
    env: { NATIVE_GRANTED: "yes", NATIVE_SECRET: "secret" },
  });
  const granted = `http://127.0.0.1:${upstream.addr.port}`;
  const attack = async (name: string, query: Record<string, string> = {}) => {
    const response = await pier.fetch(`/attack/${name}?${new URLSearchParams(query)}`);
    assert.equal(response.status, 200, `${name}: ${response.status}`);
    return await response.json() as { outcome: string; detail: string };
  };
  const denied = async (name: string, query: Record<string, string> = {}) => {
    const { outcome, detail } = await attack(name, query);
    assert.equal(outcome, "denied", `${name} ${JSON.stringify(query)}: allowed: ${detail}`);
    return detail;
  };
  try {
    await t.step("controls: its granted file and host are allowed", async () => {
      assert.equal(
        (await attack("read", { path: `${dataDir}/files/granted.txt` })).outcome,
        "allowed",
      );
      assert.equal((await attack("sdkFetch", { url: `${granted}/` })).outcome, "allowed");
    });

    const reads: [string, string][] = [
      ["the data dir", dataDir],
      ["main.db", `${dataDir}/main.db`],
      ["the compile cache", `${dataDir}/cache`],
      ["another component", `${componentsDir}/native_neighbour.js`],
      ["its own manifest", `${componentsDir}/native_attacker.permissions.json`],
      ["/etc/passwd", "/etc/passwd"],
      ["/proc/self/environ", "/proc/self/environ"],
      ["the server's environ", `/proc/${pier.pid}/environ`],
    ];
    for (const [what, path] of reads) {
      await t.step(`Deno.readFile of ${what}: denied`, async () => {
        await denied(path === dataDir ? "readDir" : "read", { path });
        await denied("importFile", { path });
      });
    }

    await t.step("any write: denied, even into its granted dir", async () => {
      await denied("write", { path: `${dataDir}/files/granted.txt` });
      await denied("write", { path: "/tmp/pier-native-pwned" });
    });

    for (const name of ["command", "dlopen", "envAll", "envOther", "sys", "childProcess"]) {
      await t.step(`${name}: denied`, () => denied(name).then(() => {}));
    }

    await t.step("signals to other processes (the server): denied", async () => {
      await denied("kill", { pid: String(pier.pid) });
    });

    await t.step("imports of node:fs reads, npm:, https: and file: modules: denied", async () => {
      await denied("nodeFs");
      await denied("importNpm");
      await denied("importHttps");
    });

    await t.step("listening, even on a granted host:port, by any API: denied", async () => {
      await denied("listen", { port: String(listenPort) });
      await denied("serve", { port: String(listenPort) });
      await denied("nodeListen");
      await denied("internalOps");
    });

    await t.step("fetch to 127.0.0.1 outside its grants, directly or by redirect", async () => {
      const other = `http://127.0.0.1:${elsewhere.addr.port}/`;
      await denied("rawFetch", { url: `${granted}/` });
      await denied("rawFetch", { url: other });
      assert.match(await denied("sdkFetch", { url: other }), /not in the manifest's "net"/);
      assert.match(await denied("sdkFetch", { url: `${granted}/redirect` }), /redirect/);
      await denied("sdkFetch", { url: "http://10.0.0.1/" });
    });

    await t.step("a 1 GB allocation outside the V8 heap: refused, the process lives", async () => {
      assert.match(await denied("bigBuffer"), /RangeError/);
      assert.match(await denied("wasmMemory"), /RangeError/);
      assert.deepEqual(await (await pier.fetch("/attack-alive")).json(), { alive: true });
    });

    for (const name of ["stdoutGarbage", "forgedFrame"]) {
      await t.step(
        `${name} on the protocol pipe: that process is killed, and restarts`,
        async () => {
          const response = await pier.fetch(`/attack/${name}`);
          assert.equal(response.status, 500, await response.text());
          await pier.waitForLog(
            name === "forgedFrame"
              ? /native_attacker: process replaced in \d+ ms: it sent a malformed message: unknown message "take-over"/
              : /native_attacker: process replaced in \d+ ms: it sent a malformed/,
          );
          const deadline = Date.now() + 20_000;
          for (let alive = false; !alive; await new Promise((r) => setTimeout(r, 100))) {
            const again = await pier.fetch("/attack-alive");
            alive = again.status === 200;
            await again.body?.cancel();
            assert.ok(alive || Date.now() < deadline, "the component did not start again");
          }
          assert.equal(await (await pier.fetch("/neighbour")).text(), "still here");
        },
      );
    }

    await t.step("the neighbour and the server are unharmed", async () => {
      assert.equal(await (await pier.fetch("/neighbour")).text(), "still here");
      assert.equal(await Deno.readTextFile(`${dataDir}/files/granted.txt`), "granted");
      await assert.rejects(Deno.stat("/tmp/pier-native-pwned"));
    });
  } catch (error) {
    console.log(pier.log());
    throw error;
  } finally {
    await upstream.shutdown();
    await elsewhere.shutdown();
    await pier.stop();
  }
});
