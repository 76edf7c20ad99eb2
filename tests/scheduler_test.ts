/**
 * The scheduling modules on their own, without a Pier process: cron specs,
 * the scheduler's timing and non-overlap, the SQLite history and leases, and
 * component jobs over fake component hosts.
 */
import assert from "node:assert/strict";
import type { DatabaseSync } from "node:sqlite";
import { type Config, ConfigError, parseConfig } from "../runtime/config.ts";
import { openDatabase } from "../runtime/pier_db.ts";
import { GuestError } from "../runtime/isolation/component_host.ts";
import { CronSpecError, parseCron } from "../runtime/scheduling/cron.ts";
import { ComponentJobs, type JobComponent } from "../runtime/scheduling/jobs.ts";
import { Scheduler, type Tick } from "../runtime/scheduling/scheduler.ts";
import { JobStore } from "../runtime/scheduling/store.ts";
import { scratchDir } from "./scratch.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean, timeoutMs = 8000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The next `count` firing times of `spec` after `from`, as ISO strings. */
function nextRuns(spec: string, from: string, count = 3, timezone = "UTC"): string[] {
  const schedule = parseCron(spec, timezone);
  const runs: string[] = [];
  let after = new Date(from);
  for (let i = 0; i < count; i++) {
    const next = schedule.next(after);
    if (!next) break;
    runs.push(next.toISOString());
    after = next;
  }
  return runs;
}

// 2024-01-01 is a Monday.
const MONDAY = "2024-01-01T00:00:00.000Z";

Deno.test("cron specs", async (t) => {
  await t.step("six fields: seconds first", () => {
    assert.deepEqual(nextRuns("*/15 * * * * *", "2024-01-01T00:00:07Z"), [
      "2024-01-01T00:00:15.000Z",
      "2024-01-01T00:00:30.000Z",
      "2024-01-01T00:00:45.000Z",
    ]);
    assert.deepEqual(nextRuns("30 5 14 * * *", MONDAY, 2), [
      "2024-01-01T14:05:30.000Z",
      "2024-01-02T14:05:30.000Z",
    ]);
  });

  await t.step("seven fields: a year last", () => {
    assert.deepEqual(nextRuns("0 30 9 1 1 * 2030", MONDAY), ["2030-01-01T09:30:00.000Z"]);
    assert.deepEqual(nextRuns("0 0 0 29 2 * 2025-2030", MONDAY), ["2028-02-29T00:00:00.000Z"]);
  });

  await t.step("five fields: the Unix form, at second 0", () => {
    assert.deepEqual(nextRuns("*/20 * * * *", "2024-01-01T00:00:30Z"), [
      "2024-01-01T00:20:00.000Z",
      "2024-01-01T00:40:00.000Z",
      "2024-01-01T01:00:00.000Z",
    ]);
  });

  await t.step("shorthands", () => {
    assert.deepEqual(nextRuns("@yearly", MONDAY, 1), ["2025-01-01T00:00:00.000Z"]);
    assert.deepEqual(nextRuns("@monthly", MONDAY, 1), ["2024-02-01T00:00:00.000Z"]);
    assert.deepEqual(nextRuns("@weekly", MONDAY, 1), ["2024-01-07T00:00:00.000Z"]);
    assert.deepEqual(nextRuns("@daily", MONDAY, 1), ["2024-01-02T00:00:00.000Z"]);
    assert.deepEqual(nextRuns("@hourly", MONDAY, 1), ["2024-01-01T01:00:00.000Z"]);
    assert.deepEqual(nextRuns("@HOURLY", MONDAY, 1), ["2024-01-01T01:00:00.000Z"]);
  });

  await t.step("day-of-month and day-of-week: either one, as in Vixie cron", () => {
    // Fridays and the 13th.
    assert.deepEqual(nextRuns("0 0 0 13 * 5", MONDAY), [
      "2024-01-05T00:00:00.000Z",
      "2024-01-12T00:00:00.000Z",
      "2024-01-13T00:00:00.000Z",
    ]);
    // "+" asks for both: Friday the 13th.
    assert.deepEqual(nextRuns("0 0 0 13 * +5", MONDAY, 1), ["2024-09-13T00:00:00.000Z"]);
    // A wildcard in one of them does not widen the other.
    assert.deepEqual(nextRuns("0 0 0 1 * *", MONDAY, 2), [
      "2024-02-01T00:00:00.000Z",
      "2024-03-01T00:00:00.000Z",
    ]);
    assert.deepEqual(nextRuns("0 0 * * MON", MONDAY, 1), ["2024-01-08T00:00:00.000Z"]);
    // Sunday is 0 or 7.
    assert.deepEqual(nextRuns("0 0 * * 7", MONDAY, 1), nextRuns("0 0 * * 0", MONDAY, 1));
  });

  await t.step("a time zone moves the firing times", () => {
    // 09:00 in Berlin is 08:00 UTC in winter, 07:00 UTC in summer.
    assert.deepEqual(nextRuns("0 0 9 * * *", MONDAY, 1, "Europe/Berlin"), [
      "2024-01-01T08:00:00.000Z",
    ]);
    assert.deepEqual(nextRuns("0 0 9 * * *", "2024-07-01T00:00:00Z", 1, "Europe/Berlin"), [
      "2024-07-01T07:00:00.000Z",
    ]);
    assert.throws(
      () => parseCron("* * * * *", "Mars/Olympus"),
      /unknown time zone "Mars\/Olympus"/,
    );
  });

  await t.step("an invalid spec is rejected with what is wrong", () => {
    const cases: [string, RegExp][] = [
      ["", /has 0 field\(s\); a spec has 5 fields/],
      ["* * * *", /has 4 field\(s\)/],
      ["0 0 0 1 1 * 2030 9", /has 8 field\(s\)/],
      ["2030-01-01T00:00:00", /has 1 field\(s\)/],
      ["@every 5s", /unknown shorthand; use .*@hourly/],
      ["@reboot", /unknown shorthand/],
      ["61 * * * * *", /second field "61": 61 is out of range 0-59/],
      ["1-70 * * * *", /minute field "1-70": 70 is out of range 0-59/],
      ["0 0 24 * * *", /hour field "24": 24 is out of range 0-23/],
      ["0 0 0 32 * *", /day-of-month field "32": 32 is out of range 1-31/],
      ["0 0 0 0 * *", /day-of-month field "0": 0 is out of range 1-31/],
      ["* * * 13 *", /month field "13": 13 is out of range 1-12/],
      ["0 0 * * 8", /day-of-week field "8": 8 is out of range 0-7/],
      ["0 0 0 1 1 * 10000", /year field "10000": 10000 is out of range 1-9999/],
      ["*/0 * * * * *", /second field "\*\/0": .*stepping/],
      ["a * * * *", /minute field "a": .*illegal characters/],
      ["0 0 0 * FOO *", /month field "FOO"/],
    ];
    for (const [spec, message] of cases) {
      assert.throws(() => parseCron(spec), (error: Error) => {
        assert.ok(error instanceof CronSpecError, `${spec}: ${error}`);
        assert.match(error.message, message, `spec "${spec}"`);
        return true;
      });
    }
  });
});

