/**
 * The database capability: SQL from components against `<data>/main.db`.
 *
 * Component SQL runs in database processes of its own (`process.ts`),
 * never on the server thread, so that a statement that runs past its
 * request's time limit can be stopped (its process is killed and started
 * again) while the server and every other component go on.
 *
 * All component writes run on one writer process, serialized by an async
 * lock that a transaction holds from its first statement to commit or
 * rollback; so transactions of concurrent requests are isolated, and waiting
 * for the lock never blocks the server thread. A component with a `read`
 * grant uses one of a few read-only processes, started as load needs them
 * and stopped once idle (one stays); each has its own lock, so read
 * transactions of concurrent requests run side by side (WAL keeps each on its
 * snapshot). A standalone read takes no lock: it queues on a read process no
 * transaction holds, behind the reads sent before it, so that concurrent
 * reads travel together (one wake-up of each process for many). What a
 * component may not do is refused by an authorizer in the database process
 * (`child.ts`).
 *
 * @module
 */
import type { SQLInputValue, SQLOutputValue } from "node:sqlite";
import { retryBusy } from "../../pier_db.ts";
import { log } from "../../log.ts";
import { DbProcess, type Deadline } from "./process.ts";
import {
  decodeValue,
  encodeValue,
  type FunctionSpec,
  type WireRows,
  type WireValue,
} from "./wire.ts";

/** How long a statement waits for the write lock before failing. */
const LOCK_TIMEOUT_MS = 5000;

/** A refused or failed statement; the message goes to the guest. */
export class DatabaseError extends Error {}

/** A call the component's `"db"` grant does not allow. */
export class GrantError extends DatabaseError {}

/** A FIFO async lock with a wait limit. */
class Lock {
  /** `what`: what the lock guards, for the timeout's message. */
  constructor(readonly what: string) {}

  #held = false;
  #waiters: (() => void)[] = [];
  /** Since when nobody holds or waits for the lock (`performance.now()` time). */
  idleSince = performance.now();

  /** Holder and waiters: how long a new taker would queue. */
  get queued(): number {
    return (this.#held ? 1 : 0) + this.#waiters.length;
  }

  async acquire(timeoutMs: number, what: string): Promise<() => void> {
    if (this.#held) {
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== wake);
          reject(
            new DatabaseError(
              `${what}: waited ${timeoutMs} ms for ${this.what} held by another transaction`,
            ),
          );
        }, timeoutMs);
        this.#waiters.push(wake);
      });
    }
    this.#held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) return next();
      this.#held = false;
      this.idleSince = performance.now();
    };
  }
}

/** Rows as lists of values, integers as bigints. */
export type Rows = SQLOutputValue[][];

/** What a statement run in `mode` returns: its rows (`query`), or how many rows it changed. */
export type RunResult<M extends "query" | "execute"> = M extends "query" ? Rows : bigint;

/** A database process and its lock. */
interface Connection {
  process: DbProcess;
  lock: Lock;
}

/** An open transaction. */
interface Transaction {
  connection: Connection;
  release: () => void;
  owner: string;
  /** True once its first statement was sent (BEGIN goes with it). */
  begun: boolean;
  /** Why it is gone, when its process was killed. */
  stopped?: string;
}

/** Which statements a grant allows. */
export type DatabaseGrant = "none" | "read" | "write";

/** Read-only processes at most, for read transactions side by side. */
const READERS = 4;

/**
 * A standalone read queues behind the statement a read process runs while
 * that one has run less than this (ms); a slower one sends it elsewhere.
 */
const PIPELINE_MS = 2;

/** Standalone reads queued on one read process at most. */
const PIPELINE_DEPTH = 32;

/** A SQL function of a component, callable from any component's SQL. */
export type SqlFunction = (args: SQLOutputValue[]) => Promise<SQLInputValue>;

/** The component databases of one server process. */
export class DatabaseHost {
  #writer: Connection;
  #readers: Connection[] = [];
  #transactions = new Map<string, Transaction>();
  #functions = new Map<string, { spec: FunctionSpec; call: SqlFunction }>();
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param readerIdleMs how long a read process may idle before it stops (the
   *   first idle one stays), as a component's extra workers do.
   */
  constructor(readonly path: string, readonly readerIdleMs: number) {
    this.#writer = this.#open("write", "the database write lock");
  }

