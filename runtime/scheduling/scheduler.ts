/**
 * An in-process scheduler with a `Deno.cron`-like API:
 * `schedule(name, spec, handler, { signal })`, unregistered by aborting the
 * signal. Runs of one job never overlap: a tick that finds the previous run
 * still going is skipped (and reported through `onSkip`). A handler that
 * throws is logged and runs again at its next tick. Ticks missed while the
 * process was stalled or down are not replayed: after a run the next tick is
 * the first one after the current time.
 *
 * @module
 */
import { log } from "../log.ts";
import { checkTimezone, type CronSchedule, CronSpecError, parseCron } from "./cron.ts";

/** What a handler is told about the tick it runs for. */
export interface Tick {
  /** The job's name. */
  name: string;
  /** The time the tick was due (a whole second of the spec), not when it started. */
  scheduled: Date;
}

/** Runs one tick of a job. */
export type TickHandler = (tick: Tick) => void | Promise<void>;

/** Options of {@link Scheduler.schedule}. */
export interface ScheduleOptions {
  /** Aborting it unregisters the job (a run in progress finishes). */
  signal?: AbortSignal;
  /** Called instead of the handler for a tick that found the previous run still going. */
  onSkip?: TickHandler;
}

/** A registered job, as returned by {@link Scheduler.schedule}. */
export interface ScheduledJob {
  readonly name: string;
  readonly spec: string;
  /** When the next tick is due; null when the spec fires no more or the job is unregistered. */
  nextRun(): Date | null;
  /** Resolves when the job is unregistered. */
  readonly finished: Promise<void>;
}

/** setTimeout's longest delay; a later tick is reached in several sleeps. */
const MAX_DELAY_MS = 2 ** 31 - 1;

interface Entry {
  name: string;
  schedule: CronSchedule;
  handler: TickHandler;
  onSkip?: TickHandler;
  next: Date | null;
  timer?: ReturnType<typeof setTimeout>;
  running: boolean;
  unregister: () => void;
  finished: PromiseWithResolvers<void>;
}

function view(entry: Entry): ScheduledJob {
  return {
    name: entry.name,
    spec: entry.schedule.spec,
    nextRun: () => entry.next,
    finished: entry.finished.promise,
  };
}

/** Options of a {@link Scheduler}. */
export interface SchedulerOptions {
  /** IANA time zone the specs are read in; default UTC. */
  timezone?: string;
}

/** Fires registered jobs at the times of their cron specs. */
export class Scheduler {
  readonly timezone: string;
  #jobs = new Map<string, Entry>();
  /** Runs and skip callbacks in progress, including those of unregistered jobs. */
  #inFlight = new Set<Promise<void>>();

  constructor(options: SchedulerOptions = {}) {
    this.timezone = options.timezone ?? "UTC";
    checkTimezone(this.timezone);
  }

  /**
   * Registers `handler` to run at every tick of `spec`. Throws
   * {@link CronSpecError} for an invalid spec or one that never fires again,
   * and a TypeError for an empty or taken name.
   */
  schedule(
    name: string,
    spec: string,
    handler: TickHandler,
    options: ScheduleOptions = {},
  ): ScheduledJob {
    if (name === "") throw new TypeError("a job needs a name");
    if (this.#jobs.has(name)) throw new TypeError(`a job named "${name}" is already scheduled`);
    const schedule = parseCron(spec, this.timezone);
    const next = schedule.next(new Date());
    if (!next) throw new CronSpecError(`cron spec "${spec}" fires at no future time`);
    const { signal, onSkip } = options;
    const entry: Entry = {
      name,
      schedule,
      handler,
      onSkip,
      next,
      running: false,
      unregister: () => {
        if (this.#jobs.get(name) !== entry) return;
        this.#jobs.delete(name);
        clearTimeout(entry.timer);
        entry.next = null;
        signal?.removeEventListener("abort", entry.unregister);
        entry.finished.resolve();
      },
      finished: Promise.withResolvers<void>(),
    };
    const job = view(entry);
    if (signal?.aborted) {
      entry.next = null;
      entry.finished.resolve();
      return job;
    }
    signal?.addEventListener("abort", entry.unregister);
    this.#jobs.set(name, entry);
    this.#arm(entry);
    return job;
  }

  /** The registered job called `name`. */
  get(name: string): ScheduledJob | undefined {
    const entry = this.#jobs.get(name);
    return entry && view(entry);
  }

  /** Unregisters every job; resolves when the runs in progress have finished. */
  async close(): Promise<void> {
    for (const entry of [...this.#jobs.values()]) entry.unregister();
    await this.settled();
  }

  /** Resolves when no run or skip callback is in progress. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #arm(entry: Entry) {
    if (!entry.next) return;
    const delay = Math.min(Math.max(entry.next.getTime() - Date.now(), 0), MAX_DELAY_MS);
    entry.timer = setTimeout(() => this.#wake(entry), delay);
  }

  #wake(entry: Entry) {
    const due = entry.next;
    if (!due || this.#jobs.get(entry.name) !== entry) return;
    // A capped or early timer: sleep again until the tick is due.
    if (Date.now() < due.getTime()) return this.#arm(entry);
    // The next tick after now, not after `due`: ticks missed during a stall are dropped.
    entry.next = entry.schedule.next(new Date());
    this.#arm(entry);
    const tick = { name: entry.name, scheduled: due };
    if (entry.running) {
      if (entry.onSkip) this.#track(entry.name, "skip callback", entry.onSkip, tick);
      else log.warn(`job ${entry.name}: tick ${due.toISOString()} skipped, previous run going`);
      return;
    }
    entry.running = true;
    this.#track(entry.name, "run", entry.handler, tick).finally(() => entry.running = false);
  }

  /** Calls `fn` for `tick`; a throw is logged, never propagated. */
  #track(name: string, what: string, fn: TickHandler, tick: Tick): Promise<void> {
    const promise = (async () => {
      try {
        await fn(tick);
      } catch (error) {
        log.error(`job ${name}: ${what} failed: ${(error as Error)?.stack ?? error}`);
      }
    })();
    this.#inFlight.add(promise);
    promise.finally(() => this.#inFlight.delete(promise));
    return promise;
  }
}
