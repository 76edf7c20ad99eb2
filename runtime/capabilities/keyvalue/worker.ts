/**
 * `wasi:keyvalue@0.2.0-draft` (store, atomics, batch) for guests: every
 * call goes to the server thread's key-value capability, which checks the
 * bucket grant and keeps the data durable.
 *
 * @module
 */
import type { HostCall } from "../calls.ts";
import type { GuestSide } from "../sides.ts";

/** `wasi:keyvalue/store.bucket`: a handle naming an opened bucket. */
export class Bucket {
  constructor(readonly identifier: string, readonly call: HostCall) {}
  get(key: string) {
    return this.call("kv.get", [this.identifier, key]);
  }
  set(key: string, value: Uint8Array) {
    return this.call("kv.set", [this.identifier, key, value]);
  }
  delete(key: string) {
    return this.call("kv.delete", [this.identifier, key]);
  }
  exists(key: string) {
    return this.call("kv.exists", [this.identifier, key]);
  }
  listKeys(cursor?: bigint) {
    return this.call("kv.list", [this.identifier, cursor]);
  }
}

/** The `wasi:keyvalue/*` import objects for one guest instance. */
export const keyValueImports: GuestSide = ({ call }) => {
  return {
    "wasi:keyvalue/store": {
      Bucket,
      open: async (identifier: string) => {
        await call("kv.open", [identifier]);
        return new Bucket(identifier, call);
      },
    },
    "wasi:keyvalue/atomics": {
      increment: (bucket: Bucket, key: string, delta: bigint) =>
        call("kv.increment", [bucket.identifier, key, delta]),
    },
    "wasi:keyvalue/batch": {
      getMany: (bucket: Bucket, keys: string[]) => call("kv.getMany", [bucket.identifier, keys]),
      setMany: (bucket: Bucket, entries: [string, Uint8Array][]) =>
        call("kv.setMany", [bucket.identifier, entries]),
      deleteMany: (bucket: Bucket, keys: string[]) =>
        call("kv.deleteMany", [bucket.identifier, keys]),
    },
  };
};
