/**
 * The component process's side of the native engine
 * (`runtime/isolation/native_child.ts`, `native_protocol.ts`): the fourth
 * round made its request path cheaper (the `Request` built from only what a
 * request has, the handler run without an `async` frame, whole answers sent
 * without one) and tags capability values by a walk instead of JSON's
 * replacer and reviver. What a handler sees, how each kind of failure ends,
 * and which values cross the frames must not change: a real Pier serving
 * `tests/fixtures/native_child.ts`, and the frames read back directly.
 */
import assert from "node:assert/strict";
import { FrameError } from "../runtime/capabilities/database/wire.ts";
import {
  FrameWriter,
  type FromChild,
  NativeFrameReader,
  tagValues,
  type ToChild,
  untagValues,
} from "../runtime/isolation/native_protocol.ts";
import { startPier } from "./harness.ts";
import { buildNative } from "./native_harness.ts";

Deno.test("native child: requests as handlers see them, failures, tagged values", async (t) => {
  const componentsDir = await buildNative(["native_child"]);
  await Deno.writeTextFile(
    `${componentsDir}/native_child.permissions.json`,
    JSON.stringify({ db: "read", kv: ["child"] }),
  );
  const pier = await startPier({ componentsDir });
  try {
    await t.step("each method, with and without a body, as the client sent it", async () => {
      for (
        const [method, body] of [
          ["GET", null],
          ["DELETE", null],
          ["POST", null],
          ["POST", "posted é"],
          ["PUT", "put"],
          ["PATCH", ""],
        ] as const
      ) {
        const response = await pier.fetch("/child/seen?a=1&b=%20", {
          method,
          body,
          headers: { "x-one": "1", "x-two": "two, too" },
        });
        assert.equal(response.status, 200, method);
        const seen = await response.json();
        assert.equal(seen.method, method);
        assert.match(seen.url, /\/child\/seen\?a=1&b=%20$/);
        // Without a body, a GET's is none; other methods' may arrive empty, as before.
        if (method === "GET") assert.equal(seen.body, null);
        else assert.equal(seen.body ?? "", body ?? "", `${method} ${body}`);
        const headers = new Map<string, string>(seen.headers);
        assert.equal(headers.get("x-one"), "1");
        assert.equal(headers.get("x-two"), "two, too");
        assert.equal(
          headers.has("__context"),
          false,
          "Pier's context is not a header the guest sees",
        );
        assert.match(headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
      }
    });

    await t.step("a HEAD request reaches the GET route as a GET", async () => {
      const response = await pier.fetch("/child/seen", { method: "HEAD" });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "");
    });

    await t.step(
      "a handler that throws, rejects or answers no Response: 500, and serving on",
      async () => {
        for (const path of ["/child/throws", "/child/rejects", "/child/not-a-response"]) {
          const response = await pier.fetch(path, {
            headers: { "x-request-id": `id${path.replaceAll("/", "-")}` },
          });
          await response.body?.cancel();
          assert.equal(response.status, 500, path);
          assert.equal(response.headers.get("x-request-id"), `id${path.replaceAll("/", "-")}`);
        }
        assert.equal((await pier.fetch("/child/seen")).status, 200);
      },
    );

    await t.step("64-bit integers, bytes and tag-like text through the call frames", async () => {
      const response = await pier.fetch("/child/values");
      assert.equal(response.status, 200);
      const bytes = Array.from({ length: 256 }, (_, i) => i).join(",");
      assert.deepEqual(await response.json(), {
        row: [
          `bigint:${2n ** 62n + 1n}`,
          `bigint:${-(2n ** 63n)}`,
          "bigint:9007199254740993",
          7,
          1.5,
          '{"$n":"1"}',
          `bytes:${bytes}`,
        ],
        kept: bytes,
        counted: String(2n ** 60n),
      });
    });
  } finally {
    await pier.stop();
  }
});

/** `message` written by a {@link FrameWriter} and read back. */
function roundTrip(message: ToChild | FromChild): unknown {
  let written = new Uint8Array(0);
  const writer = new FrameWriter((bytes) => written = bytes.slice(), () => {});
  writer.push(message);
  writer.flush();
  const reader = new NativeFrameReader(1024 * 1024);
  reader.push(written);
  return reader.next();
}

Deno.test("native frames: tagged values come back as they were, the sender's untouched", () => {
  const args = [
    { tag: "integer", val: 2n ** 63n - 1n },
    { tag: "blob", val: new Uint8Array([0, 255, 7]) },
    { nested: [[-(2n ** 63n)], { key: [1n, new Uint8Array(0)] }] },
    null,
    "text",
  ];
  const message = { t: "call", callId: 1, requestId: 2, op: "db.query", args } as const;
  assert.deepEqual(roundTrip(message), message);
  // The walk copies: the caller's values stay bigints and bytes.
  assert.equal((args[0] as { val: unknown }).val, 2n ** 63n - 1n);
  assert.ok((args[1] as { val: unknown }).val instanceof Uint8Array);
});

Deno.test("native frames: an own __proto__ key stays a key, both ways", () => {
  const parsed = JSON.parse('{"__proto__": {"$n": "5"}, "x": {"$b": "AQI="}}');
  const untagged = untagValues(parsed) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(untagged), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(untagged, "__proto__")?.value, 5n);
  assert.deepEqual(untagged.x, new Uint8Array([1, 2]));
  const tagged = tagValues(untagged) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(tagged), Object.prototype);
  assert.equal(JSON.stringify(tagged), '{"__proto__":{"$n":"5"},"x":{"$b":"AQI="}}');
});

Deno.test("native frames: a tag that does not parse, or nesting past the stack, is a FrameError", () => {
  /** A tagged frame (flags word bit 31) of `json`. */
  const tagged = (json: string) => {
    const text = new TextEncoder().encode(json);
    const frame = new Uint8Array(8 + text.byteLength);
    const view = new DataView(frame.buffer);
    view.setUint32(0, 4 + text.byteLength, true);
    view.setUint32(4, text.byteLength | 0x8000_0000, true);
    frame.set(text, 8);
    return frame;
  };
  const deep = '{"t":"reply","callId":1,"ok":true,"value":' + "[".repeat(200_000) +
    "]".repeat(200_000) + "}";
  for (
    const json of [
      '{"t":"reply","callId":1,"ok":true,"value":{"$n":"12x"}}',
      '{"t":"reply","callId":1,"ok":true,"value":{"$b":"not base64!"}}',
      deep,
    ]
  ) {
    const reader = new NativeFrameReader(4 * 1024 * 1024);
    reader.push(tagged(json));
    assert.throws(() => reader.next(), FrameError, json.slice(0, 60));
  }
});
