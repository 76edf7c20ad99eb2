/**
 * Key-value buckets (`wasi:keyvalue`). The component's permission manifest
 * lists the buckets it may open under `"kv"`.
 *
 * ```ts
 * import { kv } from "@pier/guest/kv";
 *
 * const visits = kv.bucket("visits");
 * const count = await visits.increment("home");
 * await visits.set("last-visit", new Date().toISOString());
 * const last = await visits.getText("last-visit");
 * ```
 *
 * @module
 */
import { backend } from "./backend.ts";
import { describeVariant } from "./backend_types.ts";
import { exactInteger } from "./values.ts";

/** A refused or failed key-value call; `code` is `no-such-store`, `access-denied` or `other`. */
export class KvError extends Error {
  /** `code`: the store's error case; `message`: what happened. */
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "KvError";
  }
}

/** One bucket: keys to byte values. */
export interface Bucket {
  /** The value of `key` as bytes, or `undefined` when there is none. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** The value of `key` decoded as UTF-8, or `undefined` when there is none. */
  getText(key: string): Promise<string | undefined>;
  /** Sets `key`; a string is stored as UTF-8. */
  set(key: string, value: string | Uint8Array): Promise<void>;
  /** Removes `key` (no error when it is absent). */
  delete(key: string): Promise<void>;
  /** Whether `key` has a value. */
  exists(key: string): Promise<boolean>;
  /** Every key in the bucket. */
  list(): Promise<string[]>;
  /**
   * Atomically adds `delta` (default 1) to the counter at `key` (absent counts
   * as 0) and resolves to the new value: a `number`, or a `bigint` past 2^53.
   */
  increment(key: string, delta?: number | bigint): Promise<number | bigint>;
}

/** Waits for one call on bucket `name`, turning the store's error variant into a {@link KvError}. */
async function attempt<T>(name: string, what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const payload = backend.variant(error) as { tag?: string; val?: unknown };
    const code = typeof payload?.tag === "string" ? payload.tag : "other";
    throw new KvError(code, `kv bucket "${name}": ${what} failed: ${describeVariant(payload)}`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Key-value storage. */
export const kv = {
  /**
   * The bucket named `name` (`""`, the default bucket, when omitted). Nothing
   * is opened until the first call, so this may run at module top level.
   */
  bucket(name = ""): Bucket {
    const { kv: store } = backend;
    return {
      get: (key) => attempt(name, `get "${key}"`, () => store.get(name, key)),
      getText: (key) =>
        attempt(name, `get "${key}"`, async () => {
          const value = await store.get(name, key);
          return value === undefined ? undefined : decoder.decode(value);
        }),
      set: (key, value) =>
        attempt(
          name,
          `set "${key}"`,
          () => store.set(name, key, typeof value === "string" ? encoder.encode(value) : value),
        ),
      delete: (key) => attempt(name, `delete "${key}"`, () => store.delete(name, key)),
      exists: (key) => attempt(name, `exists "${key}"`, () => store.exists(name, key)),
      list: () => attempt(name, "list", () => store.list(name)),
      increment: (key, delta = 1) =>
        attempt(
          name,
          `increment "${key}"`,
          async () => exactInteger(await store.increment(name, key, BigInt(delta))),
        ),
    };
  },
};