  #open(grant: "read" | "write", lockName: string): Connection {
    const process = new DbProcess(this.path, grant, {
      functions: () => [...this.#functions.values()].map(({ spec }) => spec),
      call: (name, args) => this.#call(name, args),
      stopped: (process, reason) => this.#stopped(process, reason),
    });
    return { process, lock: new Lock(lockName) };
  }

  /** Registers SQL function `spec` on every database process, now and to come. */
  addFunction(spec: FunctionSpec, call: SqlFunction): void {
    this.#functions.set(spec.name.toLowerCase(), { spec, call });
    for (const { process } of [this.#writer, ...this.#readers]) {
      if (process.running) process.request({ op: "functions", functions: [spec] }).catch(() => {});
    }
  }

  /**
   * Forgets SQL function `name`: the database processes keep it declared
   * (SQLite cannot drop one), but a call of it fails from now on.
   */
  removeFunction(name: string): void {
    this.#functions.delete(name.toLowerCase());
  }

  async #call(name: string, args: WireValue[]): Promise<WireValue> {
    const fn = this.#functions.get(name.toLowerCase());
    if (!fn) throw new Error(`no such function: ${name}`);
    return encodeValue(await fn.call(args.map(decodeValue)));
  }

  /** A killed process's transactions are gone: their holders learn why at their next call. */
  #stopped(process: DbProcess, reason: string) {
    log.warn(`database ${process.grant} process stopped (a new one starts when needed): ${reason}`);
    for (const tx of this.#transactions.values()) {
      if (tx.connection.process !== process) continue;
      tx.stopped = reason;
      tx.release();
    }
  }

  #connection(grant: DatabaseGrant): Connection {
    if (grant === "none") {
      throw new GrantError(
        'database access is not granted (set "db" in the permission manifest)',
      );
    }
    if (grant === "write") return this.#writer;
    const free = this.#readers.find((each) => each.lock.queued === 0 && !each.process.busy) ??
      this.#readers.find((each) => each.lock.queued === 0);
    if (free) return free;
    // Each reader is a process of its own (~40 MB): a new one only when every one is busy.
    if (this.#readers.length < READERS) return this.#newReader();
    return this.#readers.reduce((best, each) => each.lock.queued < best.lock.queued ? each : best);
  }

  #newReader(): Connection {
    const reader = this.#open("read", "a database read connection");
    this.#readers.push(reader);
    if (this.#readers.length > 1) this.#watchIdle();
    return reader;
  }

  /**
   * The read process a standalone read is sent to without waiting for it to
   * answer the reads before (they go out together and come back together:
   * one wake-up of each side for many): the first one no transaction holds
   * that is idle, or whose running statement started less than
   * {@link PIPELINE_MS} ago; else a new one; else the least queued one no
   * transaction holds. Undefined: transactions hold every one.
   */
  #pipelineReader(): Connection | undefined {
    let least: Connection | undefined;
    for (const each of this.#readers) {
      if (each.lock.queued !== 0) continue;
      const { process } = each;
      if (!process.busy || (process.sinceMs < PIPELINE_MS && process.queued < PIPELINE_DEPTH)) {
        return each;
      }
      if (!least || process.queued < least.process.queued) least = each;
    }
    return this.#readers.length < READERS ? this.#newReader() : least;
  }

  /** Stops the read processes that idled {@link readerIdleMs}, keeping one idle one. */
  #watchIdle() {
    if (this.#idleTimer !== undefined) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      const now = performance.now();
      const idle = this.#readers.filter((each) => each.lock.queued === 0 && !each.process.busy);
      for (const reader of idle.slice(1)) {
        if (now - reader.lock.idleSince < this.readerIdleMs) continue;
        if (reader.process.sinceMs < this.readerIdleMs) continue;
        void reader.process.close();
        this.#readers = this.#readers.filter((each) => each !== reader);
        log.info(`database: idle: now ${this.#readers.length} read processes`);
      }
      if (this.#readers.length > 1) this.#watchIdle();
    }, this.readerIdleMs / 2);
  }

  /**
   * Begins transaction `id`, waiting (asynchronously) for its connection's
   * lock; SQLite's BEGIN goes with its first statement.
   */
  async begin(id: string, owner: string, grant: DatabaseGrant): Promise<void> {
    if (this.#transactions.has(id)) throw new DatabaseError("transaction already begun");
    const connection = this.#connection(grant);
    const release = await connection.lock.acquire(LOCK_TIMEOUT_MS, "begin transaction");
    this.#transactions.set(id, { connection, release, owner, begun: false });
  }

  /** Ends transaction `id` with COMMIT or ROLLBACK. */
  async end(id: string, how: "COMMIT" | "ROLLBACK"): Promise<void> {
    const tx = this.#transactions.get(id);
    if (!tx) throw new DatabaseError("no transaction is open");
    this.#transactions.delete(id);
    try {
      if (tx.stopped) {
        if (how === "COMMIT") throw new Error(tx.stopped);
        return;
      }
      if (!tx.begun) return;
      // A read transaction changed nothing: its end need not be waited for, nor sent alone.
      if (tx.connection !== this.#writer) return tx.connection.process.endLater();
      await tx.connection.process.request({ op: how === "COMMIT" ? "commit" : "rollback" });
    } catch (error) {
      throw new DatabaseError((error as Error).message);
    } finally {
      tx.release();
    }
  }

  /**
   * Rolls back every transaction `owner` left open (its request ended, or its
   * worker died); one whose statement still runs goes with its process.
   */
  abandon(owner: string): number {
    let count = 0;
    for (const [id, tx] of this.#transactions) {
      if (tx.owner !== owner && !tx.owner.startsWith(`${owner}/`)) continue;
      this.#transactions.delete(id);
      const { process } = tx.connection;
      if (tx.stopped || !tx.begun) {
        // nothing to roll back
      } else if (process.busy) {
        process.kill(`the request of ${owner} ended while its statement ran`);
      } else process.request({ op: "rollback" }).catch(() => {});
      // Queued behind the rollback, the next holder starts from a clean connection.
      tx.release();
      count++;
    }
    return count;
  }

  /**
   * Runs one statement: inside transaction `txId` when given, else on its own
   * (waiting for the connection's lock like a transaction would). It is
   * stopped at `deadline`.
   */
  async run<M extends "query" | "execute">(
    grant: DatabaseGrant,
    txId: string | undefined,
    sql: string,
    params: SQLInputValue[],
    mode: M,
    deadline: Deadline,
  ): Promise<RunResult<M>> {
    const request = {
      op: "run" as const,
      sql,
      params: params.map(encodeValue),
      mode,
      begin: false,
      inTransaction: txId !== undefined,
    };
    const decode = (value: unknown) =>
      (mode === "execute"
        ? decodeValue(value as WireValue) as bigint
        : (value as WireRows).map((row) => row.map(decodeValue))) as RunResult<M>;
    if (txId !== undefined) {
      const tx = this.#transactions.get(txId);
      if (!tx) throw new DatabaseError("no transaction is open");
      if (tx.stopped) throw new DatabaseError(tx.stopped);
      const begin = !tx.begun;
      const send = () => tx.connection.process.request({ ...request, begin }, deadline);
      tx.begun = true;
      try {
        // A BEGIN IMMEDIATE finds the write lock held by another Pier process: try again.
        return decode(await (begin ? retryBusy(send, Date.now() + LOCK_TIMEOUT_MS) : send()));
      } catch (error) {
        // A failed first statement took its BEGIN back.
        if (begin) tx.begun = false;
        throw new DatabaseError((error as Error).message);
      }
    }
    // A standalone read needs no lock: a read process runs whatever it is sent in order.
    const reader = grant === "read" ? this.#pipelineReader() : undefined;
    const connection = reader ?? this.#connection(grant);
    const release = reader ? () => {} : await connection.lock.acquire(LOCK_TIMEOUT_MS, "statement");
    try {
      return decode(
        await retryBusy(
          () => connection.process.request(request, deadline, reader !== undefined),
          Date.now() + LOCK_TIMEOUT_MS,
        ),
      );
    } catch (error) {
      throw new DatabaseError((error as Error).message);
    } finally {
      release();
    }
  }

  /**
   * Ends every database process (SQLite rolls back what they left open);
   * resolves when they have exited.
   */
  async close(): Promise<void> {
    clearTimeout(this.#idleTimer);
    await Promise.all([this.#writer, ...this.#readers].map(({ process }) => process.close()));
  }
}
