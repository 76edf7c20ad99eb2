/**
 * What the server process and its database processes (`child.ts`) say to
 * each other over the child's stdin and stdout: length-prefixed JSON frames,
 * with SQLite values tagged so that 64-bit integers and blobs stay exact.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { SQLInputValue, SQLOutputValue } from "node:sqlite";
import { concatBytes } from "../../bytes.ts";

/** A SQLite value in a frame: integers and blobs tagged, JSON's own types as they are. */
export type WireValue = null | string | number | { i: string } | { b: string } | { r: string };

/** A value for a frame. */
export function encodeValue(value: SQLInputValue | SQLOutputValue): WireValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "bigint") return { i: String(value) };
  // JSON has no Infinity or NaN.
  if (typeof value === "number") return Number.isFinite(value) ? value : { r: String(value) };
  if (typeof value === "string") return value;
  return { b: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
}

/** A value from a frame. */
export function decodeValue(value: WireValue): SQLOutputValue {
  if (value === null || typeof value !== "object") return value;
  if ("i" in value) return BigInt(value.i);
  if ("r" in value) return Number(value.r);
  return new Uint8Array(Buffer.from(value.b, "base64"));
}

/** A statement's rows in a frame. */
export type WireRows = WireValue[][];

/** A function the database processes register on their connection. */
export interface FunctionSpec {
  name: string;
  /** -1: any number. */
  numArgs: number;
  deterministic: boolean;
  directOnly: boolean;
}

/** Server to database process: one request, answered in order by a {@link Reply}. */
export type Request =
  | { op: "functions"; functions: FunctionSpec[] }
  | { op: "commit" | "rollback" }
  | {
    op: "run";
    sql: string;
    params: WireValue[];
    mode: "query" | "execute";
    /** True for a transaction's first statement: BEGIN, then the statement (one round trip). */
    begin: boolean;
    /** The read transaction left on the connection ends (COMMIT) first. */
    endFirst?: boolean;
    /** False: the statement runs on its own and must not leave a transaction open. */
    inTransaction: boolean;
  };

/** Database process to server: the answer to the oldest request not yet answered. */
export type Reply = { ok: true; value?: WireRows | WireValue } | { ok: false; error: string };

/** Database process to server, while a statement runs: call a component's SQL function. */
export interface FunctionCall {
  op: "call";
  name: string;
  args: WireValue[];
}

/** Server to database process: the result of the pending {@link FunctionCall}. */
export type FunctionResult = { op: "result"; ok: true; value: WireValue } | {
  op: "result";
  ok: false;
  error: string;
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A message as a frame: its JSON's byte length (4 bytes, little-endian), then the JSON. */
export function frame(message: unknown): Uint8Array {
  const json = encoder.encode(JSON.stringify(message));
  const out = new Uint8Array(4 + json.byteLength);
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 4);
  return out;
}

/**
 * The chunks of the byte stream `stream`, each read into the buffer the one
 * before it was read into: the default reader allocates a 64 KiB buffer for
 * every read, and that garbage, one buffer per answer of a database process,
 * was a third of the V8 threads' work under a transaction per request. A
 * chunk is valid until the next one is asked for. Leaving the loop early
 * cancels the stream, as the default reader's iterator does.
 */
export async function* reusedChunks(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = stream.getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(64 * 1024);
  let ended = false;
  try {
    for (;;) {
      const read = await reader.read(new Uint8Array(buffer));
      if (read.done) {
        ended = true;
        return;
      }
      yield read.value;
      buffer = read.value.buffer;
    }
  } finally {
    if (!ended) reader.cancel().catch(() => {});
  }
}

/** A frame that cannot be a message: longer than the reader's bound, or not JSON. */
export class FrameError extends Error {}

/**
 * Cuts a byte stream into messages. From a peer that may be hostile, give it
 * `maxBytes`: a longer frame is a {@link FrameError} before its bytes are kept.
 */
export class FrameReader {
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  constructor(readonly maxBytes = Infinity) {}

  /** Adds bytes read from the stream. */
  push(bytes: Uint8Array): void {
    this.#reserve(bytes.byteLength);
    this.#buffer.set(bytes, this.#end);
    this.#end += bytes.byteLength;
  }

  /** Room for `bytes` more at the end; `into` reads into it, returns how many it read. */
  fill(bytes: number, into: (room: Uint8Array) => number | null): number | null {
    this.#reserve(bytes);
    const read = into(this.#buffer.subarray(this.#end, this.#end + bytes));
    if (read) this.#end += read;
    return read;
  }

  /** The next whole message, if one is buffered. */
  next(): unknown {
    const payload = this.nextPayload();
    if (payload === undefined) return undefined;
    try {
      return JSON.parse(decoder.decode(payload));
    } catch (error) {
      throw new FrameError(`a frame that is not a message: ${(error as Error).message}`);
    }
  }

  /**
   * The next whole frame's bytes, if one is buffered, for a reader that
   * decodes them itself; they stay valid until the next `push` or `fill`.
   */
  nextPayload(): Uint8Array | undefined {
    if (this.#end - this.#start < 4) return undefined;
    const length = new DataView(this.#buffer.buffer, this.#start).getUint32(0, true);
    if (length > this.maxBytes) {
      throw new FrameError(`a frame of ${length} bytes (at most ${this.maxBytes})`);
    }
    if (this.#end - this.#start < 4 + length) return undefined;
    const payload = this.#buffer.subarray(this.#start + 4, this.#start + 4 + length);
    this.#start += 4 + length;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return payload;
  }

  #reserve(bytes: number) {
    if (this.#end + bytes <= this.#buffer.byteLength) return;
    const used = this.#end - this.#start;
    if (used + bytes <= this.#buffer.byteLength) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
    } else {
      const larger = new Uint8Array((used + bytes) * 2);
      larger.set(this.#buffer.subarray(this.#start, this.#end));
      this.#buffer = larger;
    }
    this.#start = 0;
    this.#end = used;
  }
}

/**
 * Frames for one pipe, written together: each write wakes the other side,
 * so the frames queued until `schedule` runs the flush go out in one write.
 */
export class FrameBatch {
  #queued: Uint8Array[] = [];

  constructor(
    readonly write: (bytes: Uint8Array) => void,
    readonly schedule: (flush: () => void) => void,
  ) {}

  /** Queues `frame` for the next flush. */
  push(frame: Uint8Array): void {
    if (this.#queued.length === 0) this.schedule(() => this.flush());
    this.#queued.push(frame);
  }

  /** Writes what is queued now. */
  flush(): void {
    const frames = this.#queued;
    if (frames.length === 0) return;
    this.#queued = [];
    this.write(frames.length === 1 ? frames[0] : concatBytes(frames));
  }

  /** Drops what is queued (its reader is gone). */
  clear(): void {
    this.#queued = [];
  }
}
