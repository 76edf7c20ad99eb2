/**
 * The database capability: SQL from components against `<data>/main.db`.
 *
 * All component SQL of this process runs on one writer connection,
 * serialized by an async lock that a transaction holds from its first
 * statement to commit or rollback; so transactions of concurrent requests
 * are isolated, and waiting for the lock never blocks the server thread.
 * A component with a `read` grant uses one of a few read-only connections,
 * on which SQLite itself refuses writes; each has its own lock, so read
 * transactions of concurrent requests run side by side (WAL keeps each on its
 * snapshot) instead of queueing for one connection. Statements that reach other files (ATTACH,
 * DETACH, VACUUM INTO, extensions) and Pier's own `_pier_*` tables are
 * refused by an authorizer.
 *
 * @module
 */
import {
  DatabaseSync,
  type SQLInputValue,
  type SQLOutputValue,
  type StatementSync,
} from "node:sqlite";

/**
 * node:sqlite methods that Deno 2.9 implements but its bundled type
 * definitions predate.
 */
interface NewerDatabase extends DatabaseSync {
  setAuthorizer(
    callback: (action: number, arg1: string | null, arg2: string | null) => number,
  ): void;
}
interface NewerStatement extends StatementSync {
  setReturnArrays(enabled: boolean): void;
}

const SQLITE_OK = 0;
const SQLITE_DENY = 1;

/** How long a statement waits for the write lock before failing. */
export const LOCK_TIMEOUT_MS = 5000;

/** A refused or failed statement; the message goes to the guest. */
export class DatabaseError extends Error {}

/** Pragmas a component may run: read-only introspection. */
const SAFE_PRAGMAS = new Set([
  "table_info",
  "table_xinfo",
  "table_list",
  "index_list",
  "index_info",
  "index_xinfo",
  "foreign_key_list",
  "user_version",
  "data_version",
  "foreign_keys",
]);

/** SQLite authorizer action codes (sqlite3.h). */
const ACTION = {
  DELETE: 9,
  INSERT: 18,
  PRAGMA: 19,
  READ: 20,
  UPDATE: 23,
  ATTACH: 24,
  DETACH: 25,
  ALTER_TABLE: 26,
  DROP_TABLE: 11,
  CREATE_TABLE: 2,
  FUNCTION: 31,
} as const;

const TABLE_ACTIONS: Set<number> = new Set([
  ACTION.DELETE,
  ACTION.INSERT,
  ACTION.READ,
  ACTION.UPDATE,
  ACTION.ALTER_TABLE,
  ACTION.DROP_TABLE,
  ACTION.CREATE_TABLE,
]);

/** Refuses what a component must not do, whatever its grant. */
function componentAuthorizer(
  action: number,
  arg1: string | null,
  arg2: string | null,
): number {
  if (action === ACTION.ATTACH || action === ACTION.DETACH) return SQLITE_DENY;
  if (action === ACTION.PRAGMA) {
    // `PRAGMA x = y` sets: only user_version and foreign_keys may be set.
    const name = (arg1 ?? "").toLowerCase();
    if (!SAFE_PRAGMAS.has(name)) return SQLITE_DENY;
    if (arg2 !== null && !["user_version", "foreign_keys"].includes(name)) {
      return SQLITE_DENY;
    }
  }
  if (TABLE_ACTIONS.has(action) && arg1?.toLowerCase().startsWith("_pier_")) {
    return SQLITE_DENY;
  }
  if (action === ACTION.FUNCTION && arg2?.toLowerCase() === "load_extension") {
    return SQLITE_DENY;
  }
  return SQLITE_OK;
}

/** A FIFO async lock with a wait limit. */
class Lock {
  /** `what`: what the lock guards, for the timeout's message. */
  constructor(readonly what: string) {}

  #held = false;
  #waiters: (() => void)[] = [];

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
      if (next) next();
      else this.#held = false;
    };
  }
}

const BUSY = /database is locked|SQLITE_BUSY/i;

