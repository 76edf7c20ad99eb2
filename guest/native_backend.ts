/**
 * The native backend of the SDK (see `backend_types.ts`): a component built
 * with `// @pier-engine native` runs as plain JavaScript on V8, in a Deno
 * process of its own (`runtime/isolation/native_child.ts`). The build puts
 * this module in place of `backend.ts`. Database, key-value and outbound
 * calls go to Pier's server process over the child's protocol; files and
 * environment variables are read here, within the process's Deno permissions.
 * Not part of the public API.
 *
 * @module
 */
import {
  type Backend,
  type ComponentCore,
  holder,
  ReadFailure,
  type TxBackend,
} from "./backend_types.ts";
import type { WitValue } from "./values.ts";

/** What the native runner gives the component when it loads it. */
export interface NativeLink {
  /** A capability call to the server process; rejects with the ABI error variant. */
  call(op: string, args: unknown[]): Promise<unknown>;
  /** Outbound HTTP through the server process's checked fetch. */
  fetch(request: Request): Promise<Response>;
  /** The granted directories: host path, guest path. */
  preopens: [string, string][];
}

/** The key of a native build's default export: attaches the runner's link, returns the core. */
export const NATIVE_EXPORT = "pierNative";

let link: NativeLink | undefined;

function linked(): NativeLink {
  if (!link) throw { tag: "other", val: "the component is not running under Pier" };
  return link;
}

/** Transactions get numbers of their own, unique in the process. */
let nextTx = 1;

/** Error codes of Deno's file errors, as WASI names them. */
const READ_CODES: Record<string, string> = {
  NotFound: "no-entry",
  NotCapable: "access",
  PermissionDenied: "access",
  IsADirectory: "is-directory",
};

/** The native backend. */
export const backend: Backend = {
  exportComponent: (core: ComponentCore) => ({
    [NATIVE_EXPORT]: (given: NativeLink) => {
      link = given;
      return core;
    },
  }),
  async begin(): Promise<TxBackend> {
    const { call } = linked();
    const id = nextTx++;
    await call("db.begin", [id]);
    return {
      query: (sql, params) => call("db.query", [id, sql, params]) as Promise<WitValue[][]>,
      execute: (sql, params) => call("db.execute", [id, sql, params]) as Promise<bigint>,
      commit: () => call("db.commit", [id]) as Promise<void>,
      rollback: () => call("db.rollback", [id]) as Promise<void>,
      close: () => {},
    };
  },
  single: {
    query: (sql, params) => linked().call("db.query", [null, sql, params]) as Promise<WitValue[][]>,
    execute: (sql, params) => linked().call("db.execute", [null, sql, params]) as Promise<bigint>,
  },
  kv: {
    get: (bucket, key) => linked().call("kv.get", [bucket, key]) as Promise<Uint8Array | undefined>,
    set: (bucket, key, value) => linked().call("kv.set", [bucket, key, value]) as Promise<void>,
    delete: (bucket, key) => linked().call("kv.delete", [bucket, key]) as Promise<void>,
    exists: (bucket, key) => linked().call("kv.exists", [bucket, key]) as Promise<boolean>,
    async list(bucket) {
      const keys: string[] = [];
      let cursor: bigint | undefined;
      do {
        const page = await linked().call("kv.list", [bucket, cursor]) as {
          keys: string[];
          cursor: bigint | undefined;
        };
        keys.push(...page.keys);
        cursor = page.cursor ?? undefined;
      } while (cursor !== undefined);
      return keys;
    },
    increment: (bucket, key, delta) =>
      linked().call("kv.increment", [bucket, key, delta]) as Promise<bigint>,
  },
  fetch: (request) => linked().fetch(request),
  async readFile(segments) {
    const best = holder(linked().preopens, segments);
    if (!best) throw new ReadFailure("no-entry");
    if (best.rest.length === 0) throw new ReadFailure("is-directory");
    try {
      return await Deno.readFile(`${best.dir}/${best.rest.join("/")}`);
    } catch (error) {
      throw new ReadFailure(READ_CODES[(error as Error).name] ?? "io");
    }
  },
  env(name) {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined; // not granted
    }
  },
  variant: (error) => error,
};
