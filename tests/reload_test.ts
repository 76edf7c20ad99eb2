/**
 * Hot reload over real Pier processes: component files replaced, added and
 * removed in the components directory while Pier serves, under load; broken
 * new versions that must leave the running one serving.
 */
import assert from "node:assert/strict";
import { writeAtomic } from "../runtime/write_atomic.ts";
import { buildFixtures, componentsWithManifests, type Pier, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures([
  "reload_v1",
  "reload_v2",
  "reload_badmanifest",
  "reload_loop",
  "badinit",
  "jobs",
  "fixture",
  "data",
  "sqlfn",
]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Puts `wasm`'s bytes at `target` as a build does: a new file renamed over the old one. */
async function replace(target: string, wasm: string | Uint8Array) {
  await writeAtomic(target, typeof wasm === "string" ? await Deno.readFile(wasm) : wasm);
}

/** Polls `check` until it returns a value; fails after `timeoutMs` naming `what`. */
async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  pier: Pier,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; log:\n${pier.log()}`);
    }
    await sleep(50);
  }
}

/** The status and text of `GET path`. */
async function get(pier: Pier, path: string): Promise<[number, string]> {
  const response = await pier.fetch(path, { signal: AbortSignal.timeout(10_000) });
  return [response.status, await response.text()];
}

interface HealthComponent {
  name: string;
  state: string;
  error?: string;
  routes: string[];
  rejected?: { at: string; file: string; error: string };
}

async function health(pier: Pier): Promise<HealthComponent[]> {
  return (await (await pier.fetch("/_/health")).json()).components;
}

/** Waits until `/_/health` shows a refusal of a new version of `name` newer than `after`. */
async function rejection(pier: Pier, name: string, after: string) {
  return await waitFor(`a refused new version of ${name}`, async () => {
    const component = (await health(pier)).find((c) => c.name === name);
    const rejected = component?.rejected;
    return rejected && rejected.at > after ? rejected : undefined;
  }, pier);
}

/** Lines of Pier's log matching `pattern`. */
const count = (pier: Pier, pattern: RegExp) =>
  pier.log().split("\n").filter((line) => pattern.test(line)).length;

/** One request of the load: what it got, and when it was sent and answered. */
interface Sample {
  client: number;
  sent: number;
  done: number;
  status: number;
  body: string;
}

/**
 * `clients` clients, each sending `GET path` one request after the other
 * until `stop` resolves. Every answer is kept; a connection error or a
 * request past 10 s is kept in `errors`.
 */
function load(pier: Pier, path: string, clients: number, stop: Promise<void>) {
  const samples: Sample[] = [];
  const errors: string[] = [];
  let stopped = false;
  stop.then(() => stopped = true);
  const client = async (id: number) => {
    while (!stopped) {
      const sent = performance.now();
      try {
        const [status, body] = await get(pier, path);
        samples.push({ client: id, sent, done: performance.now(), status, body });
      } catch (error) {
        errors.push(`client ${id}: ${(error as Error).message}`);
      }
    }
  };
  const done = Promise.all(Array.from({ length: clients }, (_, id) => client(id)));
  return { samples, errors, done };
}

Deno.test("under load, a component replaced 10 times, one added and one removed: no request fails, and after each swap only the new version answers", async () => {
  const pier = await startPier({
    components: { swap: fixtures.reload_v1, gone: fixtures.jobs },
  });
  try {
    assert.deepEqual(await get(pier, "/reload/version"), [200, "v1"]);
    await pier.waitForLog(/tick ran/, 10_000);
    const stop = Promise.withResolvers<void>();
    const began = performance.now();
    const traffic = load(pier, "/reload/version", 32, stop.promise);
    /** Per swap: its version, when its file was written, when a new request first got it. */
    const swaps: { version: string; written: number; served: number }[] = [];
    try {
      for (let i = 1; i <= 10; i++) {
        const [version, previous] = i % 2 ? ["v2", "v1"] as const : ["v1", "v2"] as const;
        const written = performance.now();
        await replace(`${pier.componentsDir}/swap.wasm`, fixtures[`reload_${version}`]);
        await waitFor(`version ${version} (swap ${i})`, async () => {
          const [, body] = await get(pier, "/reload/version");
          return body === version ? true : undefined;
        }, pier);
        swaps.push({ version, written, served: performance.now() });
        // Its own route is there, the old version's is gone.
        assert.deepEqual(await get(pier, `/reload/only-${version}`), [200, version]);
        assert.equal((await get(pier, `/reload/only-${previous}`))[0], 404);
        if (i === 3) {
          await replace(`${pier.componentsDir}/added.wasm`, fixtures.fixture);
          await waitFor("the added component", async () => {
            const [status] = await get(pier, "/echo/new");
            return status === 200 ? true : undefined;
          }, pier);
        }
        if (i === 6) {
          await Deno.remove(`${pier.componentsDir}/gone.wasm`);
          await pier.waitForLog(/gone: removed/);
          assert.equal((await get(pier, "/jobs-fixture/ping"))[0], 404);
        }
      }
      const left = 10_000 - (performance.now() - began);
      if (left > 0) await sleep(left);
    } finally {
      stop.resolve();
      await traffic.done;
    }

    assert.deepEqual(traffic.errors, [], "no connection error or time-out");
    const failed = traffic.samples.filter((s) => s.status !== 200);
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} requests failed`);
    assert.ok(traffic.samples.length >= 320, `only ${traffic.samples.length} requests`);
    for (const sample of traffic.samples) assert.ok(["v1", "v2"].includes(sample.body));
    // A request sent after a swap was first seen, and before the next file was written, got the
    // new version.
    swaps.forEach(({ version, served }, i) => {
      const until = swaps[i + 1]?.written ?? Infinity;
      const stale = traffic.samples.filter((s) =>
        s.sent > served && s.done < until && s.body !== version
      );
      assert.deepEqual(stale.slice(0, 3), [], `swap ${i + 1}: old version answered after it`);
    });
    console.log(
      `  ${traffic.samples.length} requests from 32 clients in ${
        ((performance.now() - began) / 1000).toFixed(1)
      } s, 10 swaps, all 200`,
    );

    // The removed component's jobs stopped with it.
    await sleep(3000);
    const ticks = count(pier, /tick ran/);
    await sleep(2500);
    assert.equal(count(pier, /tick ran/), ticks, "the removed component's job still runs");
    const names = (await health(pier)).map((c) => c.name).sort();
    assert.deepEqual(names, ["added", "swap"]);
    const metrics = await (await pier.fetch("/_/metrics")).text();
    assert.match(metrics, /pier_workers\{component="added"\}/);
    assert.doesNotMatch(metrics, /component="gone"/);
  } finally {
    await pier.stop();
  }
});

