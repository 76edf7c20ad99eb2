/**
 * Scheduled component jobs over real Pier processes: a component with jobs on
 * second-level schedules, checked through the jobs API, the history in
 * main.db and the lines the job itself prints to Pier's log.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../runtime/pier_db.ts";
import type { JobStatus } from "../runtime/scheduling/jobs.ts";
import type { RunRecord } from "../runtime/scheduling/store.ts";
import { buildFixtures, type Pier, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["jobs"]);
const TOKEN = "jobs-test-admin-token";
const auth = { authorization: `Bearer ${TOKEN}` };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function json(response: Response) {
  assert.equal(response.headers.get("content-type"), "application/json");
  return await response.json();
}

/** The job's stored runs, newest first, through the API. */
async function runs(pier: Pier, job: string): Promise<RunRecord[]> {
  const response = await pier.fetch(`/_/jobs/jobs/${encodeURIComponent(job)}?limit=100`);
  assert.equal(response.status, 200);
  return (await response.json()).runs;
}

async function waitForRuns(
  pier: Pier,
  job: string,
  what: string,
  done: (runs: RunRecord[]) => boolean,
  timeoutMs = 15_000,
): Promise<RunRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await runs(pier, job);
    if (done(found)) return found;
    if (Date.now() > deadline) {
      throw new Error(`${job}: timed out waiting for ${what}; runs: ${JSON.stringify(found)}`);
    }
    await sleep(200);
  }
}

/** Every stored run of `job`, oldest first, read from main.db directly. */
function storedRuns(dataDir: string, job: string): RunRecord[] {
  const db = openDatabase(`${dataDir}/main.db`, { readOnly: true });
  try {
    return db.prepare(
      "SELECT * FROM _pier_job_runs WHERE component = 'jobs' AND job = ? ORDER BY started_at",
    ).all(job) as unknown as RunRecord[];
  } finally {
    db.close();
  }
}

/** Asserts that the runs (not the skipped ticks) never overlap in time. */
function assertNoOverlap(all: RunRecord[]) {
  const ran = all.filter((r) => r.outcome !== "skipped").sort((a, b) =>
    a.started_at - b.started_at
  );
  for (let i = 1; i < ran.length; i++) {
    const previousEnd = ran[i - 1].started_at + ran[i - 1].duration_ms!;
    // duration_ms is rounded: allow 1 ms.
    assert.ok(
      ran[i].started_at >= previousEnd - 1,
      `run ${ran[i].id} started at ${ran[i].started_at}, before ${
        ran[i - 1].id
      } ended at ${previousEnd}`,
    );
  }
}

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, "g"))?.length ?? 0;

/** Directories of our own: the harness deletes its temporary ones when a Pier stops. */
async function pierDirs() {
  const root = await scratchDir("pier-jobs-test-");
  return { root, componentsDir: `${root}/components`, dataDir: `${root}/data` };
}

