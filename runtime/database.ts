/**
 * Pier's SQLite database, `<data>/main.db`, in WAL mode.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** How long a connection waits for another writer before failing. */
const BUSY_TIMEOUT_MS = 5000;

/** Opens (creating if missing) the database file in WAL mode. */
export function openDatabase(path: string, options: { readOnly?: boolean } = {}): DatabaseSync {
  const db = new DatabaseSync(path, { readOnly: options.readOnly ?? false });
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  if (!options.readOnly) db.exec("PRAGMA journal_mode = WAL");
  return db;
}
