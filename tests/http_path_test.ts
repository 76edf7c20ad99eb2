/**
 * The lean request path (issue 15): what a guest sees of a request and what
 * the client gets of a response stay whole when the host skips copies and
 * encodes lazily, and the trimmed `incoming-handler` export still refuses a
 * second entry into a busy instance.
 */
import assert from "node:assert/strict";
import { transpile } from "../runtime/compile/transpile.ts";
import { hostImports } from "../runtime/wasi/imports.ts";
import {
  IncomingRequest,
  type OutgoingResponse,
  ResponseOutparam,
  type ResponseTarget,
} from "../runtime/wasi/http.ts";
import { ByteQueue, type ByteSink } from "../runtime/wasi/io.ts";
import { LineSink } from "../runtime/wasi/cli.ts";
import { GuestCounts } from "../runtime/metrics.ts";
import { componentizeWat } from "../tools/componentize.ts";
import { buildFixtures, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["http_path"]);

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const utf8 = (text: string) => hex(new TextEncoder().encode(text));

Deno.test("the guest reads request headers as UTF-8 bytes, the same each time", async () => {
  const pier = await startPier({ components: { path: fixtures.http_path } });
  try {
    const headers = new Headers({ "x-latin1": "caf\u00e9", "x-empty": "", "x-request-id": "r-1" });
    headers.append("x-many", "one");
    headers.append("x-many", "two");
    const response = await pier.fetch("/seen/%C3%A9t%C3%A9?q=%C3%A9", { headers });
    assert.equal(response.status, 200);
    const seen = await response.json();
    assert.equal(seen.path, "/seen/%C3%A9t%C3%A9?q=%C3%A9");
    assert.match(seen.authority, /^127\.0\.0\.1:\d+$/);
    const entries = new Map<string, string[]>();
    for (const [name, value] of seen.entries) {
      entries.set(name, [...entries.get(name) ?? [], value]);
    }
    assert.deepEqual(entries.get("x-latin1"), [utf8("caf\u00e9")]);
    assert.deepEqual(entries.get("x-empty"), [""]);
    assert.deepEqual(entries.get("x-many"), [utf8("one, two")]);
    assert.deepEqual(entries.get("x-request-id"), [utf8("r-1")]);
    const context = JSON.parse(
      new TextDecoder().decode(Uint8Array.from(
        entries.get("__context")![0].match(/../g)!,
        (b) => parseInt(b, 16),
      )),
    );
    assert.deepEqual(context.path_params, [["name", "\u00e9t\u00e9"]]);
    for (const [name, values] of seen.again) assert.deepEqual(values, entries.get(name), name);
  } finally {
    await pier.stop();
  }
});

Deno.test("a body written from one reused guest buffer arrives whole, streamed or not", async () => {
  const pier = await startPier({ components: { path: fixtures.http_path } });
  try {
    for (const chunks of [1, 2, 40]) {
      const response = await pier.fetch(`/reused/${chunks}`);
      assert.equal(response.status, 200);
      const body = new Uint8Array(await response.arrayBuffer());
      assert.equal(body.byteLength, chunks * 1000);
      for (let i = 0; i < chunks; i++) {
        const chunk = body.subarray(i * 1000, (i + 1) * 1000);
        assert.ok(chunk.every((b) => b === 65 + (i % 26)), `chunk ${i} of ${chunks}`);
      }
    }
  } finally {
    await pier.stop();
  }
});

/**
 * A response target whose body has no room until `open` is called; with
 * `failure`, one whose client went away.
 */
function heldTarget(failure?: string): ResponseTarget & { open(): void; started: Promise<void> } {
  const room = Promise.withResolvers<void>();
  const started = Promise.withResolvers<void>();
  let free = 0;
  const sink: ByteSink = {
    failure,
    write() {},
    get room() {
      return free;
    },
    whenRoom: () => room.promise,
  };
  return {
    start(response: OutgoingResponse) {
      response.pending.attach(sink, () => {});
      started.resolve();
    },
    fail() {},
    open() {
      free = 1 << 20;
      room.resolve();
    },
    started: started.promise,
  };
}

Deno.test("the trimmed export: a second entry into a busy instance traps; a trapped one is refused", async () => {
  const wat = await Deno.readTextFile(new URL("../bench/guests/hello.wat", import.meta.url));
  const { files } = await transpile(await componentizeWat(wat));
  const dir = await scratchDir("pier-http-path-");
  try {
    for (const [name, bytes] of Object.entries(files)) {
      await Deno.writeFile(`${dir}/${name}`, bytes);
    }
    const glue = await import(`file://${dir}/component.js`);
    const log = new LineSink(() => {});
    const imports = hostImports({
      name: "wat",
      stdout: log,
      stderr: log,
      env: [],
      net: [],
      preopens: [],
      outboundSlot: () => Promise.resolve(() => {}),
      counts: new GuestCounts(new SharedArrayBuffer(64)),
    }, () => Promise.reject(new Error("no capabilities here")));
    const exports = await glue.instantiate(
      async (file: string) => await WebAssembly.compile(await Deno.readFile(`${dir}/${file}`)),
      imports,
    );
    const handler = exports["wasi:http/incoming-handler@0.2.12"];
    const request = () =>
      new IncomingRequest({
        method: "GET",
        url: "http://localhost/hello",
        headers: [],
        body: ByteQueue.of(null),
      });
    // The first call waits in blocking-write-and-flush (no room), its guest stack suspended.
    const first = heldTarget();
    const running = handler.handle(request(), new ResponseOutparam(first));
    await first.started;
    await assert.rejects(
      handler.handle(request(), new ResponseOutparam(heldTarget())),
      /a call is in progress/,
    );
    first.open();
    await running;
    // Free again: the next call runs.
    const next = heldTarget();
    next.open();
    await handler.handle(request(), new ResponseOutparam(next));
    // A failed write makes the guest trap (`unreachable`): the instance is never entered again.
    await assert.rejects(
      handler.handle(request(), new ResponseOutparam(heldTarget("the client went away"))),
      WebAssembly.RuntimeError,
    );
    await assert.rejects(
      handler.handle(request(), new ResponseOutparam(heldTarget())),
      /cannot enter component instance/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
