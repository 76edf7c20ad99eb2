/**
 * The messages between the server process and a native component's process
 * (`native_host.ts` ⇄ `native_child.ts`), framed as the database processes'
 * are (`capabilities/database/wire.ts`) over the child's stdin and stdout.
 * Integers past JSON's and bytes travel tagged (see {@link CODEC}). The child
 * runs hostile code: whatever it sends is checked before use (see
 * `native_host.ts`).
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { frame, type JsonCodec } from "../capabilities/database/wire.ts";

/** The child's start: which component to load, and what it sees. */
export interface ChildInit {
  t: "init";
  name: string;
  /** The component's module, a `file:` URL. */
  module: string;
  /** Granted directories: host path, guest path. */
  preopens: [string, string][];
  /** The arguments of the component's `get-manifest`. */
  manifestArgs: string;
}

/** A response head and, when `body` is there, its whole body. */
export interface ResponseHead {
  status: number;
  headers: [string, string][];
}

/** Server to child. */
export type ToChild =
  | ChildInit
  | {
    t: "req";
    id: number;
    method: string;
    url: string;
    headers: [string, string][];
    body: Uint8Array<ArrayBuffer> | null;
  }
  /** The client took `bytes` more of response `id`'s body. */
  | { t: "credit"; id: number; bytes: number }
  /** The server no longer wants response `id`. */
  | { t: "cancel"; id: number }
  | { t: "reply"; callId: number; ok: true; value: unknown }
  | { t: "reply"; callId: number; ok: false; error: unknown }
  | { t: "sql"; callId: number; name: string; args: unknown[] };

/** Child to server. */
export type FromChild =
  | { t: "ready"; manifest: string }
  | { t: "init-failed"; error: string }
  /** A whole response. */
  | ({ t: "res"; id: number; body: Uint8Array<ArrayBuffer> | null } & ResponseHead)
  /** A streamed response's head; `chunk`s and `end` follow. */
  | ({ t: "head"; id: number } & ResponseHead)
  | { t: "chunk"; id: number; bytes: Uint8Array }
  | { t: "end"; id: number }
  | { t: "failed"; id: number; error: string }
  /** A capability call (`capabilities/calls.ts`) on behalf of request `requestId`. */
  | { t: "call"; callId: number; requestId: number; op: string; args: unknown[] }
  /** An outbound request on behalf of request `requestId`; the reply is an {@link OutboundAnswer}. */
  | {
    t: "fetch";
    callId: number;
    requestId: number;
    method: string;
    url: string;
    headers: [string, string][];
    body: Uint8Array<ArrayBuffer> | null;
  }
  | { t: "sql-result"; callId: number; ok: true; value: unknown }
  | { t: "sql-result"; callId: number; ok: false; error: string }
  | { t: "log"; stream: "out" | "err"; line: string };

/** The answer to an outbound request: the whole response. */
export interface OutboundAnswer extends ResponseHead {
  body: Uint8Array<ArrayBuffer>;
}

/** Requests the child's own calls act for (its manifest, SQL functions, module top level). */
export const OWN_REQUEST = -1;

/** The largest frame the server takes from a child: a bigger one kills the child. */
export const MAX_CHILD_FRAME = 32 * 1024 * 1024;

/** Response body bytes a child may send ahead of what the client took. */
export const BODY_WINDOW = 1024 * 1024;

/** Tags `bigint`s as `{"$n": "..."}` and bytes as `{"$b": "<base64>"}`. */
export const CODEC: JsonCodec = {
  replacer: (_key, value) =>
    typeof value === "bigint"
      ? { $n: String(value) }
      : value instanceof Uint8Array
      ? { $b: value.toBase64() }
      : value,
  reviver: (_key, value) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
    const tagged = value as { $n?: unknown; $b?: unknown };
    if (typeof tagged.$n === "string") return BigInt(tagged.$n);
    if (typeof tagged.$b === "string") return Uint8Array.fromBase64(tagged.$b);
    return value;
  },
};

/**
 * Frames messages for one pipe: a turn's messages go out in one write (one
 * wake-up of the other side for many requests).
 */
export class FrameBatch<M> {
  #queued: Uint8Array[] = [];

  constructor(readonly write: (bytes: Uint8Array) => void) {}

  /** Queues `message` for the end of this turn. */
  push(message: M): void {
    if (this.#queued.length === 0) queueMicrotask(() => this.#flush());
    this.#queued.push(frame(message, CODEC));
  }

  #flush() {
    const frames = this.#queued;
    this.#queued = [];
    this.write(concatBytes(frames));
  }
}
