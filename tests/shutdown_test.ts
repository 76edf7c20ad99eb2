/**
 * Graceful shutdown over real Pier processes: a stop signal to the launcher
 * (as `deno task start` and `docker stop` send it) while requests and a job
 * run are in flight, checked from the client side, in Pier's log, its exit
 * code and what it left in the data directory.
 */
import assert from "node:assert/strict";
import { type Config, ConfigError, parseConfig } from "../runtime/config.ts";
import { openDatabase } from "../runtime/pier_db.ts";
import type { RunRecord } from "../runtime/scheduling/store.ts";
import { buildFixtures, componentsWithManifests, type Pier, startPier } from "./harness.ts";

const fixtures = await buildFixtures(["slow_work", "data_reader"]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `test` on a Pier serving the slow_work fixture (and `more` components) with `--grace`
 * `grace`, in directories of its own (the harness would delete the data directory when Pier
 * stops). A Pier the test left running is killed.
 */
async function withSlowPier(
  grace: number,
  test: (pier: Pier) => Promise<void>,
  more: Record<string, [wasm: string, manifest?: unknown]> = {},
): Promise<void> {
  const { componentsDir, dataDir } = await componentsWithManifests({
    slow: [fixtures.slow_work],
    ...more,
  });
  const pier = await startPier({ componentsDir, dataDir, args: ["--grace", String(grace)] });
  try {
    await test(pier);
  } finally {
    try {
      Deno.kill(pier.pid, "SIGKILL");
    } catch {
      // it exited, as it should
    }
    await pier.stop("SIGKILL");
    await Deno.remove(`${dataDir}/..`, { recursive: true });
  }
}

/** Sends a request and waits until the guest has started it (it prints a line then). */
async function inGuest(pier: Pier, path: string): Promise<{ response: Promise<Response> }> {
  const response = pier.fetch(path);
  // Awaited by the test; a failure of the test must not surface as an unhandled rejection.
  response.catch(() => {});
  const [, route, ms] = path.match(/^\/(\w+)\/(\d+)$/)!;
  await pier.waitForLog(new RegExp(`\\[slow:out\\] /${route}/\\{ms\\} ${ms} started`));
  return { response };
}

/**
 * How a request sent now ends: its status, "refused" (no connection: refused, or a kept-alive one
 * closed by the server) or "hang".
 */
async function tryRequest(
  pier: Pier,
  client?: Deno.HttpClient,
): Promise<number | "refused" | "hang"> {
  try {
    const response = await fetch(`${pier.url}/wait/1`, {
      client,
      signal: AbortSignal.timeout(3000),
    });
    await response.body?.cancel();
    return response.status;
  } catch (error) {
    if ((error as Error).name === "TimeoutError") return "hang";
    assert.match(`${(error as Error).cause}`, /Connection (refused|reset)|connection closed/i);
    return "refused";
  }
}

/** A cut request's status and body, or "cut" when it lost its connection. */
function cutResponse(response: Promise<Response>): Promise<string> {
  return response.then(async (r) => `${r.status} ${await r.text()}`, () => "cut");
}

/** Every stored run of the slow job, oldest first, read from main.db directly. */
function storedRuns(dataDir: string): RunRecord[] {
  const db = openDatabase(`${dataDir}/main.db`, { readOnly: true });
  try {
    return db.prepare("SELECT * FROM _pier_job_runs WHERE job = 'slow' ORDER BY started_at")
      .all() as unknown as RunRecord[];
  } finally {
    db.close();
  }
}

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, "g"))?.length ?? 0;

Deno.test("requests in flight at SIGTERM complete; new ones are refused; exit 0, WAL checkpointed", () =>
  withSlowPier(10, async (pier) => {
    // The job's runs are recorded in main.db: its WAL has frames before the signal.
    await pier.waitForLog(/job slow done/);
    // A database read process is up: a read-only connection closed last cannot checkpoint.
    const read = await pier.fetch("/reader/sql/query", {
      method: "POST",
      body: JSON.stringify({ sql: "SELECT 1" }),
    });
    assert.equal(read.status, 200);
    await read.body?.cancel();
    const wal = `${pier.dataDir}/main.db-wal`;
    assert.ok((await Deno.stat(wal)).size > 0, "the WAL has frames before the signal");

    // One waits before it answers, one streams its body over 1.5 s.
    const waiting = (await inGuest(pier, "/wait/1500")).response;
    const dripping = (await inGuest(pier, "/drip/1500")).response;
    const exit = pier.stop("SIGTERM");
    await pier.waitForLog(/shutting down/);
    // On a kept-alive connection (the reader's), and on a new one.
    assert.equal(await tryRequest(pier), "refused", "a request after the signal is refused");
    using client = Deno.createHttpClient({});
    assert.equal(await tryRequest(pier, client), "refused", "a new connection is refused");

    const waited = await waiting;
    assert.equal(waited.status, 200);
    assert.equal(await waited.text(), "waited 1500\n");
    const dripped = await dripping;
    assert.equal(dripped.status, 200);
    const body = await dripped.text();
    assert.equal(body.length, 3 * 64 * 1024 + "dripped 1500\n".length);
    assert.ok(body.endsWith("dripped 1500\n"));

    assert.equal(await exit, 0);
    assert.match(pier.log(), /shutdown complete/);
    assert.doesNotMatch(pier.log(), /are cut/);
    const walSize = await Deno.stat(wal).then((info) => info.size, () => 0);
    assert.equal(walSize, 0, "main.db-wal is empty or gone after the exit");
  }, { reader: [fixtures.data_reader, { db: "read" }] }));

