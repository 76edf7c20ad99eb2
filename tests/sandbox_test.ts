/**
 * The sandbox holds: an attacker component tries every escape over real
 * HTTP, each attempt is denied, and the server and its neighbours stay
 * healthy. Also: malformed manifests, limits, and Deno's own wall around a
 * component worker.
 */
import assert from "node:assert/strict";
import { workerPermissions } from "../runtime/sandbox.ts";
import { DENY_ALL } from "../runtime/permissions.ts";
import { buildFixtures, type Pier, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["attacker", "fixture"]);

/** A local HTTP server standing in for the outside world. */
function startTarget(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { pathname } = new URL(request.url);
    const port = new URL(request.url).port;
    if (pathname === "/redirect-private") {
      return Response.redirect(`http://127.0.0.1:${port}/ok`, 302);
    }
    if (pathname === "/redirect-allowed") {
      return Response.redirect(`http://localhost:${port}/ok`, 302);
    }
    return new Response("ok from target");
  });
}
const target = startTarget();
const targetPort = (target.addr as Deno.NetAddr).port;

async function setup() {
  const root = await scratchDir("pier-sandbox-");
  const componentsDir = `${root}/components`;
  const dataDir = `${root}/data`;
  await Deno.mkdir(componentsDir);
  await Deno.mkdir(`${dataDir}/public/sub`, { recursive: true });
  await Deno.writeTextFile(`${dataDir}/public/hello.txt`, "hello from public");
  await Deno.writeTextFile(`${dataDir}/secret.txt`, "TOP SECRET");
  await Deno.symlink(`${dataDir}/secret.txt`, `${dataDir}/public/link-out`);
  await Deno.copyFile(fixtures.attacker, `${componentsDir}/attacker.wasm`);
  await Deno.writeTextFile(
    `${componentsDir}/attacker.permissions.json`,
    JSON.stringify({
      net: [`localhost:${targetPort}`],
      read: ["public"],
      env: ["GRANTED_VAR"],
      db: "read",
      kv: ["mine"],
      limits: { memoryMb: 256, timeoutMs: 3000, concurrency: 4 },
    }),
  );
  await Deno.copyFile(fixtures.fixture, `${componentsDir}/neighbour.wasm`);
  for (const bad of ["badjson", "badkey", "badtype"]) {
    await Deno.copyFile(fixtures.fixture, `${componentsDir}/${bad}.wasm`);
  }
  await Deno.writeTextFile(`${componentsDir}/badjson.permissions.json`, "{ net: [");
  await Deno.writeTextFile(`${componentsDir}/badkey.permissions.json`, '{"network": []}');
  await Deno.writeTextFile(`${componentsDir}/badtype.permissions.json`, '{"db": true}');
  return { componentsDir, dataDir };
}

async function attack(pier: Pier, what: string) {
  const response = await pier.fetch(`/attack/${what}`);
  assert.equal(response.status, 200, `${what}: ${response.status}`);
  return await response.json();
}

