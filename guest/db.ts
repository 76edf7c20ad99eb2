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
/// <reference path="./wit.d.ts" />
import { Transaction } from "trailbase:database/sqlite@0.1.1";
import { fromWit, type Param, toWit, type Value } from "./values.ts";
import { describeVariant, payloadOf } from "./wasi.ts";

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

/** Runs `call` on `tx`, turning the host's error variant into a {@link DbError}. */
function attempt<T>(sql: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    const payload = payloadOf(error) as { tag?: string; val?: unknown };
    const reason = payload?.tag === "other" ? String(payload.val) : describeVariant(payload);
    throw new DbError(sql ? `${reason} (in: ${sql})` : reason);
  }
}

function wrap(tx: Transaction): Tx {
  return {
    query: (sql, params = []) =>
      Promise.resolve(
        attempt(sql, () => tx.query(sql, params.map(toWit)).map((row) => row.map(fromWit))),
      ),
    execute: (sql, params = []) =>
      Promise.resolve(attempt(sql, () => Number(tx.execute(sql, params.map(toWit))))),
  };
}

/**
 * Runs `body` in a transaction: it commits when `body` resolves and rolls
 * back when it throws (the error is rethrown).
 */
async function transaction<T>(body: (tx: Tx) => T | Promise<T>): Promise<T> {
  const tx = attempt("", () => new Transaction());
  try {
    const result = await body(wrap(tx));
    attempt("", () => tx.commit());
    return result;
  } catch (error) {
    try {
      tx.rollback();
    } catch {
      // Already committed or rolled back: the original error matters.
    }
    throw error;
  } finally {
    tx[Symbol.dispose]();
  }
}

/** The component's database. */
export const db = {
  /** Runs a statement that returns rows, e.g. `SELECT`, or `INSERT ... RETURNING`. */
  query(sql: string, params?: Param[]): Promise<Row[]> {
    return transaction((tx) => tx.query(sql, params));
  },
  /** Runs a statement and resolves to the number of rows it changed. */
  execute(sql: string, params?: Param[]): Promise<number> {
    return transaction((tx) => tx.execute(sql, params));
  },
  transaction,
};
