/**
 * The key-value server side: a component's bucket calls, checked against its
 * `"kv"` grant, answered from the durable store.
 *
 * @module
 */
import { log } from "../../log.ts";
import type { ComponentScope, HostSide } from "../sides.ts";
import type { KeyValueCalls } from "./mod.ts";
import { KvFailure } from "./store.ts";

/** The key-value server side for the component of `scope`. */
export function keyValueHost(scope: ComponentScope): HostSide<KeyValueCalls> {
  const { name, permissions, hosts } = scope;
  /** Bucket `bucketName`, if the component was granted it. */
  const open = (bucketName: string) => {
    if (!permissions.kv.includes(bucketName)) {
      log.warn(`${name}: key-value bucket "${bucketName}" denied: not in the manifest's "kv"`);
      throw new KvFailure({ tag: "access-denied" });
    }
    return hosts.keyValue.bucket(name, bucketName);
  };
  return {
    calls: {
      "kv.open": ([bucket]) => void open(bucket),
      "kv.get": ([bucket, key]) => open(bucket).get(key),
      "kv.set": ([bucket, key, value]) => open(bucket).set(key, value),
      "kv.delete": ([bucket, key]) => open(bucket).delete(key),
      "kv.exists": ([bucket, key]) => open(bucket).exists(key),
      "kv.list": ([bucket, cursor]) => open(bucket).listKeys(cursor),
      "kv.increment": ([bucket, key, delta]) => open(bucket).increment(key, delta),
      "kv.getMany": ([bucket, keys]) => {
        const opened = open(bucket);
        return keys.map((key) => {
          const value = opened.get(key);
          return value === undefined ? undefined : [key, value];
        });
      },
      "kv.setMany": async ([bucket, entries]) => {
        const opened = open(bucket);
        for (const [key, value] of entries) await opened.set(key, value);
      },
      "kv.deleteMany": async ([bucket, keys]) => {
        const opened = open(bucket);
        for (const key of keys) await opened.delete(key);
      },
    },
    abiError: (error) =>
      error instanceof KvFailure ? error.error : { tag: "other", val: (error as Error).message },
    denied: (error) => error instanceof KvFailure && error.error.tag === "access-denied",
  };
}
