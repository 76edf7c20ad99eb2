/**
 * Job state in Pier's SQLite database, shared by every Pier process that uses
 * the same data directory:
 *
 * - `_pier_job_runs`: the history, newest {@link JobStore.historyLimit} runs per job.
 * - `_pier_job_leases`: one row per job with the last claimed tick and the run
 *   in progress. Each claim is one atomic upsert, so of several processes
 *   firing the same tick exactly one wins it, and no run starts while another
 *   (in any process) holds the row; a run's hold expires after its time limit
 *   plus a grace period, so a process that died mid-run does not block the job.
 *
 * Writes never wait inside SQLite: while another connection holds the write
 * lock (a component's transaction, another Pier process) they are retried
 * asynchronously, one at a time and in order, and the server thread serves on.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { execAtStartUp, retryBusy } from "../pier_db.ts";

/** How a run ended. */
export type Outcome = "ok" | "failed" | "skipped";

/** What started a run. */
export type Trigger = "schedule" | "manual";

/** One row of the history. */
export interface RunRecord {
  id: number;
  component: string;
  job: string;
  trigger: Trigger;
  /** The tick, epoch ms; null for a manual run. */
  scheduled_at: number | null;
  started_at: number;
  /** Null for a skipped tick. */
  duration_ms: number | null;
  outcome: Outcome;
  /** The guest's HTTP status, or the status Pier gave the failure (500 trap, 504 time limit). */
  status: number | null;
  error: string | null;
  /** Which Pier process ran it. */
  runner: string;
}

/** The outcome of claiming a tick. */
export type Claim =
  /** This process won the tick and now holds the run. */
  | "run"
  /** This process won the tick, but a run (from any process) is still going. */
  | "busy"
  /** Another process already claimed this tick. */
  | "lost";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS _pier_job_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  component TEXT NOT NULL,
  job TEXT NOT NULL,
  trigger TEXT NOT NULL,
  scheduled_at INTEGER,
  started_at INTEGER NOT NULL,
  duration_ms INTEGER,
  outcome TEXT NOT NULL,
  status INTEGER,
  error TEXT,
  runner TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS _pier_job_runs_by_job ON _pier_job_runs (component, job, id);
