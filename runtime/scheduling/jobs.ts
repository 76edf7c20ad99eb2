/**
 * Component jobs: the `job_handlers` of each loaded component's manifest,
 * scheduled on a {@link Scheduler} and run as the guest ABI says (a GET of
 * `http://__job/?name=<job>` into the component's `incoming-handler` with
 * `__context.kind = "Job"`), through the component's own host, so under its
 * permissions and time limit. Every run is recorded in the {@link JobStore};
 * the store's leases make one process of those sharing a data directory run
 * each tick, and keep runs of one job from overlapping in any of them.
 *
 * @module
 */
import type { ComponentHost } from "../isolation/component_host.ts";
import { GuestError } from "../isolation/component_host.ts";
import { log } from "../log.ts";
import { componentMetrics } from "../metrics.ts";
import type { ComponentRecord } from "../component.ts";
import type { ScheduledJob, Scheduler, Tick } from "./scheduler.ts";
import type { JobStore, RunRecord, Trigger } from "./store.ts";

/** How long past its time limit a run's lease is held, for the host to report the overrun. */
const LEASE_GRACE_MS = 5000;

/** How much of a failed run's response body is kept as its error. */
const MAX_ERROR_CHARS = 1000;

/** The part of a component that jobs need: the manifest's jobs and the host to run them. */
export type JobComponent =
  & Pick<ComponentRecord, "name" | "warnings">
  & { manifest?: Pick<NonNullable<ComponentRecord["manifest"]>, "jobHandlers"> }
  & { host?: Pick<ComponentHost, "fetch" | "timeoutMs"> };

/** A registered job: its component, name, spec and schedule. */
interface Job {
  component: JobComponent;
  name: string;
  spec: string;
  scheduled: ScheduledJob;
}

/** A job as the API shows it. */
export interface JobStatus {
  component: string;
  name: string;
  spec: string;
  next_run: string | null;
  /** Whether a run is going in any Pier process. */
  running: boolean;
  /** The latest run that was not skipped. */
  last_run: RunRecord | null;
}

/** A job of a manifest that was not registered, and why. */
export interface RefusedJob {
  component: string;
  name: string;
  spec: string;
  error: string;
}

/**
 * Reads a run's response to its end: the run lasts until the guest has
 * written its whole body. Keeps the start of the text, for an error. A
 * response may have no body at all (a 204, or a 200 whose guest wrote none).
 */
async function bodyStart(response: Response): Promise<string> {
  let text = "";
  if (!response.body) return text;
  for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
    if (text.length < MAX_ERROR_CHARS) text += chunk;
  }
  return text.trim().slice(0, MAX_ERROR_CHARS);
}

/** Job names as `Deno.cron` allows them: they appear in URLs and logs. */
const JOB_NAME = /^[A-Za-z0-9 _-]{1,64}$/;

interface Registration {
  jobs: Map<string, Job>;
  controller: AbortController;
}

/** What {@link ComponentJobs.runNow} found. */
export type ManualRun =
  | { kind: "done"; run: RunRecord }
  | { kind: "busy" }
  | { kind: "unknown" };

/** The jobs of the loaded components. */
export class ComponentJobs {
  #registrations = new Map<string, Registration>();
  #refused: RefusedJob[] = [];
  #manual = new Set<Promise<unknown>>();

  /**
   * @param runner names this process in the history and the leases.
   */
  constructor(
    readonly scheduler: Scheduler,
    readonly store: JobStore,
    readonly runner = `pid ${Deno.pid} ${crypto.randomUUID().slice(0, 8)}`,
  ) {}

  /**
   * Schedules the jobs of `component`'s manifest, replacing any jobs it had.
   * A job with a bad name or spec, or a name taken earlier in the manifest, is
   * refused: the reason goes to the log and to `component.warnings`.
   */
  register(component: JobComponent): void {
    this.unregister(component.name);
    const handlers = component.manifest?.jobHandlers ?? [];
    if (!component.host || handlers.length === 0) return;
    const registration: Registration = { jobs: new Map(), controller: new AbortController() };
    this.#registrations.set(component.name, registration);
    for (const { name, spec } of handlers) {
      let error: string | undefined;
      if (!JOB_NAME.test(name)) {
        error = `job name "${name}" must be 1-64 letters, digits, spaces, "-" or "_"`;
      } else if (registration.jobs.has(name)) {
        error = `job name "${name}" is declared twice`;
      } else {
        try {
          const job = { component, name, spec } as Job;
          job.scheduled = this.scheduler.schedule(
            `${component.name}/${name}`,
            spec,
            (tick) => this.#onTick(job, tick),
            {
              signal: registration.controller.signal,
              onSkip: (tick) => this.#onSkip(job, tick),
            },
          );
          registration.jobs.set(name, job);
        } catch (e) {
          error = (e as Error).message;
        }
      }
      if (error) {
        const message = `job "${name}" refused: ${error}`;
        component.warnings.push(message);
        this.#refused.push({ component: component.name, name, spec, error });
        log.error(`${component.name}: ${message}`);
      }
    }
    const names = [...registration.jobs.values()].map((j) => `${j.name} (${j.spec})`);
    if (names.length) log.info(`${component.name}: jobs: ${names.join(", ")}`);
  }

  /** Unschedules the jobs of a component (a run in progress finishes and is recorded). */
  unregister(component: string): void {
    this.#registrations.get(component)?.controller.abort();
    this.#registrations.delete(component);
    this.#refused = this.#refused.filter((r) => r.component !== component);
  }