Deno.test("component jobs", async (t) => {
  const { root, componentsDir, dataDir } = await pierDirs();
  let pier = await startPier({
    components: { jobs: fixtures.jobs },
    componentsDir,
    dataDir,
    env: { PIER_ADMIN_TOKEN: TOKEN },
  });
  try {
    await t.step("jobs are registered from the manifest; invalid ones are refused", async () => {
      const list = await json(await pier.fetch("/_/jobs"));
      assert.equal(list.timezone, "UTC");
      const jobs = Object.fromEntries(list.jobs.map((j: JobStatus) => [j.name, j]));
      assert.deepEqual(Object.keys(jobs).sort(), ["bad status", "fail", "manual", "slow", "tick"]);
      assert.equal(jobs.tick.spec, "*/1 * * * * *");
      assert.equal(jobs.tick.component, "jobs");
      assert.equal(jobs.manual.next_run, `${new Date().getUTCFullYear() + 1}-01-01T00:00:00.000Z`);
      assert.deepEqual(list.refused.map((r: { name: string }) => r.name), [
        "bad spec",
        "bad/name",
        "tick",
      ]);
      assert.match(list.refused[0].error, /second field "61": 61 is out of range 0-59/);
      assert.match(list.refused[1].error, /job name "bad\/name" must be/);
      assert.match(list.refused[2].error, /declared twice/);
      const health = await json(await pier.fetch("/_/health"));
      const component = health.components.find((c: { name: string }) => c.name === "jobs");
      assert.equal(component.state, "loaded");
      assert.equal(component.warnings.length, 3);
      assert.match(pier.log(), /job "bad spec" refused: invalid cron spec "61 \* \* \* \* \*"/);
      const ping = await pier.fetch("/jobs-fixture/ping");
      assert.equal(await ping.text(), "pong", "the component's routes still load");
    });

    await t.step("a job runs at every tick, entering the component", async () => {
      const ticks = await waitForRuns(pier, "tick", "3 runs", (r) => r.length >= 3);
      const ordered = ticks.slice(0, 3).reverse();
      for (const [i, run] of ordered.entries()) {
        assert.equal(run.outcome, "ok");
        assert.equal(run.status, 200);
        assert.equal(run.trigger, "schedule");
        assert.equal(run.scheduled_at! % 1000, 0, "a tick is a whole second");
        assert.ok(run.started_at >= run.scheduled_at!);
        if (i > 0) assert.equal(run.scheduled_at! - ordered[i - 1].scheduled_at!, 1000);
      }
      assert.ok(count(pier.log(), /\[jobs:out\] tick ran/) >= 3, "the job's own effect");
    });

    await t.step("runs of a slow job never overlap; ticks during a run are skipped", async () => {
      // The job sleeps 2.5 s on a one-second schedule.
      const slow = await waitForRuns(
        pier,
        "slow",
        "2 runs and 2 skips",
        (r) =>
          r.filter((x) => x.outcome === "ok").length >= 2 &&
          r.filter((x) => x.outcome === "skipped").length >= 2,
      );
      assertNoOverlap(slow);
      const skipped = slow.filter((r) => r.outcome === "skipped");
      assert.equal(skipped[0].error, "the previous run was still going");
      assert.equal(skipped[0].duration_ms, null);
      const ticks = slow.map((r) => r.scheduled_at);
      assert.equal(new Set(ticks).size, ticks.length, "each tick is recorded once");
      // Each skipped tick fell during a recorded run, or during the one still going.
      const ran = slow.filter((r) => r.outcome === "ok");
      const lastEnd = Math.max(...ran.map((r) => r.started_at + r.duration_ms!));
      for (const skip of skipped) {
        const at = skip.scheduled_at!;
        assert.ok(
          at > lastEnd || ran.some((r) => r.started_at <= at && at < r.started_at + r.duration_ms!),
          `skipped tick ${at} falls in no run: ${JSON.stringify(slow)}`,
        );
      }
    });

    await t.step("failures are recorded with their error and do not stop the job", async () => {
      const failed = await waitForRuns(pier, "fail", "2 failures", (r) => r.length >= 2);
      for (const run of failed) {
        assert.equal(run.outcome, "failed");
        assert.equal(run.status, 500);
        assert.match(run.error!, /^component failed: .*wasm trap/);
      }
      const bad = await waitForRuns(pier, "bad status", "a failure", (r) => r.length >= 1);
      assert.equal(bad[0].outcome, "failed");
      assert.equal(bad[0].status, 503);
      assert.equal(bad[0].error, "status 503: not today");
      const tick = await runs(pier, "tick");
      assert.ok(tick.every((r) => r.outcome === "ok"), "other jobs are unaffected");
    });

    await t.step("GET /_/jobs shows each job's next and last run", async () => {
      const list = await json(await pier.fetch("/_/jobs"));
      const jobs = Object.fromEntries(list.jobs.map((j: JobStatus) => [j.name, j]));
      assert.equal(jobs.tick.last_run.outcome, "ok");
      assert.equal(jobs.fail.last_run.outcome, "failed");
      assert.ok(Date.parse(jobs.tick.next_run) > jobs.tick.last_run.scheduled_at);
      assert.equal(jobs.manual.last_run, null);
      const one = await json(await pier.fetch("/_/jobs/jobs/tick?limit=2"));
      assert.equal(one.name, "tick");
      assert.equal(one.runs.length, 2);
      const missing = await pier.fetch("/_/jobs/jobs/nothing");
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
      const badLimit = await pier.fetch("/_/jobs/jobs/tick?limit=zero");
      assert.equal(badLimit.status, 400);
      await badLimit.body?.cancel();
    });

    await t.step("a manual run needs the admin token and returns its outcome", async () => {
      const path = "/_/jobs/jobs/manual/run";
      const anonymous = await pier.fetch(path, { method: "POST" });
      assert.equal(anonymous.status, 401);
      assert.match(anonymous.headers.get("www-authenticate")!, /^Bearer/);
      await anonymous.body?.cancel();
      const wrong = await pier.fetch(path, {
        method: "POST",
        headers: { authorization: "Bearer not-the-token" },
      });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      const get = await pier.fetch(path);
      assert.equal(get.status, 405);
      await get.body?.cancel();
      const unknown = await pier.fetch("/_/jobs/jobs/nothing/run", {
        method: "POST",
        headers: auth,
      });
      assert.equal(unknown.status, 404);
      await unknown.body?.cancel();

      const run = await json(await pier.fetch(path, { method: "POST", headers: auth }));
      assert.equal(run.outcome, "ok");
      assert.equal(run.trigger, "manual");
      assert.equal(run.scheduled_at, null);
      await pier.waitForLog(/\[jobs:out\] manual ran: /, 5000);
      const line = pier.log().match(/\[jobs:out\] manual ran: (.*)/)![1];
      assert.deepEqual(JSON.parse(line), {
        context: { kind: "Job", registered_path: "manual", path_params: [], user: null },
        method: "get",
        scheme: "HTTP",
        authority: "__job",
        pathWithQuery: "/?name=manual",
      });
      const manual = await runs(pier, "manual");
      assert.deepEqual(manual.map((r) => r.id), [run.id]);
      assert.equal((await json(await pier.fetch("/_/jobs/jobs/manual"))).last_run.id, run.id);
    });

    await t.step("a manual run of a job that is running is refused", async () => {
      // Two at once: the slow job runs 2.5 s, so at most one of them (or neither) gets in.
      const statuses = await Promise.all([1, 2].map(async () => {
        const response = await pier.fetch("/_/jobs/jobs/slow/run", {
          method: "POST",
          headers: auth,
        });
        await response.body?.cancel();
        return response.status;
      }));
      assert.ok(statuses.includes(409), `statuses ${statuses}`);
      assert.ok(statuses.every((s) => s === 200 || s === 409), `statuses ${statuses}`);
      assertNoOverlap(await runs(pier, "slow"));
    });

    await t.step(
      "history survives a restart; ticks missed while down are not replayed",
      async () => {
        const before = await runs(pier, "tick");
        await pier.stop();
        const stoppedAt = Date.now();
        await sleep(1500);
        const restartedAt = Date.now();
        // Restarted without PIER_ADMIN_TOKEN, in another time zone.
        pier = await startPier({ componentsDir, dataDir, args: ["--timezone", "Asia/Kolkata"] });
        const after = await waitForRuns(
          pier,
          "tick",
          "a run after the restart",
          (r) => r.length > 0 && r[0].scheduled_at! > stoppedAt,
        );
        assert.ok(before.every((old) => after.some((r) => r.id === old.id)), "old runs kept");
        const lastBefore = Math.max(...before.map((r) => r.scheduled_at!));
        const firstAfter = Math.min(
          ...after.filter((r) => r.scheduled_at! > lastBefore).map((r) => r.scheduled_at!),
        );
        // Ticks came due every second while Pier was down: none of them was run.
        assert.ok(firstAfter > restartedAt, "no tick of the downtime was run");
      },
    );

    await t.step("--timezone: specs are read in that zone", async () => {
      const list = await json(await pier.fetch("/_/jobs"));
      assert.equal(list.timezone, "Asia/Kolkata");
      const manual = list.jobs.find((j: JobStatus) => j.name === "manual");
      // @yearly: midnight of January 1st in Kolkata (UTC+05:30) is 18:30 UTC the day before.
      assert.match(manual.next_run, /^\d{4}-12-31T18:30:00\.000Z$/);
    });

    await t.step("without a configured token, write endpoints are refused", async () => {
      const response = await pier.fetch("/_/jobs/jobs/manual/run", {
        method: "POST",
        headers: auth,
      });
      assert.equal(response.status, 403);
      assert.match((await response.json()).error, /PIER_ADMIN_TOKEN/);
    });

    await t.step("a removed component's jobs are unregistered", async () => {
      await pier.stop();
      await Deno.remove(`${componentsDir}/jobs.wasm`);
      pier = await startPier({ componentsDir, dataDir });
      const startedAt = Date.now();
      const list = await json(await pier.fetch("/_/jobs"));
      assert.deepEqual(list.jobs, []);
      const gone = await pier.fetch("/_/jobs/jobs/tick");
      assert.equal(gone.status, 404);
      await gone.body?.cancel();
      await sleep(1500);
      const latest = Math.max(...storedRuns(dataDir, "tick").map((r) => r.started_at));
      assert.ok(latest < startedAt, "no run since the restart");
    });
  } finally {
    await pier.stop();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("two Pier processes sharing a data dir run each tick once", async () => {
  const { root, componentsDir, dataDir } = await pierDirs();
  const first = await startPier({ components: { jobs: fixtures.jobs }, componentsDir, dataDir });
  const second = await startPier({ componentsDir, dataDir });
  try {
    const bothUp = Date.now();
    await sleep(5000);
    await Promise.all([first.stop(), second.stop()]);
    const tick = storedRuns(dataDir, "tick");
    const ticks = tick.map((r) => r.scheduled_at!);
    assert.equal(new Set(ticks).size, ticks.length, "no tick ran twice");
    // And none was left out while both were up.
    const window = ticks.filter((s) => s > bothUp).sort((a, b) => a - b);
    assert.ok(window.length >= 4, `ticks while both were up: ${window.length}`);
    for (let i = 1; i < window.length; i++) assert.equal(window[i] - window[i - 1], 1000);
    // The job's own effect: one "tick ran" line per recorded run, across both logs (a run
    // the shutdown interrupted is recorded as failed, whether or not it printed).
    const lines = count(first.log() + second.log(), /\[jobs:out\] tick ran/);
    const ok = tick.filter((r) => r.outcome === "ok").length;
    assert.ok(ok <= lines && lines <= tick.length, `${lines} lines for ${tick.length} runs`);
    // The slow job's runs do not overlap across the processes, and each tick is recorded once.
    const slow = storedRuns(dataDir, "slow");
    assertNoOverlap(slow);
    const slowTicks = slow.map((r) => r.scheduled_at);
    assert.equal(new Set(slowTicks).size, slowTicks.length);
    assert.ok(slow.some((r) => r.outcome === "skipped"));
  } finally {
    await Promise.all([first.stop(), second.stop()]);
    await Deno.remove(root, { recursive: true });
  }
});
