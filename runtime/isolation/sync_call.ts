/**
 * A synchronous call from the server thread into a component worker, for
 * SQLite's scalar functions: SQLite calls them synchronously, so the server
 * thread blocks (with a time limit) on a shared buffer while the worker's
 * guest computes the value and writes it back.
 *
 * Layout (Int32 slots): [0] state, [1] call id, [2] kind, [3] byte length;
 * bytes 16..24 hold a number or bigint; the payload starts at byte 24.
 *
 * @module
 */
import type { WitValue } from "../capabilities/values.ts";

const STATE = 0;
const CALL_ID = 1;
const KIND = 2;
const LENGTH = 3;
const NUMBER_AT = 16;
const PAYLOAD_AT = 24;
/** Bytes a result may take; larger results fail the SQL call. */
export const SYNC_BUFFER_BYTES = 1024 * 1024;

const KINDS = ["null", "integer", "real", "text", "blob", "error"] as const;

/** The shared buffer both sides use. */
export function createSyncBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(PAYLOAD_AT + SYNC_BUFFER_BYTES);
}

/** Worker side: writes the result of call `callId` and wakes the server thread. */
export function writeResult(
  buffer: SharedArrayBuffer,
  callId: number,
  result: WitValue | { tag: "error"; val: string },
): void {
  const slots = new Int32Array(buffer, 0, 4);
  if (Atomics.load(slots, CALL_ID) !== callId) return; // the caller gave up on this call
  const view = new DataView(buffer);
  let bytes: Uint8Array | undefined;
  if (result.tag === "text" || result.tag === "error") bytes = new TextEncoder().encode(result.val);
  if (result.tag === "blob") bytes = result.val;
  if (bytes && bytes.byteLength > SYNC_BUFFER_BYTES) {
    return writeResult(buffer, callId, { tag: "error", val: "result larger than 1 MiB" });
  }
  if (result.tag === "integer") view.setBigInt64(NUMBER_AT, result.val, true);
  if (result.tag === "real") view.setFloat64(NUMBER_AT, result.val, true);
  if (bytes) new Uint8Array(buffer, PAYLOAD_AT, bytes.byteLength).set(bytes);
  slots[KIND] = KINDS.indexOf(result.tag);
  slots[LENGTH] = bytes?.byteLength ?? 0;
  Atomics.store(slots, STATE, 1);
  Atomics.notify(slots, STATE);
}

/** Server side: starts call `callId`; `send` must hand the call to the worker. */
export function callAndWait(
  buffer: SharedArrayBuffer,
  callId: number,
  send: () => void,
  timeoutMs: number,
): WitValue | { tag: "error"; val: string } | { tag: "timeout"; val: string } {
  const slots = new Int32Array(buffer, 0, 4);
  Atomics.store(slots, STATE, 0);
  Atomics.store(slots, CALL_ID, callId);
  send();
  if (Atomics.wait(slots, STATE, 0, timeoutMs) === "timed-out") {
    Atomics.store(slots, CALL_ID, 0);
    return { tag: "timeout", val: `no answer within ${timeoutMs} ms` };
  }
  const view = new DataView(buffer);
  const payload = () => new Uint8Array(buffer, PAYLOAD_AT, slots[LENGTH]).slice();
  switch (KINDS[slots[KIND]]) {
    case "integer":
      return { tag: "integer", val: view.getBigInt64(NUMBER_AT, true) };
    case "real":
      return { tag: "real", val: view.getFloat64(NUMBER_AT, true) };
    case "text":
      return { tag: "text", val: new TextDecoder().decode(payload()) };
    case "blob":
      return { tag: "blob", val: payload() };
    case "error":
      return { tag: "error", val: new TextDecoder().decode(payload()) };
    default:
      return { tag: "null" };
  }
}
