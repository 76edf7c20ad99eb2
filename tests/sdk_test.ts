/**
 * The guest SDK and its build tool: the pure helpers directly, the build
 * tool's incremental builds and error reports, `deno task new`'s scaffold,
 * and every SDK feature over HTTP through a real Pier serving
 * `tests/fixtures/sdk_app.ts` and a freshly scaffolded component.
 */
import assert from "node:assert/strict";
import { buildComponents, type BuildOptions, type BuildResult, upToDate } from "../tools/build.ts";
import { scaffold } from "../tools/new.ts";
import { escapeHtml, html, HttpError, json, markup, redirect, text } from "../guest/response.ts";
import { fromWit, toWit } from "../guest/values.ts";
import { sha256 } from "../runtime/hash.ts";
import { fromFileUrl } from "../runtime/paths.ts";
import { type Pier, readTimed, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url)).replace(/\/$/, "");
const CACHE: BuildOptions = {
  cacheDir: `${ROOT}/.build/components`,
  log: (l) => console.log(`  ${l}`),
};
const TOKEN = "sdk-test-admin-token";

async function buildOne(source: string, options: BuildOptions = CACHE): Promise<BuildResult> {
  const [result] = await buildComponents([source], options);
  return result;
}

Deno.test("SQLite values keep 64-bit integers exact", () => {
  assert.deepEqual(toWit(42), { tag: "integer", val: 42n });
  assert.deepEqual(toWit(1.5), { tag: "real", val: 1.5 });
  assert.deepEqual(toWit(2 ** 60), { tag: "real", val: 2 ** 60 }, "an unsafe number is not exact");
  assert.deepEqual(toWit(2n ** 63n - 1n), { tag: "integer", val: 2n ** 63n - 1n });
  assert.throws(() => toWit(2n ** 63n), RangeError);
  assert.deepEqual(toWit(true), { tag: "integer", val: 1n });
  assert.deepEqual(toWit(undefined), { tag: "null" });
  assert.deepEqual(toWit("x"), { tag: "text", val: "x" });
  assert.deepEqual(toWit(new Uint8Array([1])), { tag: "blob", val: new Uint8Array([1]) });
  assert.throws(() => toWit({} as never), TypeError);
  assert.equal(fromWit({ tag: "integer", val: 9007199254740991n }), 9007199254740991);
  assert.equal(fromWit({ tag: "integer", val: 9007199254740992n }), 9007199254740992n);
  assert.equal(fromWit({ tag: "integer", val: -(2n ** 63n) }), -(2n ** 63n));
  assert.equal(fromWit({ tag: "null" }), null);
  assert.equal(fromWit({ tag: "real", val: 0.5 }), 0.5);
});

Deno.test("response helpers", async (t) => {
  await t.step("json writes bigints exactly", async () => {
    const response = json({ a: 5n, b: 2n ** 64n }, { status: 201, headers: { "x-a": "1" } });
    assert.equal(response.status, 201);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.equal(response.headers.get("x-a"), "1");
    assert.equal(await response.text(), '{"a":5,"b":"18446744073709551616"}');
  });
  await t.step("text, html and redirect set their types", async () => {
    assert.equal(text("x").headers.get("content-type"), "text/plain; charset=utf-8");
    const custom = html("<b>", { headers: { "content-type": "text/html" } });
    assert.equal(custom.headers.get("content-type"), "text/html");
    assert.equal(await custom.text(), "<b>");
    const moved = redirect("/elsewhere", 301);
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.get("location"), "/elsewhere");
  });
  await t.step("markup escapes values, not nested markup", () => {
    assert.equal(
      escapeHtml(`<a href="x">'&'</a>`),
      "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
    );
    const items = ["<1>", "2"].map((v) => markup`<li>${v}</li>`);
    const page = markup`<ul title="${'"q"'}">${items}</ul>${null}${undefined}${false}${0}`;
    assert.equal(String(page), '<ul title="&quot;q&quot;"><li>&lt;1&gt;</li><li>2</li></ul>0');
  });
  await t.step("HttpError is its status, headers and message", async () => {
    const response = new HttpError(409, "taken", { "retry-after": "3" }).toResponse();
    assert.equal(response.status, 409);
    assert.equal(response.headers.get("retry-after"), "3");
    assert.equal(await response.text(), "taken");
  });
});

