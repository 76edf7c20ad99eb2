/**
 * Attacks on the filesystem and outbound network grants: a manifest that
 * grants Pier's own files, a directory swapped for a link while a guest holds
 * descriptors into it, and a granted name that resolves to a private address
 * (DNS rebinding). Real Pier process, real component.
 */
import assert from "node:assert/strict";
import dns from "node:dns";
import { buildFixtures, type Pier, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const { fs_net_attacker: attacker } = await buildFixtures(["fs_net_attacker"]);

/** Starts Pier with one copy of the attacker per entry, each granted `grants[name]`, routes `/<name>/...`. */
async function startAttackers(
  dataDir: string,
  grants: Record<string, Record<string, unknown>>,
): Promise<Pier> {
  const componentsDir = await scratchDir("pier-fna-components-");
  const env: Record<string, string> = {};
  for (const [name, grant] of Object.entries(grants)) {
    const prefixVar = `FNA_${name.toUpperCase()}`;
    env[prefixVar] = name;
    await Deno.copyFile(attacker, `${componentsDir}/${name}.wasm`);
    await Deno.writeTextFile(
      `${componentsDir}/${name}.permissions.json`,
      JSON.stringify({ ...grant, env: [prefixVar] }),
    );
  }
  return await startPier({ componentsDir, dataDir, env });
}

async function attack(pier: Pier, path: string) {
  const response = await pier.fetch(path);
  if (response.status !== 200) {
    assert.fail(`${path}: ${response.status} ${await response.text()}; log:\n${pier.log()}`);
  }
  return await response.json();
}

async function health(pier: Pier): Promise<Record<string, { state: string; error?: string }>> {
  const { components } = await (await pier.fetch("/_/health")).json();
  return Object.fromEntries(components.map((c: { name: string }) => [c.name, c]));
}

Deno.test("a read grant never reaches Pier's own files in the data dir", async () => {
  const root = await scratchDir("pier-fna-");
  const dataDir = `${root}/data`;
  await Deno.mkdir(`${dataDir}/public`, { recursive: true });
  await Deno.writeTextFile(`${dataDir}/public/hello.txt`, "hello");
  await Deno.symlink(`${dataDir}/main.db`, `${dataDir}/public/db-link`);
  await Deno.symlink(dataDir, `${dataDir}/mirror`);
  await Deno.symlink(`${dataDir}/cache`, `${dataDir}/cachelink`);
  const refused = {
    dot: ".",
    dotslash: "./",
    cachegrant: "cache",
    cachesub: "cache/sources",
    wal: "main.db-wal",
    mirror: "mirror",
    viacache: "cachelink",
  };
  const pier = await startAttackers(dataDir, {
    honest: { read: ["public"] },
    ...Object.fromEntries(Object.entries(refused).map(([name, dir]) => [name, { read: [dir] }])),
  });
  try {
    const byName = await health(pier);
    for (const [name, dir] of Object.entries(refused)) {
      assert.equal(byName[name].state, "failed", name);
      const quoted = dir.replace(/[./]/g, "\\$&");
      assert.match(
        byName[name].error!,
        new RegExp(`${name}\\.permissions\\.json: "read" entry "${quoted}" (is|holds)`),
      );
      const response = await pier.fetch(`/${name}/read?path=main.db`);
      assert.equal(response.status, 404, `${name}: its routes are not served`);
      await response.body?.cancel();
    }
    // The others serve; a link inside a granted directory does not lead to main.db either.
    assert.equal(byName.honest.state, "loaded");
    assert.deepEqual(await attack(pier, "/honest/read?path=hello.txt"), {
      result: { read: { result: "hello" }, stream: { result: "hello" } },
    });
    for (const path of ["db-link", "../main.db", "../cache"]) {
      assert.deepEqual(await attack(pier, `/honest/read?path=${path}`), { error: "not-permitted" });
    }
  } finally {
    await pier.stop();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a directory swapped for a link under open descriptors reads nothing outside", async () => {
  const root = await scratchDir("pier-fna-");
  const dataDir = `${root}/data`;
  await Deno.mkdir(`${dataDir}/public/swap`, { recursive: true });
  await Deno.writeTextFile(`${dataDir}/public/swap/inner.txt`, "inside bytes");
  await Deno.mkdir(`${root}/outside`);
  await Deno.writeTextFile(`${root}/outside/inner.txt`, "OUTSIDE BYTES");
  // Another process with write access to the data dir swaps the directory while the guest waits.
  const swapper = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    await Deno.rename(`${dataDir}/public/swap`, `${dataDir}/public/swap-old`);
    await Deno.symlink(`${root}/outside`, `${dataDir}/public/swap`);
    return new Response("swapped");
  });
  const port = swapper.addr.port;
  const pier = await startAttackers(dataDir, {
    racer: { read: ["public"], net: [`localhost:${port}`] },
  });
  try {
    const result = await attack(pier, `/racer/race?url=http://localhost:${port}/swap`);
    assert.deepEqual(result.before, {
      read: { result: "inside bytes" },
      stream: { result: "inside bytes" },
    });
    assert.deepEqual(result.swapped, { status: 200, body: "swapped" });
    assert.ok(!JSON.stringify(result).includes("OUTSIDE"), JSON.stringify(result));
    // The file's and the directory's paths now lead outside: neither is the file it was.
    assert.deepEqual(result.file, {
      read: { error: "not-permitted" },
      stream: { error: "not-permitted" },
    });
    for (const use of ["list", "openAt", "statAt", "stat", "again"]) {
      assert.deepEqual(result[use], { error: "not-permitted" }, use);
    }
  } finally {
    await pier.stop();
    await swapper.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});

/** The loopback addresses `name` resolves to on this machine (the system resolver, as Deno's). */
async function loopbackOnly(name: string): Promise<boolean> {
  const addresses = await dns.promises.lookup(name, { all: true }).catch(() => []);
  return addresses.length > 0 && addresses.every(({ address }) => address.startsWith("127."));
}

const HOSTS_LINE = "127.0.0.1 pier-rebind.test # added by Pier's files_net_attack_test";

/**
 * A name that is not private by itself but resolves to loopback only: this
 * machine's hostname if it does, else `pier-rebind.test`, added to /etc/hosts
 * for the test (removed by the returned function).
 */
async function rebindingName(): Promise<[string, () => Promise<void>]> {
  const own = Deno.hostname();
  if (!own.includes("localhost") && await loopbackOnly(own)) return [own, async () => {}];
  await Deno.writeTextFile("/etc/hosts", `${HOSTS_LINE}\n`, { append: true });
  const remove = async () => {
    const hosts = await Deno.readTextFile("/etc/hosts");
    await Deno.writeTextFile("/etc/hosts", hosts.replace(`${HOSTS_LINE}\n`, ""));
  };
  return [new URL("http://pier-rebind.test").hostname, remove];
}

Deno.test("a granted name that resolves to a private address is refused (DNS rebinding)", async () => {
  const [name, cleanUp] = await rebindingName();
  const target = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("reached loopback"),
  );
  const port = target.addr.port;
  const root = await scratchDir("pier-fna-");
  const pier = await startAttackers(`${root}/data`, {
    rebind: { net: [`${name}:${port}`] },
    pinned: { net: [`${name}:${port}`, `127.0.0.1:${port}`] },
    local: { net: [`localhost:${port}`] },
  });
  try {
    assert.deepEqual(await attack(pier, `/rebind/fetch?url=http://${name}:${port}/`), {
      error: "HTTP-request-denied",
    });
    assert.match(
      pier.log(),
      new RegExp(`rebind: outbound request denied: ${name} resolved to 127\\.0\\.0\\.1`),
    );
    // The address granted exactly, or a private name granted exactly, is reached.
    const reached = { status: 200, body: "reached loopback" };
    assert.deepEqual(await attack(pier, `/pinned/fetch?url=http://${name}:${port}/`), reached);
    assert.deepEqual(await attack(pier, `/local/fetch?url=http://localhost:${port}/`), reached);
  } finally {
    await pier.stop();
    await target.shutdown();
    await cleanUp();
    await Deno.remove(root, { recursive: true });
  }
});
