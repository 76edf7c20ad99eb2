/**
 * The key-value capability: `wasi:keyvalue@0.2.0-draft` (store, atomics,
 * batch), granted per bucket by the manifest's `"kv"`, kept in SQLite
 * (`store.ts`).
 *
 * @module
 */
import type { Capability } from "../capability.ts";

/** The key-value calls from the guest side to the server side; each names its bucket first. */
export interface KeyValueCalls {
  "kv.open": { args: [bucket: string]; result: void };
  "kv.get": { args: [bucket: string, key: string]; result: Uint8Array | undefined };
  "kv.set": { args: [bucket: string, key: string, value: Uint8Array]; result: void };
  "kv.delete": { args: [bucket: string, key: string]; result: void };
  "kv.exists": { args: [bucket: string, key: string]; result: boolean };
  "kv.list": {
    args: [bucket: string, cursor: bigint | undefined];
    result: { keys: string[]; cursor: bigint | undefined };
  };
  "kv.increment": { args: [bucket: string, key: string, delta: bigint]; result: bigint };
  "kv.getMany": {
    args: [bucket: string, keys: string[]];
    result: ([string, Uint8Array] | undefined)[];
  };
  "kv.setMany": { args: [bucket: string, entries: [string, Uint8Array][]]; result: void };
  "kv.deleteMany": { args: [bucket: string, keys: string[]]; result: void };
}

/** The key-value capability. */
export const keyValue = {
  name: "keyvalue",
  grantKey: "kv",
  grants: (permissions) => permissions.kv,
  interfaces: ["wasi:keyvalue/store", "wasi:keyvalue/atomics", "wasi:keyvalue/batch"],
  logUngranted: true,
  suspending: [
    "store@0.2.0-draft#open",
    "store@0.2.0-draft#[method]bucket.get",
    "store@0.2.0-draft#[method]bucket.set",
    "store@0.2.0-draft#[method]bucket.delete",
    "store@0.2.0-draft#[method]bucket.exists",
    "store@0.2.0-draft#[method]bucket.list-keys",
    "atomics@0.2.0-draft#increment",
    "batch@0.2.0-draft#get-many",
    "batch@0.2.0-draft#set-many",
    "batch@0.2.0-draft#delete-many",
  ].map((f) => `wasi:keyvalue/${f}`),
} as const satisfies Capability;