/** A scratch directory at a fixed path, so its builds hit the cache on the next run. */
const SCRATCH = `${ROOT}/.build/sdk_test`;

Deno.test("build tool and scaffold", async (t) => {
  await Deno.remove(SCRATCH, { recursive: true }).catch(() => {});
  await Deno.mkdir(SCRATCH, { recursive: true });
  const greeter = `${SCRATCH}/greeter.ts`;

  await t.step("deno task new writes a component and a manifest granting nothing", async () => {
    const written = await scaffold("greeter", SCRATCH);
    assert.deepEqual(written, [greeter, `${SCRATCH}/greeter.permissions.json`]);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(written[1])), {});
    await assert.rejects(() => scaffold("greeter", SCRATCH), /already exists/);
    await assert.rejects(() => scaffold("Bad Name", SCRATCH), /not a component name/);
  });

  await t.step("the CLI builds with narrow permissions, reports failures, exits 1", async () => {
    await Deno.writeTextFile(
      `${SCRATCH}/broken.ts`,
      'import { defineComponent } from "@pier/guest";\nexport default defineComponent({ routes: { "GET /x": () => ) } });\n',
    );
    await Deno.writeTextFile(`${SCRATCH}/_shared.ts`, "export const shared = 1;\n");
    // As `deno task build` runs it: the tool relaunches itself with the build's permissions only.
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-run",
        "--allow-env=TMPDIR",
        `${ROOT}/tools/build.ts`,
        SCRATCH,
      ],
      env: { NO_COLOR: "1" },
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 1, output);
    assert.match(output, /greeter\s+built with spidermonkey in [\d.]+ s/);
    assert.match(output, /broken\s+FAILED/);
    assert.match(output, /broken\.ts:2:\d+/, "a bundling error names the file and line");
    assert.doesNotMatch(output, /_shared/, "modules starting with _ are not components");
    assert.match(output, /2 component\(s\): 1 built, 0 up to date, 1 failed/);
    await Deno.stat(`${SCRATCH}/greeter.wasm`);
    await assert.rejects(() => Deno.stat(`${SCRATCH}/broken.wasm`), Deno.errors.NotFound);
    await Deno.remove(`${SCRATCH}/broken.ts`);
  });

  await t.step("an unchanged bundle is not rebuilt, even after a comment-only edit", async () => {
    assert.equal((await buildOne(greeter, {})).status, "fresh");
    await Deno.writeTextFile(greeter, "\n// a comment changes nothing in the bundle\n", {
      append: true,
    });
    assert.equal((await buildOne(greeter, {})).status, "fresh");
  });

  await t.step("a build records its inputs: unchanged ones need no bundling at start", async () => {
    assert.equal(await upToDate(greeter), true);
    // Any input touched: bundling decides again (here: the bundle is the same, so it is fresh).
    await Deno.writeTextFile(greeter, "// touched\n", { append: true });
    assert.equal(await upToDate(greeter), false);
    assert.equal((await buildOne(greeter, {})).status, "fresh");
    assert.equal(await upToDate(greeter), true);
    // A .wasm that is not the recorded build.
    const wasm = await Deno.readFile(`${SCRATCH}/greeter.wasm`);
    await Deno.writeFile(`${SCRATCH}/greeter.wasm`, wasm.subarray(0, 8));
    assert.equal(await upToDate(greeter), false);
    await Deno.writeFile(`${SCRATCH}/greeter.wasm`, wasm);
    assert.equal(await upToDate(greeter), true);
    assert.equal(await upToDate(`${SCRATCH}/never-built.ts`), false);
  });

  await t.step("a type error names the file and line and writes nothing", async () => {
    const source = `${SCRATCH}/typo.ts`;
    await Deno.writeTextFile(
      source,
      'import { defineComponent, text } from "@pier/guest";\nexport default defineComponent({\n  routes: { "GET /t/{id}": (_req, { params }) => text(params.nope) },\n});\n',
    );
    const result = await buildOne(source, {});
    assert.equal(result.status, "failed");
    assert.match(result.error!, /Property 'nope' does not exist/);
    assert.match(result.error!, /typo\.ts:3:\d+/);
    await assert.rejects(() => Deno.stat(`${SCRATCH}/typo.wasm`), Deno.errors.NotFound);
    await Deno.remove(source);
  });

  await t.step("the engine pragma selects the engine and is part of the hash", async () => {
    const before = await sha256(await Deno.readFile(`${SCRATCH}/greeter.wasm`));
    const original = await Deno.readTextFile(greeter);
    await Deno.writeTextFile(greeter, `// @pier-engine quickjs\n${original}`);
    const quick = await buildOne(greeter, {});
    // Measured: componentize-qjs 0.4.5 cannot pre-initialize a world that imports wasi:http.
    assert.equal(quick.status, "failed");
    assert.equal(quick.engine, "quickjs");
    assert.match(quick.error!, /^quickjs: .*wasi:http\/types@0\.2\.12.*mismatched resource types/s);
    assert.equal(
      await sha256(await Deno.readFile(`${SCRATCH}/greeter.wasm`)),
      before,
      "the previous .wasm is untouched",
    );

    await Deno.writeTextFile(greeter, `// @pier-engine v8\n${original}`);
    const unknown = await buildOne(greeter, {});
    assert.match(
      unknown.error!,
      /greeter\.ts:1: unknown engine "v8" \(known: spidermonkey, quickjs, native\)/,
    );

    await Deno.writeTextFile(greeter, original);
    assert.equal((await buildOne(greeter, {})).status, "fresh");
  });

  await t.step("a source that is not a component fails at build time", async () => {
    const source = `${SCRATCH}/plain.ts`;
    await Deno.writeTextFile(source, "export const x = 1;\n");
    const result = await buildOne(source, {});
    assert.equal(result.status, "failed");
    assert.match(result.error!, /plain\.ts must export default defineComponent/);
    await Deno.remove(source);
  });
});

