/**
 * The messages between the server process and a native component's process
 * (`native_host.ts` ⇄ `native_child.ts`) over the child's stdin and stdout,
 * in length-prefixed frames as the database processes' are
 * (`capabilities/database/wire.ts`), written by a {@link FrameWriter}. A
 * frame holds the message's JSON and, raw after it, its `body` bytes; only
 * the capability messages, whose values may hold integers past JSON's and
 * bytes, are tagged (see {@link tagValues}).
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
  /** A whole response; a string body goes as its UTF-8 bytes (and is read back as bytes). */
  | ({ t: "res"; id: number; body: Uint8Array<ArrayBuffer> | string | null } & ResponseHead)
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

/** `undefined`, where a caller asked {@link tagValues} to keep it (JSON drops or nulls it). */
const UNDEFINED_TAG = { $u: 1 };

/**
 * `value` with its `bigint`s as `{"$n": "..."}` and its bytes as
 * `{"$b": "<base64>"}`, for `JSON.stringify`: a copy of its arrays and plain
 * objects, the rest as it is; with `keepUndefined`, `undefined` as `{"$u": 1}`
 * (the native frames leave it to JSON). A walk in JavaScript, not a replacer: V8 calls
 * a replacer from C++ for every value (a DB read's call: 1.4 µs against
 * 0.25 µs without).
 */
export function tagValues(value: unknown, keepUndefined = false): unknown {
  if (typeof value === "bigint") return { $n: String(value) };
  if (value === undefined && keepUndefined) return UNDEFINED_TAG;
  if (typeof value !== "object" || value === null) return value;
  if (value instanceof Uint8Array) return { $b: value.toBase64() };
  if (Array.isArray(value)) return value.map((each) => tagValues(each, keepUndefined));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const tagged = tagValues((value as Record<string, unknown>)[key], keepUndefined);
    // An own `__proto__` stays a key, as JSON has it (an assignment would set the prototype).
    if (key === "__proto__") Object.defineProperty(copy, key, { value: tagged, enumerable: true });
    else copy[key] = tagged;
  }
  return copy;
}

/**
 * What {@link tagValues} tagged, back in place in `value` (parsed JSON) and
 * returned: a `{"$n": string}` object as a `bigint`, a `{"$b": string}` one
 * as bytes, with `keepUndefined` a `{"$u": 1}` as `undefined`. A walk after
 * a plain `JSON.parse`, not a reviver: a reviver
 * makes V8's parser keep every value's source text for it (a DB read's
 * reply: 13.6 µs against 1.0 µs without). Throws on a tag that does not
 * parse, and a `RangeError` on nesting deeper than the stack.
 */
export function untagValues(value: unknown, keepUndefined = false): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = untagValues(value[i], keepUndefined);
    return value;
  }
  const tagged = value as Record<string, unknown>;
  if (typeof tagged.$n === "string") return BigInt(tagged.$n);
  if (typeof tagged.$b === "string") return Uint8Array.fromBase64(tagged.$b);
  if (keepUndefined && tagged.$u === 1) return undefined;
  for (const key of Object.keys(tagged)) tagged[key] = untagValues(tagged[key], keepUndefined);
  return tagged;
}

/** Messages whose values JSON cannot all hold: only these pay for the walks of their values. */
const TAGGED = new Set(["call", "reply", "sql", "sql-result"]);

/** Bits of a frame's first word, above the JSON's length. */
const TAGGED_BIT = 0x8000_0000;
const BODY_BIT = 0x4000_0000;
const LENGTH_BITS = 0x3fff_ffff;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A writer's buffer to start with, and the largest it keeps between flushes. */
const INITIAL_BYTES = 64 * 1024;
const KEPT_BYTES = 1024 * 1024;

/**
 * Frames for one pipe, encoded straight into one buffer and written together
 * when `schedule` runs the flush: each write wakes the other side, and each
 * buffer allocated per message cost the server thread more than its JSON. A
 * frame is its length, a word of the JSON's length and flags, the JSON, and
 * the `body` bytes if the message has them (neither copied into base64 nor
 * tagged).
 */