CREATE TABLE IF NOT EXISTS _pier_job_leases (
  component TEXT NOT NULL,
  job TEXT NOT NULL,
  tick INTEGER NOT NULL,
  tick_owner TEXT NOT NULL,
  run_token TEXT,
  run_expires INTEGER,
  PRIMARY KEY (component, job)
);
`;

/**
 * How long a write waits for the write lock before it fails: longer than a
 * component's transaction may hold it with the default time limit (30 s).
 */
const WRITE_TIMEOUT_MS = 60_000;

/** A run that holds no row, or whose hold has expired, leaves the row free. */
const FREE = "(run_token IS NULL OR run_expires <= :now)";

/** Reads and writes job history and leases. */
export class JobStore {
  #claimTick: StatementSync;
  #acquire: StatementSync;
  #release: StatementSync;
  #running: StatementSync;
  #insert: StatementSync;
  #prune: StatementSync;
  #history: StatementSync;
  #lastRun: StatementSync;
  /** Writes issued and not yet done, and the last of them (see {@link #write}). */
  #writing = 0;
  #lastWrite: Promise<unknown> = Promise.resolve();

  /**
   * Opens the tables in `db`, creating them if missing, at start-up: from then
   * on the connection never waits inside SQLite (see `execAtStartUp`).
   */
  constructor(db: DatabaseSync, readonly historyLimit = 100) {
    execAtStartUp(db, SCHEMA);
    // On a new tick: take the tick; take the run too unless one is going.
    this.#claimTick = db.prepare(`
      INSERT INTO _pier_job_leases (component, job, tick, tick_owner, run_token, run_expires)
      VALUES (:component, :job, :tick, :owner, :token, :expires)
      ON CONFLICT (component, job) DO UPDATE SET
        tick = excluded.tick,
        tick_owner = excluded.tick_owner,
        run_token = CASE WHEN ${FREE} THEN excluded.run_token ELSE run_token END,
        run_expires = CASE WHEN ${FREE} THEN excluded.run_expires ELSE run_expires END
      WHERE tick < excluded.tick
      RETURNING run_token`);
    this.#acquire = db.prepare(`
      INSERT INTO _pier_job_leases (component, job, tick, tick_owner, run_token, run_expires)
      VALUES (:component, :job, 0, :owner, :token, :expires)
      ON CONFLICT (component, job) DO UPDATE SET
        run_token = excluded.run_token, run_expires = excluded.run_expires
      WHERE ${FREE}
      RETURNING run_token`);
    this.#release = db.prepare(`
      UPDATE _pier_job_leases SET run_token = NULL, run_expires = NULL
      WHERE component = ? AND job = ? AND run_token = ?`);
    this.#running = db.prepare(`
      SELECT 1 FROM _pier_job_leases
      WHERE component = :component AND job = :job AND NOT ${FREE}`);
    this.#insert = db.prepare(`
      INSERT INTO _pier_job_runs
        (component, job, trigger, scheduled_at, started_at, duration_ms, outcome, status, error, runner)
      VALUES
        (:component, :job, :trigger, :scheduled_at, :started_at, :duration_ms, :outcome, :status, :error, :runner)
      RETURNING id`);
    this.#prune = db.prepare(`
      DELETE FROM _pier_job_runs WHERE component = :component AND job = :job AND id <= (
        SELECT id FROM _pier_job_runs WHERE component = :component AND job = :job
        ORDER BY id DESC LIMIT 1 OFFSET :keep)`);
    // By start: a run is stored when it ends, after the ticks it caused to be skipped.
    this.#history = db.prepare(`
      SELECT * FROM _pier_job_runs WHERE component = ? AND job = ?
      ORDER BY started_at DESC, id DESC LIMIT ?`);
    this.#lastRun = db.prepare(`
      SELECT * FROM _pier_job_runs WHERE component = ? AND job = ? AND outcome != 'skipped'
      ORDER BY started_at DESC, id DESC LIMIT 1`);
  }

  /**
   * Runs write `fn` once the writes issued before it are done, retrying it
   * while another connection holds the write lock. In order, so that a tick's
   * claim that waited is not overtaken by the claims of later ticks. With no
   * write pending it runs at once, before this returns. `fn` gets how long
   * the write waited, in ms.
   */
  #write<T>(fn: (waitedMs: number) => T): Promise<T> {
    const issued = Date.now();
    const deadline = issued + WRITE_TIMEOUT_MS;
    const run = () => retryBusy(() => fn(Date.now() - issued), deadline);
    const result = this.#writing === 0 ? run() : this.#lastWrite.then(run);
    this.#writing++;
    const done = () => {
      this.#writing--;
    };
    this.#lastWrite = result.then(done, done);
    return result;
  }

  /**
   * Claims tick `tick` (epoch ms) of a job for `owner`. With a `token`, the
   * run is taken too when free (until `expires`); without one (a tick this
   * process already knows it will skip) only the tick is taken. `now` and
   * `expires` are as of the call: a claim that waits for the database's
   * write lock moves both by its wait, so the hold still lasts its full time.
   */
  claimTick(
    component: string,
    job: string,
    tick: number,
    owner: string,
    hold: { token: string; expires: number } | null,
    now = Date.now(),
  ): Promise<Claim> {
    return this.#write((waited) => {
      const row = this.#claimTick.get({
        component,
        job,
        tick,
        owner,
        token: hold?.token ?? null,
        expires: hold ? hold.expires + waited : null,
        now: now + waited,
      });
      if (!row) return "lost";
      return hold && row.run_token === hold.token ? "run" : "busy";
    });
  }

  /**
   * Takes the run of a job outside any tick (a manual run); false when one is
   * going. `now` and `expires` as for {@link claimTick}.
   */
  acquireRun(
    component: string,
    job: string,
    owner: string,
    hold: { token: string; expires: number },
    now = Date.now(),
  ): Promise<boolean> {
    return this.#write((waited) =>
      this.#acquire.get({
        component,
        job,
        owner,
        token: hold.token,
        expires: hold.expires + waited,
        now: now + waited,
      }) !== undefined
    );
  }

  /** Gives back the run taken with `token`. */
  async releaseRun(component: string, job: string, token: string): Promise<void> {
    await this.#write(() => this.#release.run(component, job, token));
  }

  /** Whether a run of the job is going in any process. */
  isRunning(component: string, job: string, now = Date.now()): boolean {
    return this.#running.get({ component, job, now }) !== undefined;
  }

  /** Stores a run and drops the job's oldest stored runs beyond the history limit. */
  async record(run: Omit<RunRecord, "id">): Promise<RunRecord> {
    // Two writes: a retry of both after the first went through would store the run twice.
    const { id } = await this.#write(() => this.#insert.get({ ...run }) as { id: number });
    await this.#write(() =>
      this.#prune.run({ component: run.component, job: run.job, keep: this.historyLimit })
    );
    return { id, ...run };
  }

  /** The job's latest run that was not skipped. */
  lastRun(component: string, job: string): RunRecord | undefined {
    const row = this.#lastRun.get(component, job);
    return row && { ...row } as unknown as RunRecord;
  }

  /** The job's newest runs and skipped ticks, latest start first. */
  history(component: string, job: string, limit = this.historyLimit): RunRecord[] {
    // Plain objects: node:sqlite's rows have no prototype.
    return this.#history.all(component, job, limit).map((row) => ({
      ...row,
    })) as unknown as RunRecord[];
  }
}
