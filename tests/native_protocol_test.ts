/**
 * The native engine's frames (`runtime/isolation/native_protocol.ts`): what
 * one side writes the other reads back whole, bodies travel raw, and a frame
 * a hostile child makes up is an error, never a message.
 */
import assert from "node:assert/strict";
import { FrameError } from "../runtime/capabilities/database/wire.ts";
import {
  FrameWriter,
  type FromChild,
  NativeFrameReader,
  type ToChild,
} from "../runtime/isolation/native_protocol.ts";

/** The frames of `messages` as one write of a {@link FrameWriter}. */
function nativeFrames(...messages: (ToChild | FromChild)[]): Uint8Array {
  let written = new Uint8Array(0);
  const writer = new FrameWriter((bytes) => written = bytes.slice(), () => {});
  for (const message of messages) writer.push(message);
  writer.flush();
  return written;
}

/** The messages `bytes` holds, read in pieces of `step` bytes. */
function readAll(bytes: Uint8Array, step = bytes.byteLength): unknown[] {
  const reader = new NativeFrameReader(1024 * 1024);
  const out: unknown[] = [];
  for (let at = 0; at < bytes.byteLength; at += step) {
    reader.push(bytes.subarray(at, at + step));
    for (let message = reader.next(); message !== undefined; message = reader.next()) {
      // A body is the reader's until its next push.
      const { body } = message as { body?: unknown };
      out.push(body instanceof Uint8Array ? { ...message as object, body: body.slice() } : message);
    }
  }
  return out;
}

/** A frame of a made-up payload: length, then `payload`. */
function rawFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.byteLength);
  new DataView(out.buffer).setUint32(0, payload.byteLength, true);
  out.set(payload, 4);
  return out;
}

Deno.test("native frames: messages and their bodies come back whole, read in any pieces", () => {
  const body = new Uint8Array(70_000).map((_, i) => i % 251);
  const messages: (ToChild | FromChild)[] = [
    { t: "req", id: 1, method: "POST", url: "http://x/a", headers: [["a", "b"]], body },
    { t: "req", id: 2, method: "GET", url: "http://x/b", headers: [], body: null },
    { t: "chunk", id: 1, body: new Uint8Array(0) },
    { t: "call", callId: 3, requestId: 1, op: "db.query", args: [null, "SELECT ?", [2n ** 70n]] },
    { t: "reply", callId: 3, ok: true, value: [[new Uint8Array([1, 2, 3]), 9007199254740993n]] },
  ];
  const bytes = nativeFrames(...messages);
  for (const step of [bytes.byteLength, 4096, 7, 1]) {
    assert.deepEqual(readAll(bytes, step), messages);
  }
});

Deno.test("native frames: only capability messages are tagged; a body is never base64", () => {
  const text = (message: ToChild | FromChild) => new TextDecoder().decode(nativeFrames(message));
  const body = new TextEncoder().encode("raw-body-bytes");
  assert.deepEqual(
    text({ t: "res", id: 1, status: 200, headers: [], body }).includes("raw-body-bytes"),
    true,
  );
  // A guest's header that looks like a tag stays a string in a plain message.
  const [request] = readAll(nativeFrames({
    t: "req",
    id: 1,
    method: "GET",
    url: "http://x/",
    headers: [["x", '{"$n":"1"}']],
    body: null,
  })) as Extract<ToChild, { t: "req" }>[];
  assert.deepEqual(request.headers, [["x", '{"$n":"1"}']]);
  const [log] = readAll(nativeFrames({ t: "log", stream: "out", line: "x" }));
  assert.deepEqual(log, { t: "log", stream: "out", line: "x" });
});

Deno.test("native frames: a made-up frame is an error, not a message", () => {
  const header = (word: number) => {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, word, true);
    return out;
  };
  const json = new TextEncoder().encode('{"t":"end","id":1}');
  const cases: [string, Uint8Array][] = [
    ["shorter than its header", rawFrame(new Uint8Array(2))],
    ["JSON past the frame's end", rawFrame(new Uint8Array([...header(1000), ...json]))],
    ["not JSON", rawFrame(new Uint8Array([...header(3), 1, 2, 3]))],
    ["a body for no object", rawFrame(new Uint8Array([...header(1 | 0x4000_0000), 0x37]))],
  ];
  for (const [what, frame] of cases) {
    assert.throws(() => readAll(frame), FrameError, what);
  }
  // Longer than the reader takes: refused before its bytes are kept.
  assert.throws(() => readAll(header(2 * 1024 * 1024)), FrameError);
});
