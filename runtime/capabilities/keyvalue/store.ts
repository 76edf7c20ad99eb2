/**
 * The key-value capability (`wasi:keyvalue` store, atomics, batch), durable
 * in SQLite: table `_pier_kv` of `<data>/main.db`, keyed by component,
 * bucket and key. Buckets are per component: two components opening the
 * same bucket name see different data.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { execAtStartUp, openDatabase, retryBusy } from "../../pier_db.ts";

/** Keys per `list-keys` page. */
export const PAGE_SIZE = 100;
/** Largest value a guest may store. */
export const MAX_VALUE_BYTES = 1024 * 1024;
/** Largest key. */
export const MAX_KEY_BYTES = 1024;

/** How long a write waits for another connection's write lock. */
const WRITE_TIMEOUT_MS = 5000;

/** A key-value failure: the `error` variant of `wasi:keyvalue/store`. */
export type KvError = { tag: "no-such-store" } | { tag: "access-denied" } | {
  tag: "other";
  val: string;
};

/** Thrown with the ABI error to hand to the guest. */
export class KvFailure extends Error {
  constructor(readonly error: KvError) {
    super(error.tag === "other" ? error.val : error.tag);
  }
}

/** The durable store behind every component's buckets. */
export class KeyValueHost {
  #db: DatabaseSync;

  constructor(path: string) {
    this.#db = openDatabase(path);
    execAtStartUp(
      this.#db,
      `CREATE TABLE IF NOT EXISTS _pier_kv (
        component TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
        PRIMARY KEY (component, bucket, key)) WITHOUT ROWID`,
    );
  }

  /**
   * Runs a write; while another connection (a component's transaction, another
   * Pier process) holds the write lock, it retries with backoff, asynchronously,
   * so the server thread serves on meanwhile.
   */
  async #write<T>(fn: () => T): Promise<T> {
    try {
      return await retryBusy(fn, Date.now() + WRITE_TIMEOUT_MS);
    } catch (error) {
      if (error instanceof KvFailure) throw error;
      throw new KvFailure({ tag: "other", val: (error as Error).message });
    }
  }

  /** The operations of one component on one bucket, after the grant was checked. */
  bucket(component: string, bucket: string): Bucket {
    return new Bucket(this.#db, component, bucket, (fn) => this.#write(fn));
  }

  close(): void {
    this.#db.close();
  }
}

function checkKey(key: unknown): string {
  if (typeof key !== "string") throw new KvFailure({ tag: "other", val: "key must be a string" });
  if (new TextEncoder().encode(key).byteLength > MAX_KEY_BYTES) {
    throw new KvFailure({ tag: "other", val: `key longer than ${MAX_KEY_BYTES} bytes` });
  }
  return key;
}

function checkValue(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new KvFailure({ tag: "other", val: "value must be bytes" });
  }
  if (value.byteLength > MAX_VALUE_BYTES) {
    throw new KvFailure({ tag: "other", val: `value larger than ${MAX_VALUE_BYTES} bytes` });
  }
  return value;
}

/** Counters are stored as 8 little-endian bytes, as wasmtime's keyvalue host does. */
function counterBytes(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, value, true);
  return bytes;
}

/** One component's bucket. */
export class Bucket {
  constructor(
    readonly db: DatabaseSync,
    readonly component: string,
    readonly name: string,
    readonly write: <T>(fn: () => T) => Promise<T>,
  ) {}

  get(key: string): Uint8Array | undefined {
    const row = this.db.prepare(
      "SELECT value FROM _pier_kv WHERE component = ? AND bucket = ? AND key = ?",
    ).get(this.component, this.name, checkKey(key));
    return row ? new Uint8Array(row.value as Uint8Array) : undefined;
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    checkKey(key);
    checkValue(value);
    await this.write(() => this.#put(key, value));
  }

  #put(key: string, value: Uint8Array) {
    this.db.prepare(
      "INSERT INTO _pier_kv (component, bucket, key, value) VALUES (?, ?, ?, ?) " +
        "ON CONFLICT (component, bucket, key) DO UPDATE SET value = excluded.value",
    ).run(this.component, this.name, key, value);
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.write(() =>
      this.db.prepare("DELETE FROM _pier_kv WHERE component = ? AND bucket = ? AND key = ?")
        .run(this.component, this.name, key)
    );
  }

  exists(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** One page of keys in key order; `cursor` is where the previous page stopped. */
  listKeys(cursor: bigint | undefined): { keys: string[]; cursor: bigint | undefined } {
    const offset = Number(cursor ?? 0n);
    const keys = this.db.prepare(
      "SELECT key FROM _pier_kv WHERE component = ? AND bucket = ? ORDER BY key LIMIT ? OFFSET ?",
    ).all(this.component, this.name, PAGE_SIZE + 1, offset).map((row) => row.key as string);
    const more = keys.length > PAGE_SIZE;
    return {
      keys: keys.slice(0, PAGE_SIZE),
      cursor: more ? BigInt(offset + PAGE_SIZE) : undefined,
    };
  }

  /** Adds `delta` to the counter at `key` (missing: 0) and returns the new value. */
  increment(key: string, delta: bigint): Promise<bigint> {
    checkKey(key);
    return this.write(() => {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const current = this.get(key);
        if (current && current.byteLength !== 8) {
          throw new KvFailure({ tag: "other", val: `value at "${key}" is not a counter` });
        }
        const value = BigInt.asUintN(
          64,
          (current ? new DataView(current.buffer).getBigUint64(0, true) : 0n) + delta,
        );
        this.#put(key, counterBytes(value));
        this.db.exec("COMMIT");
        return value;
      } catch (error) {
        this.db.exec("ROLLBACK");
        throw error;
      }
    });
  }
}