Deno.test("scheduler", async (t) => {
  await t.step("runs a job at every tick until its signal is aborted", async () => {
    const scheduler = new Scheduler();
    const controller = new AbortController();
    const ticks: { scheduled: number; at: number }[] = [];
    const job = scheduler.schedule("every second", "* * * * * *", ({ scheduled }) => {
      ticks.push({ scheduled: scheduled.getTime(), at: Date.now() });
    }, { signal: controller.signal });
    assert.equal(job.spec, "* * * * * *");
    assert.ok(job.nextRun()!.getTime() > Date.now() - 1);
    await waitFor("three ticks", () => ticks.length >= 3);
    controller.abort();
    await job.finished;
    assert.equal(job.nextRun(), null);
    assert.equal(scheduler.get("every second"), undefined);
    for (const [i, { scheduled, at }] of ticks.entries()) {
      assert.equal(scheduled % 1000, 0, "a tick is a whole second");
      assert.ok(at >= scheduled, "never early");
      assert.ok(at - scheduled < 500, `on time (${at - scheduled} ms late)`);
      if (i > 0) assert.equal(scheduled - ticks[i - 1].scheduled, 1000, "no tick missed");
    }
    const count = ticks.length;
    await sleep(1200);
    assert.equal(ticks.length, count, "no run after the abort");
    await scheduler.close();
  });

  await t.step("rejects bad specs, spent specs and taken names", async () => {
    const scheduler = new Scheduler();
    const noop = () => {};
    assert.throws(() => scheduler.schedule("a", "* * * *", noop), CronSpecError);
    assert.throws(
      () => scheduler.schedule("a", "0 0 0 1 1 * 2020", noop),
      /"0 0 0 1 1 \* 2020" fires at no future time/,
    );
    assert.throws(() => scheduler.schedule("a", "0 0 0 31 2 *", noop), /fires at no future time/);
    assert.throws(() => scheduler.schedule("", "@daily", noop), TypeError);
    scheduler.schedule("a", "@daily", noop);
    assert.throws(() => scheduler.schedule("a", "@hourly", noop), /already scheduled/);
    await scheduler.close();
  });

  await t.step("an aborted signal registers nothing", async () => {
    const scheduler = new Scheduler();
    const job = scheduler.schedule("a", "* * * * * *", () => assert.fail("ran"), {
      signal: AbortSignal.abort(),
    });
    await job.finished;
    assert.equal(job.nextRun(), null);
    assert.equal(scheduler.get("a"), undefined);
    await sleep(1100);
    await scheduler.close();
  });

  await t.step("runs never overlap: a tick during a run is skipped", async () => {
    const scheduler = new Scheduler();
    let active = 0;
    let maxActive = 0;
    const runs: Tick[] = [];
    const skips: Tick[] = [];
    scheduler.schedule("slow", "* * * * * *", async (tick) => {
      runs.push(tick);
      maxActive = Math.max(maxActive, ++active);
      await sleep(2300);
      active--;
    }, { onSkip: (tick) => void skips.push(tick) });
    await waitFor("two runs", () => runs.length >= 2);
    await scheduler.close();
    assert.equal(active, 0, "close() waits for the run in progress");
    assert.equal(maxActive, 1);
    const first = runs[0].scheduled.getTime();
    const second = runs[1].scheduled.getTime();
    assert.equal(second - first, 3000, "the run takes 2.3 s: two ticks skipped");
    assert.deepEqual(
      skips.slice(0, 2).map((s) => s.scheduled.getTime()),
      [first + 1000, first + 2000],
    );
  });

  await t.step("a failing run does not stop later runs", async () => {
    const scheduler = new Scheduler();
    let calls = 0;
    scheduler.schedule("flaky", "* * * * * *", () => {
      calls++;
      throw new Error("flaky failed on purpose");
    });
    await waitFor("a second run", () => calls >= 2);
    await scheduler.close();
  });

  await t.step("specs are read in the scheduler's time zone", async () => {
    assert.throws(() => new Scheduler({ timezone: "Nowhere/Special" }), /unknown time zone/);
    const scheduler = new Scheduler({ timezone: "Asia/Kolkata" });
    const job = scheduler.schedule("morning", "0 0 9 * * *", () => {});
    // 09:00 in Kolkata (UTC+05:30) is 03:30 UTC.
    assert.equal(job.nextRun()!.toISOString().slice(11), "03:30:00.000Z");
    await scheduler.close();
  });
});