  /** Every registered job with its next and last run. */
  list(): JobStatus[] {
    return [...this.#registrations.values()].flatMap((r) => [...r.jobs.values()])
      .map((job) => this.#status(job));
  }

  /** Jobs of the manifests that were refused. */
  refused(): RefusedJob[] {
    return [...this.#refused];
  }

  /** The status of job `name` of `component`, if it is registered. */
  get(component: string, name: string): JobStatus | undefined {
    const job = this.#registrations.get(component)?.jobs.get(name);
    return job && this.#status(job);
  }

  #status(job: Job): JobStatus {
    return {
      component: job.component.name,
      name: job.name,
      spec: job.spec,
      next_run: job.scheduled.nextRun()?.toISOString() ?? null,
      running: this.store.isRunning(job.component.name, job.name),
      last_run: this.store.lastRun(job.component.name, job.name) ?? null,
    };
  }

  /** Runs a job now, unless a run of it is going in any process. */
  async runNow(component: string, name: string): Promise<ManualRun> {
    const job = this.#registrations.get(component)?.jobs.get(name);
    if (!job) return { kind: "unknown" };
    const token = crypto.randomUUID();
    if (!(await this.store.acquireRun(component, name, this.runner, this.#hold(job, token)))) {
      return { kind: "busy" };
    }
    const run = this.#run(job, "manual", null, token);
    this.#manual.add(run);
    try {
      return { kind: "done", run: await run };
    } finally {
      this.#manual.delete(run);
    }
  }

  /** Unschedules every job; resolves when the runs in progress are recorded. */
  async close(): Promise<void> {
    for (const component of [...this.#registrations.keys()]) this.unregister(component);
    await this.scheduler.settled();
    await Promise.allSettled([...this.#manual]);
  }

  #hold(job: Job, token: string) {
    return { token, expires: Date.now() + job.component.host!.timeoutMs + LEASE_GRACE_MS };
  }

  async #onTick(job: Job, tick: Tick) {
    const token = crypto.randomUUID();
    const claim = await this.store.claimTick(
      job.component.name,
      job.name,
      tick.scheduled.getTime(),
      this.runner,
      this.#hold(job, token),
    );
    if (claim === "run") await this.#run(job, "schedule", tick.scheduled, token);
    else if (claim === "busy") await this.#recordSkip(job, tick);
  }

  /** The scheduler found this process's previous run still going: record the skip once. */
  async #onSkip(job: Job, tick: Tick) {
    const claim = await this.store.claimTick(
      job.component.name,
      job.name,
      tick.scheduled.getTime(),
      this.runner,
      null,
    );
    if (claim !== "lost") await this.#recordSkip(job, tick);
  }

  async #recordSkip(job: Job, tick: Tick) {
    componentMetrics(job.component.name).jobRun("skipped");
    await this.store.record({
      component: job.component.name,
      job: job.name,
      trigger: "schedule",
      scheduled_at: tick.scheduled.getTime(),
      started_at: Date.now(),
      duration_ms: null,
      outcome: "skipped",
      status: null,
      error: "the previous run was still going",
      runner: this.runner,
    });
  }

  /** Runs the job through its component, records the run and gives back the lease. */
  async #run(
    job: Job,
    trigger: Trigger,
    scheduled: Date | null,
    token: string,
  ): Promise<RunRecord> {
    const component = job.component;
    const startedAt = Date.now();
    const started = performance.now();
    let outcome: { ok: boolean; status: number | null; error: string | null };
    try {
      outcome = await this.#enter(job);
    } finally {
      await this.store.releaseRun(component.name, job.name, token);
    }
    const run = await this.store.record({
      component: component.name,
      job: job.name,
      trigger,
      scheduled_at: scheduled?.getTime() ?? null,
      started_at: startedAt,
      duration_ms: Math.round(performance.now() - started),
      outcome: outcome.ok ? "ok" : "failed",
      status: outcome.status,
      error: outcome.error,
      runner: this.runner,
    });
    componentMetrics(component.name).jobRun(run.outcome);
    if (!outcome.ok) log.warn(`${component.name}: job "${job.name}" failed: ${outcome.error}`);
    return run;
  }

  /** One request into the component; a trap, a non-2xx status or the time limit is a failure. */
  async #enter(job: Job): Promise<{ ok: boolean; status: number | null; error: string | null }> {
    try {
      const response = await job.component.host!.fetch({
        method: "GET",
        url: `http://__job/?name=${encodeURIComponent(job.name)}`,
        headers: [[
          "__context",
          JSON.stringify({ kind: "Job", registered_path: job.name, path_params: [], user: null }),
        ]],
        body: null,
      });
      const text = await bodyStart(response);
      if (response.ok) return { ok: true, status: response.status, error: null };
      return {
        ok: false,
        status: response.status,
        error: `status ${response.status}${text ? `: ${text}` : ""}`,
      };
    } catch (error) {
      if (!(error instanceof GuestError)) {
        log.error(`${job.component.name}: job "${job.name}": ${(error as Error)?.stack ?? error}`);
        return { ok: false, status: null, error: `internal error: ${(error as Error)?.message}` };
      }
      const detail = error.detail.split("\n")[0].slice(0, MAX_ERROR_CHARS);
      return {
        ok: false,
        status: error.status,
        error: error.status === 504
          ? `timed out: ${error.message}`
          : `${error.message}${detail ? `: ${detail}` : ""}`,
      };
    }
  }
}
