/**
 * The database's server side: a component's statements, transactions and
 * in-band `__sqlite`/`__prefs` calls, checked against its `"db"` grant.
 *
 * @module
 */
import type { SQLInputValue } from "node:sqlite";
import { log } from "../../log.ts";
import type { ComponentScope, HostSide } from "../sides.ts";
import {
  fromJson,
  fromWit,
  type JsonValue,
  parseExact,
  stringifyExact,
  toJson,
  toWit,
  ValueError,
} from "../values.ts";
import type { DatabaseCalls } from "./mod.ts";
import { DatabaseError, GrantError } from "./store.ts";

/** Prefs live in the key-value store under a bucket name no guest can open. */
const PREFS_BUCKET = "\u0000prefs";

/** The database's server side for the component of `scope`. */
export function databaseHost(scope: ComponentScope): HostSide<DatabaseCalls> {
  const { name, permissions, hosts: { database: db } } = scope;
  const grant = permissions.db;
  const txId = (requestId: number, id: number) => `${scope.owner(requestId)}/${id}`;
  /** A statement's transaction: `tx` of the request's, or none. */
  const within = (requestId: number, tx: number | null) =>
    tx === null ? undefined : txId(requestId, tx);

  /** The in-band `__sqlite` and `__prefs` calls; always an answer, never a transport error. */
  async function inband(url: string, body: string, requestId: number): Promise<string> {
    const { hostname, pathname } = new URL(url);
    try {
      if (hostname === "__prefs") return JSON.stringify(await prefs(JSON.parse(body)));
      const request = parseExact(body) as { query?: unknown; params?: unknown };
      if (typeof request?.query !== "string" || !Array.isArray(request.params ?? [])) {
        throw new ValueError('body must be {"query": "...", "params": [...]}');
      }
      const params = ((request.params ?? []) as JsonValue[]).map(fromJson) as SQLInputValue[];
      const deadline = scope.deadline(requestId);
      if (pathname === "/query") {
        const rows = await db.run(grant, undefined, request.query, params, "query", deadline);
        return stringifyExact({ Query: { rows: rows.map((row) => row.map(toJson)) } });
      }
      if (pathname === "/execute") {
        const count = await db.run(grant, undefined, request.query, params, "execute", deadline);
        return stringifyExact({ Execute: { rows_affected: count } });
      }
      throw new ValueError(`unknown endpoint ${pathname} (use /query or /execute)`);
    } catch (error) {
      return JSON.stringify({ Error: (error as Error).message });
    }
  }

  async function prefs(
    request: { Get?: { key: string }; Set?: { key: string; value: string | null } },
  ) {
    if (grant === "none") {
      throw new GrantError(
        'database access is not granted (set "db" in the permission manifest)',
      );
    }
    const bucket = scope.hosts.keyValue.bucket(name, PREFS_BUCKET);
    if (request.Get) {
      const value = bucket.get(String(request.Get.key));
      return { Value: value === undefined ? null : new TextDecoder().decode(value) };
    }
    if (request.Set) {
      if (grant !== "write") {
        throw new GrantError('writing prefs needs "db": "write"');
      }
      const { key, value } = request.Set;
      if (value === null || value === undefined) await bucket.delete(String(key));
      else await bucket.set(String(key), new TextEncoder().encode(String(value)));
      return "Ok";
    }
    throw new ValueError('body must be {"Get": {...}} or {"Set": {...}}');
  }

  return {
    calls: {
      "db.begin": async ([id], requestId) => {
        await db.begin(txId(requestId, id), scope.owner(requestId), grant);
        // The request may have ended while the transaction waited for its lock.
        if (!scope.isLive(requestId)) {
          scope.settle(requestId);
          throw new DatabaseError("the request has ended");
        }
      },
      "db.commit": ([id], requestId) => db.end(txId(requestId, id), "COMMIT"),
      "db.rollback": ([id], requestId) => db.end(txId(requestId, id), "ROLLBACK"),
      "db.execute": ([tx, sql, params], requestId) =>
        db.run(
          grant,
          within(requestId, tx),
          sql,
          params.map(fromWit),
          "execute",
          scope.deadline(requestId),
        ),
      "db.query": async ([tx, sql, params], requestId) =>
        (await db.run(
          grant,
          within(requestId, tx),
          sql,
          params.map(fromWit),
          "query",
          scope.deadline(requestId),
        )).map((row) => row.map(toWit)),
      "db.inband": ([url, body], requestId) => inband(url, body, requestId),
    },
    abiError(error, op) {
      const message = (error as Error).message;
      if (!(error instanceof DatabaseError || error instanceof ValueError)) {
        log.error(`${name}: ${op} failed: ${(error as Error).stack}`);
      }
      return { tag: "other", val: message };
    },
    denied: (error) => error instanceof GrantError,
  };
}
