/**
 * Messages between the server thread and a component's worker.
 *
 * @module
 */
import type { Args, Op } from "../capabilities/calls.ts";
import type { WitValue } from "../capabilities/values.ts";
import type { Batch } from "./outbox.ts";
import type { OutboundShare } from "./outbound_slots.ts";
import { tagValues, untagValues } from "./native_protocol.ts";
import type { HeadCodec, RingRecord } from "./ring.ts";
import type { NetRule } from "../permissions.ts";
import type { Preopen } from "../capabilities/filesystem/mod.ts";
import type { LogFormat } from "../log.ts";

/** What a worker needs to run one compiled component. */
export interface WorkerInit {
  type: "init";
  name: string;
  /** `file:` URL of jco's generated `component.js`. */
  glueUrl: string;
  /** Directory holding the core `.wasm` modules next to the glue. */
  coreDir: string;
  /** Environment variables granted to the component, with their values. */
  env: [string, string][];
  /** Hosts the component may call. */
  net: NetRule[];
  /** Directories the guest sees read-only. */
  preopens: Preopen[];
  /** Cap on each guest instance's linear memory. */
  memoryMb: number;
  /**
   * The core modules, compiled with that cap, by file name; the worker
   * compiles any other itself.
   */
  modules?: Record<string, WebAssembly.Module>;
  /** Instances kept for reuse when idle. */
  maxIdleInstances: number;
  /**
   * The request id the worker's own calls (the manifest, SQL functions) use
   * for capability calls; unique among the component's workers.
   */
  ownRequestId: number;
  /** JSON sent to `init-endpoint.get-manifest`. */
  manifestArgs: string;
  /** The rings (see `ring.ts`) for requests to the worker and whole responses from it. */
  rings: { requests: SharedArrayBuffer; responses: SharedArrayBuffer };
  /** The component's count of outbound requests in flight (see `outbound_slots.ts`). */
  outbound: OutboundShare;
  /** This worker's own part of that count. */
  outboundHeld: SharedArrayBuffer;
  /** The component's counts of fetch and filesystem calls (see `metrics.ts`'s `GuestCounts`). */
  guestCounts: SharedArrayBuffer;
  /** How the guests' output lines are logged. */
  logFormat: LogFormat;
}

/** A call of one of the component's SQL functions; answered by a `sql-result` message. */
export interface WorkerSqlFunction {
  type: "sql-function";
  callId: number;
  name: string;
  args: WitValue[];
}

/** A request for the component's `incoming-handler`. */
export interface WorkerRequest {
  type: "request";
  id: number;
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array | null;
}

/** The server no longer wants the answer to request `id`. */
export interface WorkerCancel {
  type: "cancel";
  id: number;
}

/** The client took `bytes` more of request `id`'s response body: the guest may write that much more. */
export interface WorkerCredit {
  type: "credit";
  id: number;
  bytes: number;
}

/** The answer to a capability call. */
export type WorkerReply =
  | { type: "reply"; callId: number; ok: true; value: unknown }
  | { type: "reply"; callId: number; ok: false; error: unknown };

/** One message from the server thread to the worker. */
export type ServerMessage =
  | WorkerInit
  | WorkerRequest
  | WorkerCancel
  | WorkerCredit
  | WorkerReply
  | WorkerSqlFunction;

/** Server thread to worker: one message, or the messages one turn produced. */
export type ToWorker = Batch<ServerMessage>;

/** A capability call from the guest serving request `requestId` (or the worker's own id). */
export interface CapabilityCall<O extends Op = Op> {
  type: "call";
  callId: number;
  requestId: number;
  /**
   * The call of the same request made just before this one (0: none, or its
   * worker no longer knows): the server answers this one after that one.
   * Calls travel on the ring or, when they do not fit, by `postMessage`: two
   * ways that may overtake each other.
   */
  after: number;
  op: O;
  args: Args<O>;
}

