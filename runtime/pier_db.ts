/**
 * Pier's own connections to its SQLite database, `<data>/main.db` (WAL mode),
 * for job history and leases and key-value stores (components' SQL is
 * `capabilities/database/`), and their rule on the server thread: once Pier
 * serves, they never wait inside SQLite for another connection's write lock
 * (`busy_timeout = 0`); a write that finds it held is retried asynchronously
 * ({@link retryBusy}). A component's transaction may hold the lock up to its
 * time limit, and a wait inside SQLite would freeze the whole server for as
 * long.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** How long a start-up statement waits for another writer before failing. */
const BUSY_TIMEOUT_MS = 5000;

/** How long the checkpoint at shutdown waits for other connections (see {@link checkpoint}). */
const CHECKPOINT_WAIT_MS = 1000;

/**
 * Makes a connection of Pier's own safe from objects a component might have
 * left in the file: it refuses every statement that would run inside a
 * trigger or a view, so none can read or change what Pier writes (Pier itself
 * uses neither). node:sqlite's authorizer gets the innermost trigger or view
 * as its fifth argument.
 */
function guardPierConnection(db: DatabaseSync): void {
  (db as DatabaseSync & {
    setAuthorizer(callback: (...args: (number | string | null)[]) => number): void;
  }).setAuthorizer((_action, _arg1, _arg2, _dbName, triggerOrView) =>
    triggerOrView === null || triggerOrView === undefined ? SQLITE_OK : SQLITE_DENY
  );
}

const SQLITE_OK = 0;
const SQLITE_DENY = 1;

const BUSY = /database is locked|SQLITE_BUSY/i;

/**
 * Runs `fn`, retrying with backoff, asynchronously, while another connection
 * holds SQLite's write lock, until `deadline` (`Date.now()` time). The first
 * try runs at once, before this returns.
 */
export async function retryBusy<T>(fn: () => T | Promise<T>, deadline: number): Promise<T> {
  for (let delay = 2;; delay = Math.min(delay * 2, 50)) {
    try {
      return await fn();
    } catch (error) {
      if (!BUSY.test((error as Error).message) || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Runs a connection's start-up statements `sql` (its schema, its pragmas).
 * Nothing is served yet, so they may wait inside SQLite for another writer
 * (another Pier process), up to {@link BUSY_TIMEOUT_MS}; afterwards the
 * connection never waits there again: its writes go through {@link retryBusy}.
 */
export function execAtStartUp(db: DatabaseSync, sql: string): void {
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  try {
    db.exec(sql);
  } finally {
    db.exec("PRAGMA busy_timeout = 0");
  }
}

/**
 * Opens (creating if missing) the database file in WAL mode, with
 * `synchronous = FULL`, guarded (see {@link guardPierConnection}); the
 * connection never waits for the write lock (see {@link execAtStartUp}).
 */
export function openDatabase(path: string, options: { readOnly?: boolean } = {}): DatabaseSync {
  const readOnly = options.readOnly ?? false;
  const db = new DatabaseSync(path, { readOnly });
  guardPierConnection(db);
  execAtStartUp(db, readOnly ? "" : "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
  return db;
}

/**
 * Copies the WAL into the database file and empties it
 * (`wal_checkpoint(TRUNCATE)`), so that a stopped Pier leaves `main.db`
 * complete on its own. Pier serves no more, so this may wait inside SQLite
 * (up to {@link CHECKPOINT_WAIT_MS}) for another process (another Pier on the
 * same data directory) to finish a read or a write. Returns false when one
 * kept the checkpoint from completing.
 */
export function checkpoint(db: DatabaseSync): boolean {
  db.exec(`PRAGMA busy_timeout = ${CHECKPOINT_WAIT_MS}`);
  const { busy } = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number };
  return busy === 0;
}
