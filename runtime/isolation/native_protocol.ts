/**
 * The messages between the server process and a native component's process
 * (`native_host.ts` ⇄ `native_child.ts`) over the child's stdin and stdout,
 * in length-prefixed frames as the database processes' are
 * (`capabilities/database/wire.ts`). A frame holds the message's JSON and,
 * raw after it, its `body` bytes; only the capability messages, whose values
 * may hold integers past JSON's and bytes, are tagged (see {@link CODEC}).
 * The child runs hostile code: whatever it sends is checked before use (see
 * `native_host.ts`).
 *
 * @module
 */
import { FrameError, FrameReader } from "../capabilities/database/wire.ts";

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
  | { t: "chunk"; id: number; body: Uint8Array }
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

/** JSON's replacer and reviver, for values JSON has no form of (see `JSON.stringify`). */
export interface JsonCodec {
  replacer: (key: string, value: unknown) => unknown;
  reviver: (key: string, value: unknown) => unknown;
}

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

/** Messages whose values JSON cannot all hold: only these pay for the codec's calls per value. */
const TAGGED = new Set(["call", "reply", "sql", "sql-result"]);

/** Bits of a frame's first word, above the JSON's length. */
const TAGGED_BIT = 0x8000_0000;
const BODY_BIT = 0x4000_0000;
const LENGTH_BITS = 0x3fff_ffff;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * `message` as a frame: its length, then a word of the JSON's length and
 * flags, the JSON, and the `body` bytes if it has them (neither copied into
 * base64 nor read back through the codec).
 */
export function nativeFrame(message: ToChild | FromChild): Uint8Array {
  const body = "body" in message && message.body instanceof Uint8Array ? message.body : undefined;
  const tagged = TAGGED.has(message.t);
  const json = encoder.encode(
    JSON.stringify(
      body ? { ...message, body: null } : message,
      tagged ? CODEC.replacer : undefined,
    ),
  );
  const tail = body?.byteLength ?? 0;
  const out = new Uint8Array(8 + json.byteLength + tail);
  const view = new DataView(out.buffer);
  view.setUint32(0, 4 + json.byteLength + tail, true);
  view.setUint32(4, json.byteLength | (tagged ? TAGGED_BIT : 0) | (body ? BODY_BIT : 0), true);
  out.set(json, 8);
  if (body) out.set(body, 8 + json.byteLength);
  return out;
}

/** Cuts the bytes of a pipe into messages of {@link nativeFrame}'s form. */
export class NativeFrameReader {
  readonly #frames: FrameReader;

  /** From a peer that may be hostile, give it `maxBytes` (see {@link FrameReader}). */
  constructor(maxBytes = Infinity) {
    this.#frames = new FrameReader(maxBytes);
  }

  /** Adds bytes read from the pipe. */
  push(bytes: Uint8Array): void {
    this.#frames.push(bytes);
  }

  /** The next whole message, if one is buffered; throws a {@link FrameError} on a malformed one. */
  next(): unknown {
    const payload = this.#frames.nextPayload();
    if (payload === undefined) return undefined;
    if (payload.byteLength < 4) throw new FrameError("a frame too short for its header");
    const word = new DataView(payload.buffer, payload.byteOffset).getUint32(0, true);
    const length = word & LENGTH_BITS;
    if (4 + length > payload.byteLength) throw new FrameError("a frame shorter than its JSON");
    let message;
    try {
      const json = decoder.decode(payload.subarray(4, 4 + length));
      message = JSON.parse(json, word & TAGGED_BIT ? CODEC.reviver : undefined);
    } catch (error) {
      throw new FrameError(`a frame that is not a message: ${(error as Error).message}`);
    }
    if (word & BODY_BIT) {
      if (typeof message !== "object" || message === null) {
        throw new FrameError("a body without a message");
      }
      message.body = payload.slice(4 + length);
    }
    return message;
  }
}