Deno.test("a broken new version leaves the running one serving, with the error, its time and file in /_/health", async () => {
  // A short time limit: a start that never ends is stopped after 10 s, the least a reload waits.
  const pier = await startPier(
    await componentsWithManifests({
      keep: [fixtures.reload_v1, { limits: { timeoutMs: 1000 } }],
      other: [fixtures.jobs],
    }),
  );
  const keep = `${pier.componentsDir}/keep.wasm`;
  try {
    assert.deepEqual(await get(pier, "/reload/version"), [200, "v1"]);
    const cases: [string, () => Promise<void>, RegExp][] = [
      ["invalid wasm", () => replace(keep, new TextEncoder().encode("not wasm")), /loadable/],
      ["a trap at start", () => replace(keep, fixtures.badinit), /init failed/],
      [
        "a manifest that fails to parse",
        () => replace(keep, fixtures.reload_badmanifest),
        /init failed/,
      ],
      [
        "a start that never ends",
        () => replace(keep, fixtures.reload_loop),
        /no manifest within 10000 ms/,
      ],
    ];
    let after = new Date().toISOString();
    for (const [what, write, error] of cases) {
      await write();
      const rejected = await rejection(pier, "keep", after);
      assert.match(rejected.error, error, `${what}: ${rejected.error}`);
      assert.equal(rejected.file, keep);
      after = rejected.at;
      assert.deepEqual(await get(pier, "/reload/version"), [200, "v1"], what);
      assert.equal((await health(pier)).find((c) => c.name === "keep")!.state, "loaded");
    }
    assert.match(pier.log(), /keep: new version refused \(the running version keeps serving\)/);

    // A route another component has.
    const other = `${pier.componentsDir}/other.wasm`;
    await replace(other, fixtures.reload_v2);
    const taken = await rejection(pier, "other", after);
    assert.match(taken.error, /GET \/reload\/version is already registered by component "keep"/);
    assert.deepEqual(await get(pier, "/reload/version"), [200, "v1"]);
    assert.equal((await get(pier, "/jobs-fixture/ping"))[0], 200);
    assert.equal((await get(pier, "/reload/only-v2"))[0], 404, "half of it is not registered");

    // Grants the server process's flags do not have: the old version serves on.
    after = taken.at;
    for (const grant of [{ net: ["example.com"] }, { env: ["RELOAD_TEST_SECRET"] }]) {
      await Deno.writeTextFile(
        `${pier.componentsDir}/keep.permissions.json`,
        JSON.stringify(grant),
      );
      const beyond = await rejection(pier, "keep", after);
      assert.match(
        beyond.error,
        /beyond the server process's Deno flags: this needs a process hand-over/,
      );
      assert.deepEqual(await get(pier, "/reload/version"), [200, "v1"]);
      after = beyond.at;
    }

    // A working version replaces the old one and clears the refusal; new grants apply.
    await Deno.writeTextFile(
      `${pier.componentsDir}/keep.permissions.json`,
      JSON.stringify({ limits: { timeoutMs: 300 } }),
    );
    await replace(keep, fixtures.reload_v2);
    await waitFor(
      "v2",
      async () => (await get(pier, "/reload/version"))[1] === "v2" || undefined,
      pier,
    );
    const now = (await health(pier)).find((c) => c.name === "keep")!;
    assert.equal(now.rejected, undefined);
    assert.equal((await get(pier, "/reload/sleep/1000"))[0], 504, "the new time limit applies");
  } finally {
    await pier.stop();
  }
});

