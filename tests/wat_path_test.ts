/**
 * The WAT guest's path above its floor (issue 15, docs/request-path.md "The
 * WAT path above its floor"): a real Pier serving the bench's hello guest
 * (`bench/guests/hello.wat`, built by the real toolchain), driven over
 * loopback.
 */
import assert from "node:assert/strict";
import { componentizeWat } from "../tools/componentize.ts";
import { pathOf } from "../runtime/server.ts";
import { startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const hello = await componentizeWat(
  await Deno.readTextFile(new URL("../bench/guests/hello.wat", import.meta.url)),
);

/** A components dir with the hello guest as `hello`, under `limits`. */
async function helloDir(limits: Record<string, number>): Promise<string> {
  const dir = await scratchDir("pier-wat-path-");
  await Deno.writeFile(`${dir}/hello.wasm`, hello);
  await Deno.writeTextFile(`${dir}/hello.permissions.json`, JSON.stringify({ limits }));
  return dir;
}

/**
 * Reads one HTTP/1.1 response from `conn` (a body of `content-length` bytes,
 * or chunked: a response the guest streams); returns its text.
 */
async function readResponse(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  const decoder = new TextDecoder();
  while (true) {
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const head = text.slice(0, end);
      if (/transfer-encoding: chunked/i.test(head)) {
        if (text.endsWith("\r\n0\r\n\r\n")) return text;
      } else {
        const length = Number(head.match(/content-length: (\d+)/i)?.[1] ?? 0);
        if (text.length >= end + 4 + length) return text;
      }
    }
    const n = await conn.read(buffer);
    if (n === null) throw new Error(`connection closed after: ${text}`);
    text += decoder.decode(buffer.subarray(0, n));
  }
}

/**
 * Serves warm-up requests one at a time, then three rounds of eight at once
 * (each arriving while the ones before are in flight) on a fresh Pier whose
 * component may have two workers; returns the workers it then has, and its log.
 */
async function workersAfterBursts(): Promise<{ workers: number; log: string }> {
  const pier = await startPier({ componentsDir: await helloDir({ workers: 2 }) });
  const { hostname, port } = new URL(pier.url);
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 8; i++) conns.push(await Deno.connect({ hostname, port: Number(port) }));
    const request = new TextEncoder().encode(`GET /hello HTTP/1.1\r\nhost: ${hostname}\r\n\r\n`);
    for (let round = 0; round < 5; round++) {
      for (const conn of conns) {
        await conn.write(request);
        assert.match(await readResponse(conn), /^HTTP\/1\.1 200[\s\S]*Hello, world!\n/);
      }
    }
    for (let round = 0; round < 3; round++) {
      await Promise.all(conns.map((conn) => conn.write(request)));
      for (const text of await Promise.all(conns.map(readResponse))) {
        assert.match(text, /^HTTP\/1\.1 200[\s\S]*x-request-id: [\s\S]*Hello, world!\n/);
      }
    }
    // A worker added would say so within this (it starts in milliseconds).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const health = await (await pier.fetch("/_/health")).json();
    return { workers: health.components[0].workers, log: pier.log() };
  } finally {
    for (const conn of conns) conn.close();
    await pier.stop();
  }
}

Deno.test("concurrent requests stay on one worker while it keeps up", async () => {
  // A worker counts as behind once its oldest request waits 1 ms, which a loaded machine can
  // cause by itself: up to five fresh servers, one must keep its single worker. Choosing the least
  // loaded worker (as before) grows the pool in every one of them.
  let last = { workers: 0, log: "" };
  for (let attempt = 0; attempt < 5 && last.workers !== 1; attempt++) {
    last = await workersAfterBursts();
  }
  assert.equal(last.workers, 1, last.log);
  assert.doesNotMatch(last.log, /busy: now 2 workers/);
});