Deno.test("a job run in progress at SIGTERM finishes and is recorded", () =>
  withSlowPier(10, async (pier) => {
    await pier.waitForLog(/job slow started/);
    assert.equal(await pier.stop("SIGTERM"), 0);
    const log = pier.log();
    const started = count(log, /job slow started/);
    assert.equal(count(log, /job slow done/), started, "every run that started ran to its end");
    const runs = storedRuns(pier.dataDir).filter((run) => run.outcome !== "skipped");
    assert.deepEqual(runs.map((run) => run.outcome), Array(started).fill("ok"));
    assert.ok(runs.at(-1)!.duration_ms! >= 1500);
  }));

Deno.test("a request longer than --grace is cut, and Pier exits 0 promptly", () =>
  withSlowPier(1, async (pier) => {
    const long = cutResponse((await inGuest(pier, "/wait/20000")).response);
    const signalled = performance.now();
    assert.equal(await pier.stop("SIGTERM"), 0);
    const tookMs = performance.now() - signalled;
    // 1 s of grace, then at most 1 s for the cut requests and the closing: 4 s of margin.
    assert.ok(tookMs < 5000, `Pier took ${tookMs.toFixed(0)} ms to exit with --grace 1`);
    assert.ok(
      ["503 slow: Pier is shutting down\n", "cut"].includes(await long),
      "the cut request gets 503 or loses its connection",
    );
    assert.match(pier.log(), /grace period over: stopping the workers/);
    assert.match(pier.log(), /shutdown complete/);
  }));

Deno.test("a second signal during the grace period stops at once", () =>
  withSlowPier(60, async (pier) => {
    const long = cutResponse((await inGuest(pier, "/wait/20000")).response);
    const exit = pier.stop("SIGTERM");
    await pier.waitForLog(/shutting down/);
    // Past the window in which a signal counts as the same one again (see runtime/shutdown.ts).
    await sleep(1000);
    assert.doesNotMatch(pier.log(), /shutdown complete/, "the grace period is still running");
    const signalled = performance.now();
    void pier.stop("SIGTERM");
    assert.equal(await exit, 0);
    const tookMs = performance.now() - signalled;
    assert.ok(tookMs < 5000, `Pier took ${tookMs.toFixed(0)} ms to exit after a second signal`);
    assert.ok(["503 slow: Pier is shutting down\n", "cut"].includes(await long));
    assert.match(pier.log(), /second signal: stopping the workers/);
  }));

Deno.test("one Ctrl-C, reaching the server directly and through the launcher, is one signal", () =>
  withSlowPier(10, async (pier) => {
    const waiting = (await inGuest(pier, "/wait/1500")).response;
    // A terminal's Ctrl-C signals the whole process group: the server gets SIGINT itself, and
    // again from the launcher.
    Deno.kill(pier.pid, "SIGINT");
    const exit = pier.stop("SIGINT");
    const waited = await waiting;
    assert.equal(waited.status, 200);
    assert.equal(await waited.text(), "waited 1500\n");
    assert.equal(await exit, 0);
    assert.doesNotMatch(pier.log(), /second signal/);
  }));

Deno.test("--grace: seconds, 10 by default, 0 allowed", () => {
  const grace = (...args: string[]) => (parseConfig(args, () => undefined) as Config).graceSeconds;
  assert.equal(grace(), 10);
  assert.equal(grace("--grace", "0"), 0);
  assert.equal(grace("--grace", "2.5"), 2.5);
  for (const bad of ["-1", "soon", "Infinity", ""]) {
    assert.throws(() => grace(`--grace=${bad}`), ConfigError);
  }
});