/** Runs `fn`, retrying while another process holds SQLite's lock. */
async function retryBusy<T>(fn: () => T, deadline: number): Promise<T> {
  for (let delay = 2;; delay = Math.min(delay * 2, 50)) {
    try {
      return fn();
    } catch (error) {
      if (!BUSY.test((error as Error).message) || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

function open(path: string, readOnly: boolean): DatabaseSync {
  const db = new DatabaseSync(path, { readOnly });
  // Waits happen in `retryBusy`, asynchronously, never inside SQLite on the server thread.
  db.exec("PRAGMA busy_timeout = 0");
  // An acknowledged write must survive a crash: sync the WAL at every commit.
  if (!readOnly) db.exec("PRAGMA synchronous = FULL");
  (db as NewerDatabase).setAuthorizer(componentAuthorizer);
  return db;
}

const FUNCTION_FAILED = Symbol("SQL function failed");

/** Rows as lists of values, integers as bigints. */
export type Rows = SQLOutputValue[][];

/** Prepared statements a connection keeps for reuse. */
const CACHED_STATEMENTS = 100;

/** One SQLite connection, its lock, and its prepared statements by SQL text. */
class Connection {
  readonly lock: Lock;
  #statements = new Map<string, StatementSync>();

  constructor(readonly db: DatabaseSync, lockName: string) {
    this.lock = new Lock(lockName);
  }

  /**
   * A prepared statement for `sql`, reused while it is among the most recently
   * used ones: preparing costs more than running a small query.
   */
  statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement) this.#statements.delete(sql);
    else {
      statement = this.db.prepare(sql);
      (statement as NewerStatement).setReadBigInts(true);
      if (this.#statements.size >= CACHED_STATEMENTS) {
        this.#statements.delete(this.#statements.keys().next().value!);
      }
    }
    this.#statements.set(sql, statement);
    return statement;
  }
}

/** An open transaction. */
interface Transaction {
  connection: Connection;
  release: () => void;
  owner: string;
}

/** Which statements a grant allows. */
export type DatabaseGrant = "none" | "read" | "write";

/** Read-only connections, for read transactions side by side. */
const READERS = 4;

/** The component databases of one process. */
export class DatabaseHost {
  #writer: Connection;
  #readers: Connection[];
  #transactions = new Map<string, Transaction>();

  constructor(path: string) {
    // The server opened (and set WAL on) the file first; these only attach to it.
    this.#writer = new Connection(open(path, false), "the database write lock");
    this.#readers = Array.from(
      { length: READERS },
      () => new Connection(open(path, true), "a database read connection"),
    );
  }

  #functionFailure: string | undefined;

  /**
   * Fails the running statement from inside a SQL function. In Deno 2.9
   * `all()` never returns when a function throws, so a function reports its
   * error here and returns this value, which SQLite cannot take: the
   * statement fails at once, and its error carries this message.
   */
  failFunction(message: string): symbol {
    this.#functionFailure = message;
    return FUNCTION_FAILED;
  }

  #takeFunctionFailure(): string | undefined {
    const message = this.#functionFailure;
    this.#functionFailure = undefined;
    return message;
  }

  /** Every connection, for registering SQL functions. */
  get connections(): DatabaseSync[] {
    return [this.#writer, ...this.#readers].map((connection) => connection.db);
  }

  #connection(grant: DatabaseGrant): Connection {
    if (grant === "none") {
      throw new DatabaseError(
        'database access is not granted (set "db" in the permission manifest)',
      );
    }
    if (grant === "write") return this.#writer;
    return this.#readers.reduce((best, each) => each.lock.queued < best.lock.queued ? each : best);
  }

  /** Begins transaction `id`, waiting (asynchronously) for the write lock. */
  async begin(id: string, owner: string, grant: DatabaseGrant): Promise<void> {
    if (this.#transactions.has(id)) throw new DatabaseError("transaction already begun");
    const connection = this.#connection(grant);
    const release = await connection.lock.acquire(LOCK_TIMEOUT_MS, "begin transaction");
    try {
      const mode = connection === this.#writer ? "BEGIN IMMEDIATE" : "BEGIN";
      await retryBusy(() => connection.statement(mode).run(), Date.now() + LOCK_TIMEOUT_MS);
    } catch (error) {
      release();
      throw new DatabaseError((error as Error).message);
    }
    this.#transactions.set(id, { connection, release, owner });
  }

  /** Ends transaction `id` with COMMIT or ROLLBACK. */
  end(id: string, how: "COMMIT" | "ROLLBACK"): void {
    const tx = this.#transactions.get(id);
    if (!tx) throw new DatabaseError("no transaction is open");
    this.#transactions.delete(id);
    try {
      tx.connection.statement(how).run();
    } catch (error) {
      if (tx.connection.db.isTransaction) tx.connection.statement("ROLLBACK").run();
      throw new DatabaseError((error as Error).message);
    } finally {
      tx.release();
    }
  }

  /** Rolls back every transaction `owner` left open (its request ended or its worker died). */
  abandon(owner: string): number {
    let count = 0;
    for (const [id, tx] of this.#transactions) {
      if (tx.owner !== owner && !tx.owner.startsWith(`${owner}/`)) continue;
      this.end(id, "ROLLBACK");
      count++;
    }
    return count;
  }

  /**
   * Runs one statement: inside transaction `txId` when given, else on its own
   * (waiting for the write lock like a transaction would).
   */
  async run(
    grant: DatabaseGrant,
    txId: string | undefined,
    sql: string,
    params: SQLInputValue[],
    mode: "query" | "execute",
  ): Promise<Rows | bigint> {
    const exec = (connection: Connection) => {
      const statement = connection.statement(sql) as NewerStatement;
      if (mode === "execute") return BigInt(statement.run(...params).changes);
      statement.setReturnArrays(true);
      // Not `iterate()`: in Deno 2.9 it drops errors raised while stepping.
      return statement.all(...params) as unknown as Rows;
    };
    const wrap = (error: unknown) =>
      new DatabaseError(this.#takeFunctionFailure() ?? (error as Error).message);
    if (txId !== undefined) {
      const tx = this.#transactions.get(txId);
      if (!tx) throw new DatabaseError("no transaction is open");
      try {
        return exec(tx.connection);
      } catch (error) {
        throw wrap(error);
      }
    }
    const connection = this.#connection(grant);
    const release = await connection.lock.acquire(LOCK_TIMEOUT_MS, "statement");
    try {
      return await retryBusy(() => exec(connection), Date.now() + LOCK_TIMEOUT_MS);
    } catch (error) {
      throw wrap(error);
    } finally {
      release();
    }
  }

  /** Closes every connection. */
  close(): void {
    for (const id of [...this.#transactions.keys()]) this.end(id, "ROLLBACK");
    for (const db of this.connections) db.close();
  }
}
