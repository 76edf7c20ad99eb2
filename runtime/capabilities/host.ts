/**
 * The server side of a component's capabilities: every database, in-band
 * and key-value call from its worker arrives here, is checked against the
 * component's grants, and is answered with the ABI's own result or error.
 *
 * @module
 */
import type { SQLInputValue } from "node:sqlite";
import { log } from "../log.ts";
import type { Permissions } from "../permissions.ts";
import { DatabaseError, type DatabaseHost, type Rows } from "./database/store.ts";
import type { Deadline } from "./database/process.ts";
import { type KeyValueHost, KvFailure } from "./keyvalue/store.ts";
import {
  fromJson,
  fromWit,
  type JsonValue,
  parseExact,
  stringifyExact,
  toJson,
  toWit,
  ValueError,
  type WitValue,
} from "./values.ts";

/** A capability call refused or failed; `error` is the ABI error value for the guest. */
export class CapabilityError extends Error {
  constructor(readonly error: unknown, message: string) {
    super(message);
  }
}

/** The shared hosts behind every component's capabilities. */
export interface Hosts {
  database: DatabaseHost;
  keyValue: KeyValueHost;
}

/** Prefs live in the key-value store under a bucket name no guest can open. */
const PREFS_BUCKET = "\u0000prefs";

/** Handles the capability calls of one component. */
export class ComponentCapabilities {
  /**
   * The requests whose calls are answered, with their deadlines
   * (`performance.now()` time); `undefined` for a worker's own id (its
   * manifest and SQL function calls), whose calls each get the time limit.
   */
  #live = new Map<number, number | undefined>();

  constructor(
    readonly name: string,
    readonly permissions: Permissions,
    readonly hosts: Hosts,
  ) {}