Deno.test("job store: leases and history", async (t) => {
  const dir = await scratchDir("pier-store-");
  const path = `${dir}/main.db`;
  // Two connections to one file, as two Pier processes have.
  const dbA = openDatabase(path);
  const dbB = openDatabase(path);
  const dbs = [dbA, dbB];
  const a = new JobStore(dbA, 3);
  const b = new JobStore(dbB, 3);
  const hold = (token: string, expires = Date.now() + 60_000) => ({ token, expires });
  try {
    await t.step("of two claimants of a tick one wins", async () => {
      assert.equal(await a.claimTick("c", "j", 1000, "A", hold("a1")), "run");
      assert.equal(await b.claimTick("c", "j", 1000, "B", hold("b1")), "lost");
      assert.ok(b.isRunning("c", "j"));
    });

    await t.step("a tick while a run holds the job is won but busy", async () => {
      assert.equal(await b.claimTick("c", "j", 2000, "B", hold("b2")), "busy");
      assert.equal(await a.claimTick("c", "j", 2000, "A", hold("a2")), "lost");
      assert.equal(await a.claimTick("c", "j", 3000, "A", null), "busy", "a skip-only claim");
      assert.equal(await a.acquireRun("c", "j", "A", hold("m1")), false, "no manual run meanwhile");
    });

    await t.step("after release the next tick runs; an old tick stays lost", async () => {
      await b.releaseRun("c", "j", "a1"); // the holder's token, from another connection
      assert.equal(a.isRunning("c", "j"), false);
      assert.equal(await a.claimTick("c", "j", 2000, "A", hold("late")), "lost");
      assert.equal(await b.claimTick("c", "j", 4000, "B", hold("b4")), "run");
    });

    await t.step("an expired hold frees the job", async () => {
      const now = Date.now();
      assert.equal(await a.claimTick("c", "j", 5000, "A", hold("a5"), now), "busy");
      assert.equal(await a.claimTick("c", "j", 6000, "A", hold("a6"), now + 120_000), "run");
      await a.releaseRun("c", "j", "a6");
    });

    await t.step("a manual run takes a free job, even one never ticked", async () => {
      assert.equal(await a.acquireRun("c", "new", "A", hold("m2")), true);
      assert.equal(await b.acquireRun("c", "new", "B", hold("m3")), false);
      assert.equal(await b.claimTick("c", "new", 1000, "B", hold("t1")), "busy");
      await a.releaseRun("c", "new", "m2");
      assert.equal(await b.acquireRun("c", "new", "B", hold("m3")), true);
    });

    await t.step("history is bounded per job, newest first, and survives reopening", async () => {
      const run = (job: string, i: number, outcome: "ok" | "skipped" = "ok") =>
        a.record({
          component: "c",
          job,
          trigger: "schedule",
          scheduled_at: i * 1000,
          started_at: i * 1000 + 5,
          duration_ms: outcome === "ok" ? 3 : null,
          outcome,
          status: outcome === "ok" ? 200 : null,
          error: null,
          runner: "A",
        });
      for (let i = 1; i <= 5; i++) await run("bounded", i);
      await run("other", 1);
      await run("bounded", 6, "skipped");
      dbA.close();
      const dbC = openDatabase(path);
      dbs.push(dbC);
      const reopened = new JobStore(dbC, 3);
      const kept = reopened.history("c", "bounded");
      assert.deepEqual(kept.map((r) => r.scheduled_at), [6000, 5000, 4000]);
      assert.equal(reopened.history("c", "other").length, 1, "other jobs keep theirs");
      assert.equal(reopened.lastRun("c", "bounded")!.scheduled_at, 5000, "last run: not a skip");
    });
  } finally {
    for (const db of dbs) {
      try {
        db.close();
      } catch {
        // already closed
      }
    }
    await Deno.remove(dir, { recursive: true });
  }
});

