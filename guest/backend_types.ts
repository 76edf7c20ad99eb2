/**
 * The seam between the SDK and the engine it runs on. Every public SDK module
 * (`mod.ts`, `db.ts`, `kv.ts`, `fetch.ts`, `fs.ts`, `env.ts`) reaches its
 * engine only through `backend.ts`, which the build picks per engine: the
 * WebAssembly backend (`backend.ts`, WASI imports) or the native one
 * (`native_backend.ts`, Pier's process protocol). Not part of the public API.
 *
 * @module
 */
import type { WitValue } from "./values.ts";

/** The `__context` header as the host sends it with every request. */
export interface RawContext {
  kind: "Http" | "Job";
  registered_path: string;
  path_params: [string, string][];
  user: { id: string; email: string; username?: string | null; csrf_token?: string | null } | null;
}

/** A component as `defineComponent` makes it, whatever the engine. */
export interface ComponentCore {
  /** The manifest JSON for `get-manifest`'s arguments. */
  manifest(args: string): string;
  /** Answers a route or job request. */
  handle(request: Request, context: RawContext): Promise<Response>;
  /** Runs SQL function `name`; throws the ABI error variant. */
  sqlFunction(name: string, args: WitValue[]): WitValue;
}

/** One database transaction; failures reject with the host's error variant. */
export interface TxBackend {
  query(sql: string, params: WitValue[]): Promise<WitValue[][]>;
  execute(sql: string, params: WitValue[]): Promise<bigint>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** Frees the transaction (after commit or rollback). */
  close(): void;
}

/** Key-value calls on bucket `bucket`; failures reject with the store's error variant. */
export interface KvBackend {
  get(bucket: string, key: string): Promise<Uint8Array | undefined>;
  set(bucket: string, key: string, value: Uint8Array): Promise<void>;
  delete(bucket: string, key: string): Promise<void>;
  exists(bucket: string, key: string): Promise<boolean>;
  list(bucket: string): Promise<string[]>;
  increment(bucket: string, key: string, delta: bigint): Promise<bigint>;
}

/** What an engine gives the SDK. */
export interface Backend {
  /** The entry's default export for this engine, made of `core`. */
  exportComponent(core: ComponentCore): unknown;
  /** Begins a transaction. */
  begin(): Promise<TxBackend>;
  /**
   * Statements outside a transaction, one call each, where the engine has
   * them (else `db` wraps each in a transaction of its own).
   */
  single?: Pick<TxBackend, "query" | "execute">;
  kv: KvBackend;
  /** Outbound HTTP through the host; rejects with a `TypeError` naming the reason. */
  fetch(request: Request): Promise<Response>;
  /**
   * The bytes of the file at `segments` (a checked guest path, `..` refused)
   * in the granted directories; rejects with an error whose `code` is the
   * host's reason (`no-entry`, `access`, `is-directory`, ...).
   */
  readFile(segments: string[], path: string): Promise<Uint8Array>;
  /** The value of granted environment variable `name`, if set. */
  env(name: string): string | undefined;
  /** The error variant (`{ tag, val }`) carried by a failed call's error. */
  variant(error: unknown): unknown;
}

/** A failed file read: `code` names the host's reason. */
export class ReadFailure extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

/**
 * The directory among `dirs` (each with its guest path) that holds the file at
 * `wanted`, and the file's path inside it: the longest matching prefix wins.
 */
export function holder<D>(
  dirs: [D, string][],
  wanted: string[],
): { dir: D; rest: string[] } | undefined {
  let best: { dir: D; rest: string[] } | undefined;
  for (const [dir, name] of dirs) {
    const prefix = name.split("/").filter((part) => part !== "" && part !== ".");
    const matches = prefix.length <= wanted.length && prefix.every((part, i) => wanted[i] === part);
    if (matches && (!best || wanted.length - prefix.length < best.rest.length)) {
      best = { dir, rest: wanted.slice(prefix.length) };
    }
  }
  return best;
}

/** A variant's tag and payload, for messages (`HTTP-request-denied`, `other: ...`). */
export function describeVariant(value: unknown): string {
  const variant = value as { tag?: unknown; val?: unknown } | undefined;
  if (typeof variant?.tag !== "string") return String(value);
  const val = variant.val;
  if (val === undefined || val === null) return variant.tag;
  return `${variant.tag}: ${typeof val === "object" ? JSON.stringify(val) : String(val)}`;
}
