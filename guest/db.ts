/**
 * The database: SQL on the host's SQLite database (`trailbase:database/sqlite`).
 * The component's permission manifest must grant `"db": "read"` or `"write"`.
 *
 * ```ts
 * import { db } from "@pier/guest/db";
 *
 * const rows = await db.query("SELECT id, title FROM todos WHERE done = ?", [false]);
 * const changed = await db.execute("DELETE FROM todos WHERE done = 1");
 * await db.transaction(async (tx) => {
 *   await tx.execute("INSERT INTO log (line) VALUES (?)", ["moved"]);
 *   await tx.execute("UPDATE todos SET done = 1 WHERE id = ?", [id]);
 * });
 * ```
 *
 * Rows are arrays of {@link Value}s in the order of the selected columns.
 *
 * @module
 */
import { backend } from "./backend.ts";
import { describeVariant } from "./backend_types.ts";
import type { TxBackend } from "./backend_types.ts";
import { fromWit, type Param, toWit, type Value, type WitValue } from "./values.ts";

export type { Param, Value } from "./values.ts";

/** One result row: the selected columns' values, in order. */
export type Row = Value[];

/** A statement the database refused or that failed; the message is SQLite's or the host's. */
export class DbError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DbError";
  }
}

/** Statements inside {@link db.transaction}. */
export interface Tx {
  /** Runs a statement that returns rows. */
  query(sql: string, params?: Param[]): Promise<Row[]>;
  /** Runs a statement and resolves to the number of rows it changed. */
  execute(sql: string, params?: Param[]): Promise<number>;
}

/** The host's error variant in `error` as a {@link DbError}, naming `sql` when given. */
function dbError(sql: string, error: unknown): DbError {
  const payload = backend.variant(error) as { tag?: string; val?: unknown };
  const reason = payload?.tag === "other" ? String(payload.val) : describeVariant(payload);
  return new DbError(sql ? `${reason} (in: ${sql})` : reason);
}

/**
 * Waits for `call`, turning the host's error variant into a {@link DbError}.
 * Promise callbacks, not async functions: under the SpiderMonkey guest engine
 * every async function and promise on a request's path is interpreted work.
 */
function attempt<T>(sql: string, call: () => Promise<T>): Promise<T> {
  let pending: Promise<T>;
  try {
    pending = call();
  } catch (error) {
    return Promise.reject(dbError(sql, error));
  }
  return pending.then(undefined, (error) => {
    throw dbError(sql, error);
  });
}

/** Rows from the host as the SDK's values. */
const rowsOf = (rows: WitValue[][]): Row[] => rows.map((row) => row.map(fromWit));

function wrap(tx: Pick<TxBackend, "query" | "execute">): Tx {
  return {
    query: (sql, params = []) => attempt(sql, () => tx.query(sql, params.map(toWit)).then(rowsOf)),
    execute: (sql, params = []) =>
      attempt(sql, () => tx.execute(sql, params.map(toWit)).then(Number)),
  };
}

/**
 * Runs `body` in a transaction: it commits when `body` resolves and rolls
 * back when it throws (the error is rethrown).
 */
async function transaction<T>(body: (tx: Tx) => T | Promise<T>): Promise<T> {
  const tx = await attempt("", () => backend.begin());
  try {
    const result = await body(wrap(tx));
    await attempt("", () => tx.commit());
    return result;
  } catch (error) {
    try {
      await tx.rollback();
    } catch {
      // Already committed or rolled back: the original error matters.
    }
    throw error;
  } finally {
    tx.close();
  }
}

/** Statements outside a transaction, where the backend runs them alone (made once, not per call). */
const single = backend.single && wrap(backend.single);

/** The component's database. */
export const db = {
  /** Runs a statement that returns rows, e.g. `SELECT`, or `INSERT ... RETURNING`. */
  query(sql: string, params?: Param[]): Promise<Row[]> {
    if (single) return single.query(sql, params);
    return transaction((tx) => tx.query(sql, params));
  },
  /** Runs a statement and resolves to the number of rows it changed. */
  execute(sql: string, params?: Param[]): Promise<number> {
    if (single) return single.execute(sql, params);
    return transaction((tx) => tx.execute(sql, params));
  },
  transaction,
};