  #owner(requestId: number) {
    return `${this.name}/${requestId}`;
  }

  /**
   * Request `requestId` runs until `deadline` (`performance.now()` time;
   * omitted for a worker's own id, live as long as its worker): its calls are
   * answered until {@link requestEnded}.
   */
  requestStarted(requestId: number, deadline?: number): void {
    this.#live.set(requestId, deadline);
  }

  #deadline(requestId: number): Deadline {
    const limitMs = this.permissions.limits.timeoutMs;
    return { at: this.#live.get(requestId) ?? performance.now() + limitMs, limitMs };
  }

  /** Answers one call; throws {@link CapabilityError}. */
  async handle(op: string, args: unknown[], requestId: number): Promise<unknown> {
    const [group] = op.split(".");
    try {
      // A guest that runs on after its response (or its time limit) acts for no request.
      if (!this.#live.has(requestId)) throw new DatabaseError("the request has ended");
      if (group === "db") return await this.#database(op, args, requestId);
      if (group === "kv") return await this.#keyValue(op, args);
      throw new Error(`unknown capability call ${op}`);
    } catch (error) {
      if (error instanceof CapabilityError) throw error;
      if (group === "kv") {
        const kvError = error instanceof KvFailure
          ? error.error
          : { tag: "other", val: (error as Error).message };
        throw new CapabilityError(kvError, (error as Error).message);
      }
      const message = (error as Error).message;
      if (!(error instanceof DatabaseError || error instanceof ValueError)) {
        log.error(`${this.name}: ${op} failed: ${(error as Error).stack}`);
      }
      throw new CapabilityError({ tag: "other", val: message }, message);
    }
  }

  /** Request `requestId` ended: its calls are refused from now on, what it left open rolled back. */
  requestEnded(requestId: number): void {
    this.#live.delete(requestId);
    this.settle(requestId);
  }

  /** Rolls back what `requestId` left open (a worker's own id: after each of its calls). */
  settle(requestId: number): void {
    const count = this.hosts.database.abandon(this.#owner(requestId));
    if (count) log.warn(`${this.name}: rolled back ${count} transaction(s) left open by a request`);
  }

  async #database(op: string, args: unknown[], requestId: number): Promise<unknown> {
    const db = this.hosts.database;
    const grant = this.permissions.db;
    const txId = (id: unknown) => `${this.#owner(requestId)}/${id}`;
    switch (op) {
      case "db.begin":
        await db.begin(txId(args[0]), this.#owner(requestId), grant);
        // The request may have ended while the transaction waited for its lock.
        if (!this.#live.has(requestId)) {
          this.settle(requestId);
          throw new DatabaseError("the request has ended");
        }
        return;
      case "db.commit":
        return await db.end(txId(args[0]), "COMMIT");
      case "db.rollback":
        return await db.end(txId(args[0]), "ROLLBACK");
      case "db.execute":
      case "db.query": {
        const [tx, sql, params] = args as [unknown, string, WitValue[]];
        const result = await db.run(
          grant,
          tx === null ? undefined : txId(tx),
          sql,
          params.map(fromWit),
          op === "db.query" ? "query" : "execute",
          this.#deadline(requestId),
        );
        return typeof result === "bigint" ? result : result.map((row) => row.map(toWit));
      }
      case "db.inband":
        return await this.#inband(args[0] as string, args[1] as string, requestId);
    }
    throw new Error(`unknown capability call ${op}`);
  }

  /** The in-band `__sqlite` and `__prefs` calls; always an answer, never a transport error. */
  async #inband(url: string, body: string, requestId: number): Promise<string> {
    const { hostname, pathname } = new URL(url);
    try {
      if (hostname === "__prefs") return JSON.stringify(await this.#prefs(JSON.parse(body)));
      const request = parseExact(body) as { query?: unknown; params?: unknown };
      if (typeof request?.query !== "string" || !Array.isArray(request.params ?? [])) {
        throw new ValueError('body must be {"query": "...", "params": [...]}');
      }
      const params = ((request.params ?? []) as JsonValue[]).map(fromJson);
      const mode = pathname === "/query" ? "query" : pathname === "/execute" ? "execute" : null;
      if (!mode) throw new ValueError(`unknown endpoint ${pathname} (use /query or /execute)`);
      const result = await this.hosts.database.run(
        this.permissions.db,
        undefined,
        request.query,
        params as SQLInputValue[],
        mode,
        this.#deadline(requestId),
      );
      return stringifyExact(
        mode === "query"
          ? { Query: { rows: (result as Rows).map((row) => row.map(toJson)) } }
          : { Execute: { rows_affected: result } },
      );
    } catch (error) {
      return JSON.stringify({ Error: (error as Error).message });
    }
  }

  async #prefs(request: { Get?: { key: string }; Set?: { key: string; value: string | null } }) {
    if (this.permissions.db === "none") {
      throw new DatabaseError(
        'database access is not granted (set "db" in the permission manifest)',
      );
    }
    const bucket = this.hosts.keyValue.bucket(this.name, PREFS_BUCKET);
    if (request.Get) {
      const value = bucket.get(String(request.Get.key));
      return { Value: value === undefined ? null : new TextDecoder().decode(value) };
    }
    if (request.Set) {
      if (this.permissions.db !== "write") {
        throw new DatabaseError('writing prefs needs "db": "write"');
      }
      const { key, value } = request.Set;
      if (value === null || value === undefined) await bucket.delete(String(key));
      else await bucket.set(String(key), new TextEncoder().encode(String(value)));
      return "Ok";
    }
    throw new ValueError('body must be {"Get": {...}} or {"Set": {...}}');
  }

  async #keyValue(op: string, args: unknown[]): Promise<unknown> {
    const [bucketName, ...rest] = args as [string, ...unknown[]];
    if (!this.permissions.kv.includes(bucketName)) {
      log.warn(`${this.name}: key-value bucket "${bucketName}" denied: not in the manifest's "kv"`);
      throw new CapabilityError({ tag: "access-denied" }, `bucket "${bucketName}" not granted`);
    }
    const bucket = this.hosts.keyValue.bucket(this.name, bucketName);
    switch (op) {
      case "kv.open":
        return;
      case "kv.get":
        return bucket.get(rest[0] as string);
      case "kv.set":
        return await bucket.set(rest[0] as string, rest[1] as Uint8Array);
      case "kv.delete":
        return await bucket.delete(rest[0] as string);
      case "kv.exists":
        return bucket.exists(rest[0] as string);
      case "kv.list":
        return bucket.listKeys(rest[0] as bigint | undefined);
      case "kv.increment":
        return await bucket.increment(rest[0] as string, rest[1] as bigint);
      case "kv.getMany":
        return (rest[0] as string[]).map((key) => {
          const value = bucket.get(key);
          return value === undefined ? undefined : [key, value];
        });
      case "kv.setMany":
        for (const [key, value] of rest[0] as [string, Uint8Array][]) await bucket.set(key, value);
        return;
      case "kv.deleteMany":
        for (const key of rest[0] as string[]) await bucket.delete(key);
        return;
    }
    throw new Error(`unknown capability call ${op}`);
  }
}
