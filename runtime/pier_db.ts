/**
 * Pier's own connections to its SQLite database, `<data>/main.db` (WAL mode):
 * job history and leases, key-value stores. Components' SQL is
 * `capabilities/database.ts`.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** How long a connection waits for another writer before failing. */
const BUSY_TIMEOUT_MS = 5000;

/**
 * Makes a connection of Pier's own safe from objects a component might have
 * left in the file: it refuses every statement that would run inside a
 * trigger or a view, so none can read or change what Pier writes (Pier itself
 * uses neither). node:sqlite's authorizer gets the innermost trigger or view
 * as its fifth argument.
 */
export function guardPierConnection(db: DatabaseSync): void {
  (db as DatabaseSync & {
    setAuthorizer(callback: (...args: (number | string | null)[]) => number): void;
  }).setAuthorizer((_action, _arg1, _arg2, _dbName, triggerOrView) =>
    triggerOrView === null || triggerOrView === undefined ? SQLITE_OK : SQLITE_DENY
  );
}

const SQLITE_OK = 0;
const SQLITE_DENY = 1;

/** Opens (creating if missing) the database file in WAL mode, guarded (see {@link guardPierConnection}). */
export function openDatabase(path: string, options: { readOnly?: boolean } = {}): DatabaseSync {
  const db = new DatabaseSync(path, { readOnly: options.readOnly ?? false });
  guardPierConnection(db);
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  if (!options.readOnly) db.exec("PRAGMA journal_mode = WAL");
  return db;
}