export class FrameWriter {
  #buffer = new Uint8Array(INITIAL_BYTES);
  #view = new DataView(this.#buffer.buffer);
  #end = 0;
  #scheduled = false;

  /**
   * `write` gets the bytes of a flush, valid only during the call (an
   * asynchronous write must copy them).
   */
  constructor(
    readonly write: (bytes: Uint8Array) => void,
    readonly schedule: (flush: () => void) => void,
  ) {}

  /** Queues `message` for the next flush. */
  push(message: ToChild | FromChild): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.schedule(() => this.flush());
    }
    const body = "body" in message &&
        (message.body instanceof Uint8Array || typeof message.body === "string")
      ? message.body
      : undefined;
    const tagged = TAGGED.has(message.t);
    const plain = body === undefined ? message : { ...message, body: null };
    const json = JSON.stringify(tagged ? tagValues(plain) : plain);
    // UTF-8 takes at most three bytes per UTF-16 unit.
    const bodyRoom = typeof body === "string" ? 3 * body.length : body?.byteLength ?? 0;
    this.#reserve(8 + 3 * json.length + bodyRoom);
    const at = this.#end;
    const length = encoder.encodeInto(json, this.#buffer.subarray(at + 8)).written;
    let end = at + 8 + length;
    if (typeof body === "string") {
      end += encoder.encodeInto(body, this.#buffer.subarray(end)).written;
    } else if (body) {
      this.#buffer.set(body, end);
      end += body.byteLength;
    }
    const flags = (tagged ? TAGGED_BIT : 0) | (body === undefined ? 0 : BODY_BIT);
    this.#view.setUint32(at, end - at - 4, true);
    this.#view.setUint32(at + 4, length | flags, true);
    this.#end = end;
  }

  /** Writes what is queued now. */
  flush(): void {
    this.#scheduled = false;
    if (this.#end === 0) return;
    const bytes = this.#buffer.subarray(0, this.#end);
    this.#end = 0;
    this.write(bytes);
    // A large body's room is not kept for the small messages that follow.
    if (this.#buffer.byteLength > KEPT_BYTES) this.#grow(INITIAL_BYTES);
  }

  #reserve(bytes: number) {
    if (this.#end + bytes > this.#buffer.byteLength) {
      this.#grow(Math.max(2 * this.#buffer.byteLength, this.#end + bytes));
    }
  }

  #grow(size: number) {
    const larger = new Uint8Array(size);
    larger.set(this.#buffer.subarray(0, this.#end));
    this.#buffer = larger;
    this.#view = new DataView(larger.buffer);
  }
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

  /**
   * The next whole message, if one is buffered; throws a {@link FrameError}
   * on a malformed one. Its `body` is a view of the reader's buffer, valid
   * until the next `push`: copy it to keep it.
   */
  next(): unknown {
    const payload = this.#frames.nextPayload();
    if (payload === undefined) return undefined;
    if (payload.byteLength < 4) throw new FrameError("a frame too short for its header");
    // Little-endian, as the writer's `setUint32`; without a `DataView` per frame.
    const word = (payload[0] | payload[1] << 8 | payload[2] << 16 | payload[3] << 24) >>> 0;
    const length = word & LENGTH_BITS;
    if (4 + length > payload.byteLength) throw new FrameError("a frame shorter than its JSON");
    let message;
    try {
      const json = decoder.decode(payload.subarray(4, 4 + length));
      message = JSON.parse(json);
      if (word & TAGGED_BIT) message = untagValues(message);
    } catch (error) {
      throw new FrameError(`a frame that is not a message: ${(error as Error).message}`);
    }
    if (word & BODY_BIT) {
      if (typeof message !== "object" || message === null) {
        throw new FrameError("a body without a message");
      }
      message.body = payload.subarray(4 + length);
    }
    return message;
  }
}