/** A local HTTP server the fixture fetches from. */
function upstream() {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    return Response.json({
      method: req.method,
      path: url.pathname + url.search,
      from: req.headers.get("x-from"),
      body: await req.text(),
    });
  });
}

Deno.test("guest SDK over HTTP", async (t) => {
  const root = await scratchDir("pier-sdk-test-");
  const componentsDir = `${root}/components`;
  const dataDir = `${root}/data`;
  await Deno.mkdir(componentsDir);
  const fixture = await buildOne(`${ROOT}/tests/fixtures/sdk_app.ts`, { ...CACHE, outDir: root });
  assert.equal(fixture.status, "built", fixture.error);

  const server = upstream();
  const port = server.addr.port;
  await Deno.mkdir(`${dataDir}/public`, { recursive: true });
  await Deno.writeTextFile(`${dataDir}/public/hello.txt`, "hi from a file");
  await Deno.copyFile(fixture.wasm, `${componentsDir}/sdk.wasm`);
  await Deno.writeTextFile(
    `${componentsDir}/sdk.permissions.json`,
    JSON.stringify({
      db: "read",
      kv: [""],
      read: ["public"],
      net: [`127.0.0.1:${port}`],
      env: ["SDK_GRANTED"],
    }),
  );
  // The scaffold of the previous test, served as it is.
  await Deno.copyFile(`${SCRATCH}/greeter.wasm`, `${componentsDir}/greeter.wasm`);
  await Deno.copyFile(
    `${SCRATCH}/greeter.permissions.json`,
    `${componentsDir}/greeter.permissions.json`,
  );

  const pier: Pier = await startPier({
    componentsDir,
    dataDir,
    env: { PIER_ADMIN_TOKEN: TOKEN, SDK_GRANTED: "granted value" },
  });
  const get = async (path: string, init?: RequestInit) => {
    const response = await pier.fetch(path, init);
    return { status: response.status, headers: response.headers, body: await response.text() };
  };
  const post = (path: string, body: unknown) =>
    pier.fetch(path, { method: "POST", body: JSON.stringify(body) }).then((r) => r.json());
  try {
    await t.step("the scaffolded component serves its route", async () => {
      const r = await get("/greeter?name=Ada");
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body), { hello: "Ada" });
    });

    await t.step("env: the granted variables only (wasi:cli/environment)", async () => {
      const r = await get("/sdk/env");
      assert.deepEqual(JSON.parse(r.body), { granted: "granted value", other: null });
    });

    await t.step("typed params, query, context and headers reach the handler", async () => {
      const r = await get("/sdk/users/u%201/posts/42?x=1&y=two", {
        headers: { "x-custom": "yes", "__context": "forged" },
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "application/json");
      const echo = JSON.parse(r.body);
      assert.deepEqual(echo.params, { userId: "u 1", postId: "42" });
      assert.equal(echo.userId, "u 1");
      assert.deepEqual(echo.query, { x: "1", y: "two" });
      assert.equal(echo.kind, "http");
      assert.equal(echo.route, "/sdk/users/{userId}/posts/{postId}");
      assert.equal(echo.user, null);
      assert.equal(echo.method, "GET");
      assert.match(
        echo.url,
        /^http:\/\/127\.0\.0\.1:\d+\/sdk\/users\/u%201\/posts\/42\?x=1&y=two$/,
      );
      assert.equal(echo.contextHeader, false, "__context is not among the request's headers");
      assert.equal(echo.custom, "yes");
    });

    await t.step("a wildcard binds the rest of the path; HEAD gets no body", async () => {
      assert.equal((await get("/sdk/files/a/b/c.txt")).body, "path=a/b/c.txt");
      const head = await get("/sdk/files/a", { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.body, "");
    });

    await t.step("request bodies as text, JSON and bytes", async () => {
      assert.equal(
        (await get("/sdk/body?as=text", { method: "POST", body: "héllo" })).body,
        "text:héllo",
      );
      assert.deepEqual(await post("/sdk/body?as=json", { a: [1, "b"] }), { json: { a: [1, "b"] } });
      const bytes = new Uint8Array(1 << 20);
      for (let i = 0; i < bytes.length; i += 65536) {
        crypto.getRandomValues(bytes.subarray(i, i + 65536));
      }
      const sum = bytes.reduce((s, b) => (s + b) % 65536, 0);
      const r = await pier.fetch("/sdk/body", { method: "POST", body: bytes });
      assert.deepEqual(await r.json(), { length: bytes.length, sum });
    });

    await t.step("response bodies stream, large ones arrive whole", async () => {
      const { first, rest, firstAt, allAt } = await readTimed(await pier.fetch("/sdk/stream"));
      assert.equal(first, "one\n");
      assert.equal(rest, "two\nthree\n");
      assert.ok(firstAt < allAt - 250, `first chunk at ${firstAt} ms, all at ${allAt} ms`);
      const big = await get("/sdk/big");
      assert.equal(big.body.length, 1025 * 2048);
    });

    await t.step("HttpError is its status; other errors are a logged 500", async () => {
      const teapot = await get("/sdk/error/http");
      assert.equal(teapot.status, 418);
      assert.equal(teapot.headers.get("x-reason"), "teapot");
      assert.equal(teapot.body, "short and stout");
      const boom = await get("/sdk/error/boom");
      assert.equal(boom.status, 500);
      assert.equal(boom.body, "Internal Server Error");
      await pier.waitForLog(
        /\[sdk:err\] GET \/sdk\/error\/\{kind\} failed: Error: sdk fixture failed on purpose/,
        5000,
      );
      assert.equal((await get("/sdk/files/after")).status, 200, "the next request works");
    });

    await t.step("helpers: redirect, escaped html, several cookies, bigint json", async () => {
      const moved = await pier.fetch("/sdk/helpers?which=redirect", { redirect: "manual" });
      await moved.body?.cancel();
      assert.equal(moved.status, 303);
      assert.equal(moved.headers.get("location"), "/sdk/files/elsewhere");
      const page = await get(`/sdk/helpers?which=html&v=${encodeURIComponent('"<b>&')}`);
      assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
      assert.equal(
        page.body,
        '<p title="&quot;&lt;b&gt;&amp;">&quot;&lt;b&gt;&amp;</p><i>1</i><i>&lt;2&gt;</i>',
      );
      const cookies = await pier.fetch("/sdk/helpers?which=cookies");
      await cookies.body?.cancel();
      assert.equal(cookies.status, 201);
      assert.deepEqual(cookies.headers.getSetCookie(), ["a=1", "b=2"]);
      assert.deepEqual(JSON.parse((await get("/sdk/helpers")).body), {
        big: "1152921504606846976",
        small: 42,
        nested: [1],
      });
    });

    await t.step("db: values round-trip exactly, errors are DbErrors", async () => {
      assert.deepEqual(await post("/sdk/db/values", {}), [
        ["bigint", "9007199254740993"],
        ["bigint", "-9223372036854775808"],
        ["number", 42],
        ["number", 1.5],
        ["string", "text ✓"],
        ["blob", [0, 1, 255]],
        ["null", null],
        ["number", 1],
      ]);
      const failed = JSON.parse((await get("/sdk/db/error")).body);
      assert.equal(failed.name, "DbError");
      assert.match(failed.message, /no such table: no_such_table_here/);
    });

    await t.step("SQL functions defined in the component run in SQL", async () => {
      const n = 2n ** 61n + 1n;
      const r = JSON.parse((await get(`/sdk/db/functions?title=Hello,%20World!&n=${n}`)).body);
      assert.deepEqual(r, { slug: "hello-world", big: ["bigint", String(2n * n)] });
    });

    await t.step("kv: bytes and text values, list, increment, grants", async () => {
      assert.deepEqual(await post("/sdk/kv", {}), {
        bytes: [1, 2, 3],
        text: "héllo",
        missing: null,
        exists: true,
        keys: ["bytes", "text"],
        counter: 5,
        existsAfterDelete: false,
        denied: "KvError:access-denied",
      });
    });

    await t.step("fetch: granted host with body and headers; denial names the reason", async () => {
      const echo = await post("/sdk/fetch", {
        url: `http://127.0.0.1:${port}/echo?q=1`,
        method: "POST",
        body: "ping",
      });
      assert.equal(echo.status, 200);
      assert.equal(echo.type, "application/json");
      assert.deepEqual(JSON.parse(echo.body), {
        method: "POST",
        path: "/echo?q=1",
        from: "sdk",
        body: "ping",
      });
      const denied = await post("/sdk/fetch", { url: `${pier.url}/sdk/files/x` });
      assert.match(
        denied.error,
        /^TypeError: fetch http:\/\/127\.0\.0\.1:\d+\/sdk\/files\/x failed: HTTP-request-denied/,
      );
    });

    await t.step("fs: files of granted directories, FsError otherwise", async () => {
      assert.equal((await get("/sdk/fs/public/hello.txt")).body, "hi from a file");
      const missing = await get("/sdk/fs/public/missing.txt");
      assert.equal(missing.status, 404);
      assert.deepEqual(JSON.parse(missing.body), { code: "no-entry" });
      assert.deepEqual(JSON.parse((await get("/sdk/fs/etc/passwd")).body), { code: "no-entry" });
    });

    await t.step("the manifest declares routes, jobs and SQL functions; a job runs", async () => {
      const health = await (await pier.fetch("/_/health")).json();
      const sdk = health.components.find((c: { name: string }) => c.name === "sdk");
      assert.equal(sdk.state, "loaded");
      assert.deepEqual(sdk.warnings, []);
      assert.ok(sdk.routes.includes("GET /sdk/files/{*path}"));
      const jobs = await (await pier.fetch("/_/jobs")).json();
      const job = jobs.jobs.find((j: { component: string }) => j.component === "sdk");
      assert.equal(job.name, "sdk job");
      assert.equal(job.spec, "0 0 0 1 1 * 2099");
      const run = await pier.fetch(`/_/jobs/sdk/${encodeURIComponent("sdk job")}/run`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(run.status, 200);
      assert.equal((await run.json()).outcome, "ok");
      await pier.waitForLog(/\[sdk:out\] sdk job ran/, 5000);
    });
  } finally {
    await pier.stop();
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});
