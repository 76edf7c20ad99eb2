/**
 * The native engine's request path (`runtime/isolation/native_host.ts`,
 * `native_child.ts`, `native_protocol.ts`, `runtime/server.ts`): frames are
 * written from one reused buffer per pipe and bodies are read as views of the
 * reader's buffer, so many responses in flight at once, of every size, must
 * each arrive whole and unmixed; the response's `x-request-id` is Pier's
 * alone, whatever the guest set. A real Pier serving
 * `tests/fixtures/native_path.ts`.
 */
import assert from "node:assert/strict";
import { type Pier, startPier } from "./harness.ts";
import { buildNative } from "./native_harness.ts";

/** The bytes `GET /path/bytes/{size}` answers (as the fixture makes them). */
function pattern(size: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(size).map((_, i) => (i * 7 + size) % 251);
}

Deno.test("native request path: bodies in flight together, ids", async (t) => {
  const componentsDir = await buildNative(["native_path"]);
  const pier = await startPier({ componentsDir });
  try {
    await t.step("whole bodies of every size, 48 at once, each its own", async () => {
      // From empty to past the writer's kept buffer (1 MiB): the frames of a turn share it.
      const sizes = Array.from({ length: 48 }, (_, i) => i === 47 ? 1_500_000 : i * i * 97);
      const bodies = await Promise.all(sizes.map(async (size) => {
        const response = await pier.fetch(`/path/bytes/${size}`);
        assert.equal(response.status, 200);
        return new Uint8Array(await response.arrayBuffer());
      }));
      sizes.forEach((size, i) => assert.deepEqual(bodies[i], pattern(size), `size ${size}`));
    });

    await t.step("text bodies, multi-byte, at once", async () => {
      const sizes = [10, 1000, 70_000, 300_000];
      const texts = await Promise.all(
        sizes.map(async (size) => await (await pier.fetch(`/path/text/${size}`)).text()),
      );
      sizes.forEach((size, i) => assert.equal(texts[i], `${size}:`.padEnd(size, "é")));
    });

    await t.step("whole bodies Deno holds for its fast path, and the rest", async () => {
      const answer = async (path: string) => {
        const response = await pier.fetch(path);
        return [response.status, response.headers.get("content-type"), await response.text()];
      };
      assert.deepEqual(await answer("/path/json"), [200, "application/json", '{"whole":true}']);
      assert.deepEqual(await answer("/path/status"), [418, "text/plain;charset=UTF-8", "teapot"]);
      assert.deepEqual(await answer("/path/touched"), [200, "text/plain", "touched"]);
      assert.deepEqual(await answer("/path/empty"), [200, "text/plain;charset=UTF-8", ""]);
      // A body the handler read itself cannot be sent again.
      assert.equal((await answer("/path/used"))[0], 500);
    });

    await t.step("request bodies echoed: large, then small, then at once", async () => {
      const echo = async (body: Uint8Array<ArrayBuffer>) => {
        const response = await pier.fetch("/path/echo", { method: "POST", body });
        assert.equal(response.status, 200);
        return new Uint8Array(await response.arrayBuffer());
      };
      const large = pattern(3 * 1024 * 1024);
      assert.deepEqual(await echo(large), large);
      assert.deepEqual(await echo(pattern(5)), pattern(5));
      // Past what the pipe holds: the server's writes wait while later frames are made.
      const many = [1, 100, 65_536, 200_000, 7, ...[1, 2, 3, 4, 5, 6].map((i) => 1e6 + i)]
        .map(pattern);
      assert.deepEqual(await Promise.all(many.map(echo)), many);
    });

    await t.step(
      "x-request-id is Pier's, whatever the guest set, in any case",
      () => requestIds(pier),
    );
  } finally {
    await pier.stop();
  }
});

/** The response's `x-request-id` is the client's or Pier's, never the guest's (in any case). */
async function requestIds(pier: Pier) {
  const sent = await pier.fetch("/path/echo", {
    method: "POST",
    body: "x",
    headers: { "x-request-id": "client-1" },
  });
  await sent.body?.cancel();
  assert.equal(sent.headers.get("x-request-id"), "client-1");
  const made = await pier.fetch("/path/forged");
  assert.equal(await made.text(), "forged");
  assert.match(made.headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
  const head = await pier.fetch("/path/forged", {
    method: "HEAD",
    headers: { "x-request-id": "head-1" },
  });
  assert.equal(head.status, 200, "HEAD reaches the GET route");
  assert.equal(await head.text(), "");
  assert.equal(head.headers.get("x-request-id"), "head-1");
  const missing = await pier.fetch("/path/none", { headers: { "x-request-id": "404-1" } });
  await missing.body?.cancel();
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("x-request-id"), "404-1");
}

Deno.test("wasm request path: x-request-id is Pier's, whatever the guest set", async () => {
  // The same fixture on SpiderMonkey: the worker link puts the id in as it makes the response.
  const componentsDir = await buildNative(["native_path"], "spidermonkey");
  const pier = await startPier({ componentsDir });
  try {
    await requestIds(pier);
  } finally {
    await pier.stop();
  }
});