/** One message from the worker to the server thread. */
export type WorkerMessage =
  | { type: "ready"; manifest: string; ms: number }
  | { type: "init-failed"; error: string }
  | { type: "head"; id: number; status: number; headers: [string, string][] }
  | { type: "chunk"; id: number; bytes: Uint8Array }
  | { type: "end"; id: number }
  /** A whole response: what `head`, `chunk`s and `end` in one batch become. */
  | { type: "response"; id: number; status: number; headers: [string, string][]; body: Uint8Array }
  | { type: "failed"; id: number; error: string; detail: string }
  /** The interrupt flags of a guest instance (none: the instance is gone). */
  | { type: "interrupt-flags"; instance: number; flags: SharedArrayBuffer[] }
  /** The value of SQL function call `callId`, or the guest's error. */
  | { type: "sql-result"; callId: number; result: WitValue | { tag: "error"; val: string } }
  | CapabilityCall;

/**
 * Worker to server thread: the messages one turn of the worker's event loop
 * produced, posted together.
 */
export type FromWorker = Batch<WorkerMessage>;

/**
 * Bodies from this size move to the other thread instead of being copied:
 * moving a buffer costs more than copying a small one.
 */
const MOVE_MIN_BYTES = 64 * 1024;

/** The buffer of `bytes` if it should move rather than be copied (see {@link MOVE_MIN_BYTES}). */
export function movable(bytes: Uint8Array | null | undefined): ArrayBuffer | undefined {
  // Only a buffer the bytes own whole moves; a view into a larger one is copied.
  return bytes && bytes.byteLength >= MOVE_MIN_BYTES && bytes.byteOffset === 0 &&
      bytes.byteLength === bytes.buffer.byteLength
    ? bytes.buffer as ArrayBuffer
    : undefined;
}

/** A whole response, as the worker sends it. */
export type WholeResponse = Extract<WorkerMessage, { type: "response" }>;

/**
 * The rings carry two kinds of record each way. To the worker: requests, and
 * (tagged) capability replies; from the worker: whole responses, and (tagged)
 * capability calls. Tagged heads go through this codec: bigints, bytes and
 * `undefined` as JSON has no form of them.
 */
export const RING_CODEC: HeadCodec = {
  tag: (head) => tagValues(head, true),
  untag: (parsed) => untagValues(parsed, true),
};

/** The ring record (tagged) of a capability call. */
export function callRecord(call: CapabilityCall): unknown {
  return [call.callId, call.requestId, call.after, call.op, call.args];
}

/** The capability call a tagged ring record holds. */
export function callFromRecord({ head }: RingRecord): CapabilityCall {
  const [callId, requestId, after, op, args] = head as [number, number, number, Op, Args<Op>];
  return { type: "call", callId, requestId, after, op, args };
}

/** The ring record (tagged) of a capability call's answer. */
export function replyRecord(reply: WorkerReply): unknown {
  return [reply.callId, reply.ok, reply.ok ? reply.value : reply.error];
}

/** The answer a tagged ring record holds. */
export function replyFromRecord({ head }: RingRecord): WorkerReply {
  const [callId, ok, value] = head as [number, boolean, unknown];
  return ok ? { type: "reply", callId, ok, value } : { type: "reply", callId, ok, error: value };
}

/** The ring record of a request: its head and its body. */
export function requestRecord(request: WorkerRequest): [unknown, Uint8Array | null] {
  const { id, method, url, headers, body } = request;
  return [[id, method, url, headers, body !== null], body];
}

/** The request a ring record holds. */
export function requestFromRecord({ head, body }: RingRecord): WorkerRequest {
  const [id, method, url, headers, hasBody] = head as [
    number,
    string,
    string,
    [string, string][],
    boolean,
  ];
  return { type: "request", id, method, url, headers, body: hasBody ? body : null };
}

/** The ring record of a whole response. */
export function responseRecord(response: WholeResponse): [unknown, Uint8Array] {
  const { id, status, headers, body } = response;
  return [[id, status, headers], body];
}

/** The whole response a ring record holds. */
export function responseFromRecord({ head, body }: RingRecord): WholeResponse {
  const [id, status, headers] = head as [number, number, [string, string][]];
  return { type: "response", id, status, headers, body };
}
