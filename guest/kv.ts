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
/// <reference path="./wit.d.ts" />
import { increment } from "wasi:keyvalue/atomics@0.2.0-draft";
import { type Bucket as WasiBucket, open } from "wasi:keyvalue/store@0.2.0-draft";
import { exactInteger, ownBytes } from "./values.ts";
import { describeVariant, payloadOf } from "./wasi.ts";

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

/** Opens bucket `name` for one call, turning the store's error variant into a {@link KvError}. */
function withBucket<T>(name: string, what: string, call: (bucket: WasiBucket) => T): Promise<T> {
  let bucket: WasiBucket | undefined;
  try {
    bucket = open(name);
    return Promise.resolve(call(bucket));
  } catch (error) {
    const payload = payloadOf(error) as { tag?: string; val?: unknown };
    const code = typeof payload?.tag === "string" ? payload.tag : "other";
    return Promise.reject(
      new KvError(code, `kv bucket "${name}": ${what} failed: ${describeVariant(payload)}`),
    );
  } finally {
    bucket?.[Symbol.dispose]();
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
    return {
      get: (key) =>
        withBucket(name, `get "${key}"`, (b) => {
          const value = b.get(key);
          return value === undefined ? undefined : ownBytes(value);
        }),
      getText: (key) =>
        withBucket(name, `get "${key}"`, (b) => {
          const value = b.get(key);
          return value === undefined ? undefined : decoder.decode(value);
        }),
      set: (key, value) =>
        withBucket(
          name,
          `set "${key}"`,
          (b) => b.set(key, typeof value === "string" ? encoder.encode(value) : value),
        ),
      delete: (key) => withBucket(name, `delete "${key}"`, (b) => b.delete(key)),
      exists: (key) => withBucket(name, `exists "${key}"`, (b) => b.exists(key)),
      list: () =>
        withBucket(name, "list", (b) => {
          const keys: string[] = [];
          let cursor: bigint | undefined;
          do {
            const page = b.listKeys(cursor);
            keys.push(...page.keys);
            cursor = page.cursor;
          } while (cursor !== undefined);
          return keys;
        }),
      increment: (key, delta = 1) =>
        withBucket(
          name,
          `increment "${key}"`,
          (b) => exactInteger(increment(b, key, BigInt(delta))),
        ),
    };
  },
};