Deno.test("a changed permission manifest reloads the component with its new grants", async () => {
  const pier = await startPier({ components: { limited: fixtures.reload_v1 } });
  try {
    assert.deepEqual(await get(pier, "/reload/sleep/600"), [200, "v1 slept"]);
    await Deno.writeTextFile(
      `${pier.componentsDir}/limited.permissions.json`,
      JSON.stringify({ limits: { timeoutMs: 200 } }),
    );
    await pier.waitForLog(/limited: reloaded/);
    assert.equal((await get(pier, "/reload/sleep/600"))[0], 504);
  } finally {
    await pier.stop();
  }
});

Deno.test("a link to a component follows its target: a new target file is a new version", async () => {
  const targets = await scratchDir("pier-reload-targets-");
  const target = `${targets}/linked.wasm`;
  await Deno.copyFile(fixtures.reload_v1, target);
  const pier = await startPier();
  try {
    // Added while Pier serves, as a link.
    await Deno.symlink(target, `${pier.componentsDir}/linked.wasm`);
    await waitFor("the linked component", async () => {
      const [status, body] = await get(pier, "/reload/version");
      return status === 200 && body === "v1" ? true : undefined;
    }, pier);
    await pier.waitForLog(/reload beat v1/, 10_000);
    // Its target replaced: no event in the components dir, the poll finds it.
    await replace(target, fixtures.reload_v2);
    await waitFor("the new target", async () => {
      const [, body] = await get(pier, "/reload/version");
      return body === "v2" ? true : undefined;
    }, pier);
    await pier.waitForLog(/reload beat v2/, 10_000);
    // Removed: its routes answer 404, its job stops.
    await Deno.remove(`${pier.componentsDir}/linked.wasm`);
    await pier.waitForLog(/linked: removed/);
    assert.equal((await get(pier, "/reload/version"))[0], 404);
    await sleep(1500);
    const beats = count(pier, /reload beat/);
    await sleep(2500);
    assert.equal(count(pier, /reload beat/), beats, "the removed component's job still runs");
    assert.deepEqual(await health(pier), []);
  } finally {
    await pier.stop();
    await Deno.remove(targets, { recursive: true });
  }
});

Deno.test("SQL functions follow their component: replaced, removed and added back", async () => {
  const pier = await startPier({ components: { data: fixtures.data, sqlfn: fixtures.sqlfn } });
  const sql = async (query: string) => {
    const response = await pier.fetch("/sql/query", {
      method: "POST",
      body: JSON.stringify({ sql: query }),
    });
    return { status: response.status, body: await response.json() };
  };
  const slug = "SELECT pier_slug('Hot Reload')";
  const sqlfn = `${pier.componentsDir}/sqlfn.wasm`;
  try {
    await Deno.writeTextFile(`${pier.componentsDir}/data.permissions.json`, '{"db": "read"}');
    await pier.waitForLog(/data: reloaded/);
    assert.deepEqual((await sql(slug)).body.rows, [[{ text: "hot-reload" }]]);
    // A new version (the same code in a new file) takes its own functions over.
    await replace(sqlfn, fixtures.sqlfn);
    await pier.waitForLog(/sqlfn: reloaded/);
    assert.deepEqual((await sql(slug)).body.rows, [[{ text: "hot-reload" }]]);
    await Deno.remove(sqlfn);
    await pier.waitForLog(/sqlfn: removed/);
    const gone = await sql(slug);
    assert.equal(gone.status, 400);
    assert.match(gone.body.error, /no such function: pier_slug/);
    await replace(sqlfn, fixtures.sqlfn);
    await pier.waitForLog(/sqlfn: loaded in/);
    assert.deepEqual((await sql(slug)).body.rows, [[{ text: "hot-reload" }]]);
  } finally {
    await pier.stop();
  }
});