Deno.test("the sandbox holds", async (t) => {
  const pier = await startPier({
    ...(await setup()),
    env: { GRANTED_VAR: "granted-value", SECRET_VAR: "must not leak" },
  });
  try {
    await t.step("the granted directory is readable", async () => {
      assert.deepEqual(await attack(pier, "preopens"), { preopens: ["/public"] });
      assert.deepEqual(await attack(pier, "read-granted"), { text: "hello from public" });
    });

    await t.step("no file outside the granted directory, no writes", async () => {
      for (const escape of ["etc-passwd", "dotdot", "dotdot-deep", "symlink"]) {
        const result = await attack(pier, escape);
        assert.equal(result.error, "not-permitted", `${escape}: ${JSON.stringify(result)}`);
        assert.ok(!JSON.stringify(result).includes("SECRET"));
      }
      assert.equal((await attack(pier, "write")).error, "read-only");
    });

    await t.step("only granted env vars are visible", async () => {
      assert.deepEqual(await attack(pier, "env"), { env: [["GRANTED_VAR", "granted-value"]] });
    });

    await t.step("outbound HTTP only to granted hosts", async () => {
      const fetchVia = (url: string) => attack(pier, `fetch?url=${encodeURIComponent(url)}`);
      assert.deepEqual(await fetchVia(`http://localhost:${targetPort}/ok`), {
        status: 200,
        body: "ok from target",
      });
      for (
        const url of [
          `http://127.0.0.1:${targetPort}/ok`,
          "http://169.254.169.254/latest/meta-data/",
          "http://example.com/",
          `http://localhost:${targetPort + 1}/`,
          `http://localhost:${targetPort}/redirect-private`,
        ]
      ) {
        assert.deepEqual(await fetchVia(url), { error: "HTTP-request-denied" }, url);
      }
      // Even a listed loopback host is never reached through a redirect.
      assert.deepEqual(await fetchVia(`http://localhost:${targetPort}/redirect-allowed`), {
        error: "HTTP-request-denied",
      });
      assert.match(pier.log(), /attacker: outbound request denied: 127\.0\.0\.1/);
    });

    await t.step("a read grant cannot write; ATTACH is refused", async () => {
      assert.deepEqual(await attack(pier, "db-read"), { result: "42" });
      assert.match((await attack(pier, "db-write")).error, /readonly database/);
      assert.match((await attack(pier, "attach")).error, /not authorized/);
    });

    await t.step("only granted key-value buckets open", async () => {
      assert.deepEqual(await attack(pier, "kv-granted"), { result: "ok" });
      assert.equal((await attack(pier, "kv-other")).error, "access-denied");
    });

    await t.step("eating memory fails the request, the next one works", async () => {
      const response = await pier.fetch("/attack/alloc");
      assert.equal(response.status, 500);
      await response.body?.cancel();
      assert.deepEqual(await attack(pier, "read-granted"), { text: "hello from public" });
    });

    await t.step("an endless loop is stopped with 504; others answer meanwhile", async () => {
      const started = performance.now();
      const looping = pier.fetch("/attack/loop");
      await new Promise((r) => setTimeout(r, 300));
      const healthAt = performance.now();
      const health = await pier.fetch("/_/health");
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const neighbour = await pier.fetch("/echo/still-here");
      assert.equal(neighbour.status, 200);
      await neighbour.body?.cancel();
      assert.ok(performance.now() - healthAt < 1000, "health and the neighbour answered promptly");
      const response = await looping;
      assert.equal(response.status, 504);
      await response.body?.cancel();
      assert.ok(performance.now() - started < 10_000);
      assert.deepEqual(await attack(pier, "read-granted"), { text: "hello from public" });
    });

    await t.step("beyond its concurrency limit a component answers 503", async () => {
      const loops = Array.from({ length: 4 }, () => pier.fetch("/attack/loop"));
      await new Promise((r) => setTimeout(r, 200));
      const rejected = await pier.fetch("/attack/preopens");
      assert.equal(rejected.status, 503);
      assert.equal(rejected.headers.get("retry-after"), "1");
      await rejected.body?.cancel();
      for (const response of await Promise.all(loops)) {
        assert.equal(response.status, 504);
        await response.body?.cancel();
      }
    });

    await t.step("a malformed manifest keeps only its component out", async () => {
      const health = await (await pier.fetch("/_/health")).json();
      const byName = Object.fromEntries(
        health.components.map((c: { name: string }) => [c.name, c]),
      );
      assert.match(byName.badjson.error, /badjson\.permissions\.json: invalid JSON/);
      assert.match(byName.badkey.error, /badkey\.permissions\.json: "network" is not a known key/);
      assert.match(byName.badtype.error, /badtype\.permissions\.json: "db" must be/);
      assert.equal(byName.neighbour.state, "loaded");
      assert.equal(byName.attacker.state, "loaded");
      assert.match(
        pier.log(),
        /neighbour: no neighbour\.permissions\.json: all capabilities denied/,
      );
    });
  } finally {
    await pier.stop();
  }
});

Deno.test("Deno's wall: a component worker cannot read, fetch or see env beyond its grants", async () => {
  const dir = await scratchDir();
  const script = `${dir}/probe.js`;
  await Deno.writeTextFile(
    script,
    `const results = {};
    const tryIt = async (name, fn) => {
      try { await fn(); results[name] = "allowed"; } catch (e) { results[name] = e.name; }
    };
    await tryIt("read", () => Deno.readTextFile("/etc/hostname"));
    await tryIt("fetch", () => fetch("http://127.0.0.1:${targetPort}/ok").then((r) => r.text()));
    await tryIt("env", () => Deno.env.get("HOME"));
    await tryIt("write", () => Deno.writeTextFile("${dir}/x", "x"));
    await tryIt("run", () => new Deno.Command("true").output());
    self.postMessage(results);`,
  );
  const entry = { dir, hit: true, imports: [] };
  const worker = new Worker(new URL(`file://${script}`), {
    type: "module",
    deno: { permissions: workerPermissions(entry, [], DENY_ALL) },
  } as WorkerOptions);
  const results = await new Promise((resolve) => worker.onmessage = (e) => resolve(e.data));
  worker.terminate();
  assert.deepEqual(results, {
    read: "NotCapable",
    fetch: "NotCapable",
    env: "NotCapable",
    write: "NotCapable",
    run: "NotCapable",
  });
});

globalThis.addEventListener("unload", () => target.shutdown());