Deno.test("a request's path is what the URL parser makes of it, parsed or not", () => {
  const urls = [
    "http://127.0.0.1:8000/hello",
    "http://h/a/b?x=1&y=/z",
    "http://h/a/../b",
    "http://h/a/./b",
    "http://h/a/%2e%2E/b",
    "http://h/a%2Fb",
    "http://h/a b",
    "http://h/\u00e9t\u00e9",
    "http://h/a#f",
    "http://h/a?q#f",
    "http://h//x",
    "http://u:p@h/x/",
    "http://h/x;y=1,2:@!$&'()*+~",
    "http://h/a\\b",
    "http://h/%41",
    "http://h/a.txt",
    "http://h:80/",
    "http://h/{x}|`^",
    "http://[::1]:8000/v6",
    // What a client's `Host` makes of Deno's `request.url`: each right after a plain URL of its host.
    "http://a/c/d",
    "http://a?b/c/d",
    "http://a/c/d",
    "http://a#b/c/d",
    "http://a/c/d",
    "http://a\\b/c/d",
    "http://a/c/d",
    "http://u@a/c/d",
    "http://A/c/d",
    "http://a:80/c/d",
  ];
  // Twice: the second time the origin of the URL before is known.
  for (const url of [...urls, ...urls]) assert.equal(pathOf(url), new URL(url).pathname, url);
  // Not an absolute URL, or a host the parser refuses: refused as the parser refuses it.
  for (const url of ["host/a/b", "http://a%2fb/c/d", "http://a b/c/d", "http://1.2.3.999/c"]) {
    pathOf("http://a/c/d");
    assert.throws(() => pathOf(url), TypeError, url);
  }
});

Deno.test("every request's log line is written whole under bursts of long ids", async () => {
  const pier = await startPier({ componentsDir: await helloDir({ concurrency: 64 }) });
  try {
    // 127-character ids: ~100 KB of lines in all, batched as bytes (see `log.ts`).
    const ids = Array.from(
      { length: 400 },
      (_, i) => `${"x".repeat(120)}-${String(i).padStart(6, "0")}`,
    );
    for (let at = 0; at < ids.length; at += 50) {
      await Promise.all(
        ids.slice(at, at + 50).map(async (id) => {
          const response = await pier.fetch("/hello", { headers: { "x-request-id": id } });
          assert.equal(await response.text(), "Hello, world!\n");
          assert.equal(response.headers.get("x-request-id"), id);
        }),
      );
    }
    await pier.waitForLog(new RegExp(`request id=${ids.at(-1)} `), 5000);
    const lines = pier.log().split("\n").filter((line) => line.includes(" request id="));
    const line =
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}request id=(\S+) component=hello method=GET route=\/hello status=200 ms=[\d.]+ bytes=(?:14|-)$/;
    const logged = lines.map((text) => text.match(line)?.[1] ?? `malformed: ${text}`);
    assert.deepEqual(logged.sort(), ids);
  } finally {
    await pier.stop();
  }
});

Deno.test("a client's Host cannot route a path the URL parser does not see", async () => {
  const pier = await startPier({ componentsDir: await helloDir({}) });
  const { hostname, port } = new URL(pier.url);
  /** The status of `GET /hello` sent with `host` (Deno puts it in `request.url` as sent). */
  const statusWith = async (host: string) => {
    const conn = await Deno.connect({ hostname, port: Number(port) });
    try {
      await conn.write(new TextEncoder().encode(`GET /hello HTTP/1.1\r\nhost: ${host}\r\n\r\n`));
      return Number((await readResponse(conn)).slice(9, 12));
    } finally {
      conn.close();
    }
  };
  try {
    assert.equal(await statusWith(hostname), 200);
    // The parser (and the guest) see `/` or `/b/hello` here, a path the component has no route for.
    for (const host of ["a?b", "a#b", "a\\b"]) assert.equal(await statusWith(host), 404, host);
    // A host the parser refuses is not routed at all.
    for (const host of ["a%2fb", "1.2.3.999"]) assert.notEqual(await statusWith(host), 200, host);
    assert.equal(await statusWith(hostname), 200);
  } finally {
    await pier.stop();
  }
});