/** A component whose host answers every job request with `answer`. */
function fakeComponent(
  name: string,
  jobs: { name: string; spec: string }[],
  answer: (request: { url: string; headers: [string, string][] }) => Promise<Response>,
): JobComponent & { requests: { url: string; headers: [string, string][] }[] } {
  const requests: { url: string; headers: [string, string][] }[] = [];
  return {
    name,
    warnings: [],
    requests,
    manifest: { jobHandlers: jobs },
    host: {
      timeoutMs: 1000,
      fetch: (request) => {
        requests.push(request);
        return answer(request);
      },
    },
  };
}

Deno.test("component jobs over fake hosts", async (t) => {
  const dir = await scratchDir("pier-jobs-");
  const dbs: DatabaseSync[] = [];
  const open = () => {
    const db = openDatabase(`${dir}/main.db`);
    dbs.push(db);
    return new JobStore(db);
  };
  const ok = () => Promise.resolve(new Response("done"));
  try {
    await t.step("registers valid jobs, refuses the others with reasons", async () => {
      const jobs = new ComponentJobs(new Scheduler(), open(), "test");
      const component = fakeComponent("comp", [
        { name: "nightly report", spec: "@daily" },
        { name: "bad spec", spec: "* * 32 * *" },
        { name: "bad/name", spec: "@daily" },
        { name: "", spec: "@daily" },
        { name: "nightly report", spec: "@hourly" },
      ], ok);
      jobs.register(component);
      assert.deepEqual(jobs.list().map((j) => [j.name, j.spec]), [["nightly report", "@daily"]]);
      assert.deepEqual(jobs.refused().map((r) => r.name), [
        "bad spec",
        "bad/name",
        "",
        "nightly report",
      ]);
      assert.match(component.warnings[0], /job "bad spec" refused: .*day-of-month field "32"/);
      assert.match(component.warnings[1], /job name "bad\/name" must be/);
      assert.match(component.warnings[3], /declared twice/);
      const status = jobs.get("comp", "nightly report")!;
      assert.equal(status.next_run!.slice(11), "00:00:00.000Z");
      assert.equal(status.last_run, null);
      await jobs.close();
    });

    await t.step("a run enters the component as the guest ABI says and is recorded", async () => {
      const jobs = new ComponentJobs(new Scheduler(), open(), "test");
      const component = fakeComponent("comp", [{ name: "a b", spec: "@yearly" }], ok);
      jobs.register(component);
      const result = await jobs.runNow("comp", "a b");
      assert.equal(result.kind, "done");
      const run = result.kind === "done" ? result.run : assert.fail();
      assert.equal(run.outcome, "ok");
      assert.equal(run.trigger, "manual");
      assert.equal(run.scheduled_at, null);
      assert.equal(run.status, 200);
      const [request] = component.requests;
      assert.equal(request.url, "http://__job/?name=a%20b");
      assert.deepEqual(request.headers, [[
        "__context",
        '{"kind":"Job","registered_path":"a b","path_params":[],"user":null}',
      ]]);
      assert.deepEqual(jobs.get("comp", "a b")!.last_run, run);
      assert.deepEqual(await jobs.runNow("comp", "missing"), { kind: "unknown" });
      await jobs.close();
    });

    await t.step("traps, non-2xx answers and the time limit are failures", async () => {
      const jobs = new ComponentJobs(new Scheduler(), open(), "test");
      const answers: Record<string, () => Promise<Response>> = {
        trap: () =>
          Promise.reject(
            new GuestError("component failed", 500, "RuntimeError: unreachable\n  at"),
          ),
        status: () => Promise.resolve(new Response("  not today \n", { status: 503 })),
        timeout: () => Promise.reject(new GuestError("a request ran past the 1000 ms limit", 504)),
      };
      jobs.register(fakeComponent(
        "comp",
        Object.keys(answers).map((name) => ({ name, spec: "@yearly" })),
        (request) => answers[new URL(request.url).searchParams.get("name")!](),
      ));
      const error = async (name: string) => {
        const result = await jobs.runNow("comp", name);
        assert.equal(result.kind, "done");
        const run = result.kind === "done" ? result.run : assert.fail();
        assert.equal(run.outcome, "failed");
        return [run.status, run.error];
      };
      assert.deepEqual(await error("trap"), [500, "component failed: RuntimeError: unreachable"]);
      assert.deepEqual(await error("status"), [503, "status 503: not today"]);
      assert.deepEqual(await error("timeout"), [
        504,
        "timed out: a request ran past the 1000 ms limit",
      ]);
      await jobs.close();
    });

    await t.step("a manual run is refused while a run is going", async () => {
      const jobs = new ComponentJobs(new Scheduler(), open(), "test");
      const release = Promise.withResolvers<void>();
      jobs.register(fakeComponent("comp", [{ name: "held", spec: "@yearly" }], async () => {
        await release.promise;
        return new Response("done");
      }));
      const first = jobs.runNow("comp", "held");
      assert.equal(jobs.get("comp", "held")!.running, true);
      assert.deepEqual(await jobs.runNow("comp", "held"), { kind: "busy" });
      release.resolve();
      assert.equal((await first).kind, "done");
      assert.equal(jobs.get("comp", "held")!.running, false);
      await jobs.close();
    });

    await t.step("unregistering a component stops its jobs", async () => {
      const jobs = new ComponentJobs(new Scheduler(), open(), "test");
      const component = fakeComponent("gone", [{ name: "tick", spec: "* * * * * *" }], ok);
      jobs.register(component);
      await waitFor("a run", () => component.requests.length >= 1);
      jobs.unregister("gone");
      assert.equal(jobs.get("gone", "tick"), undefined);
      assert.deepEqual(jobs.list(), []);
      const count = component.requests.length;
      await sleep(1300);
      assert.equal(component.requests.length, count);
      await jobs.close();
    });

    await t.step("two schedulers sharing the database run each tick once", async () => {
      const component = fakeComponent("shared", [{ name: "tick", spec: "* * * * * *" }], ok);
      const a = new ComponentJobs(new Scheduler(), open(), "A");
      const b = new ComponentJobs(new Scheduler(), open(), "B");
      a.register(component);
      b.register(component);
      await waitFor("four runs", () => component.requests.length >= 4);
      await Promise.all([a.close(), b.close()]);
      const runs = a.store.history("shared", "tick");
      assert.equal(runs.length, component.requests.length, "one run per request");
      const ticks = runs.map((r) => r.scheduled_at!);
      assert.equal(new Set(ticks).size, ticks.length, "no tick twice");
      assert.ok(runs.every((r) => r.outcome === "ok"));
    });
  } finally {
    for (const db of dbs) db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--timezone flag", () => {
  assert.equal((parseConfig([], () => undefined) as Config).timezone, "UTC");
  const config = parseConfig(["--timezone", "America/New_York"], () => undefined) as Config;
  assert.equal(config.timezone, "America/New_York");
  assert.throws(
    () => parseConfig(["--timezone", "Moon/Base"], () => undefined),
    (error: Error) =>
      error instanceof ConfigError &&
      /^--timezone: unknown time zone "Moon\/Base"/.test(error.message),
  );
});
