/**
 * The example components of `components/`, built by the build tool exactly
 * as `deno task build` builds them and served with their own permission
 * manifests by one real Pier: each example's HTTP behaviour, plus the check
 * that every built component stays inside Pier's (and TrailBase's) world.
 * Every example runs under both engines from one source: built to `.wasm`
 * (WebAssembly), then to `.js` (native), and each run checks the same responses.
 */
import assert from "node:assert/strict";
import { componentWit } from "@bytecodealliance/jco-transpile/wasm-tools";
import { buildComponents } from "../tools/build.ts";
import { fromFileUrl } from "../runtime/paths.ts";
import { type Pier, renderInBrowser, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url)).replace(/\/$/, "");
const EXAMPLES = ["cleanup", "counter", "hello", "page", "todos", "weather"];
const TOKEN = "examples-test-admin-token";

/**
 * What a component may import: the world `trailbase:component/interfaces`
 * (guest-abi.md) and the interfaces its types use, plus `wasi:cli`'s stdio,
 * which the JS engine itself imports and the ABI allows.
 */
const WORLD_IMPORTS = [
  "wasi:http/outgoing-handler@0.2.12",
  "wasi:http/types@0.2.12",
  "wasi:filesystem/types@0.2.12",
  "wasi:filesystem/preopens@0.2.12",
  "wasi:random/random@0.2.12",
  "wasi:random/insecure@0.2.12",
  "wasi:random/insecure-seed@0.2.12",
  "wasi:keyvalue/store@0.2.0-draft",
  "wasi:keyvalue/atomics@0.2.0-draft",
  "wasi:keyvalue/batch@0.2.0-draft",
  "trailbase:database/sqlite@0.1.1",
  "wasi:io/poll@0.2.12",
  "wasi:io/error@0.2.12",
  "wasi:io/streams@0.2.12",
  "wasi:clocks/monotonic-clock@0.2.12",
  "wasi:clocks/wall-clock@0.2.12",
];
const WORLD_EXPORTS = [
  "trailbase:component/init-endpoint@0.2.0",
  "trailbase:component/sqlite-function-endpoint@0.2.0",
  "wasi:http/incoming-handler@0.2.12",
];

/** A stand-in for Open-Meteo's forecast API; `calls` records the queries it got. */
function weatherApi() {
  const calls: URLSearchParams[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    calls.push(url.searchParams);
    if (url.pathname !== "/v1/forecast") return new Response("not found", { status: 404 });
    if (url.searchParams.get("latitude") === "35.69") {
      return new Response("overloaded", { status: 503 });
    }
    return Response.json({
      latitude: Number(url.searchParams.get("latitude")),
      current: { time: "2026-01-15T12:00", temperature_2m: 13.5, wind_speed_10m: 21.2 },
      current_units: { temperature_2m: "°C", wind_speed_10m: "km/h" },
    });
  });
  return { server, calls };
}

for (const engine of ["wasm", "native"] as const) {
  Deno.test(`example components (${engine} engine)`, async (t) => {
    const root = await scratchDir("pier-examples-");
    const componentsDir = `${root}/components`;
    const dataDir = `${root}/data`;
    await Deno.mkdir(componentsDir);
    const results = await buildComponents(
      EXAMPLES.map((name) => `${ROOT}/components/${name}.ts`),
      {
        outDir: componentsDir,
        engine: engine === "native" ? "native" : undefined,
        cacheDir: `${ROOT}/.build/components`,
        log: (line) => console.log(`  ${line}`),
      },
    );
    for (const result of results) assert.equal(result.status, "built", result.error);

    const api = weatherApi();
    for (const name of EXAMPLES) {
      await Deno.copyFile(
        `${ROOT}/components/${name}.permissions.json`,
        `${componentsDir}/${name}.permissions.json`,
      );
    }
    // weather: the same grants, pointed at the local stand-in through its config file.
    const weatherApiUrl = `http://127.0.0.1:${api.server.addr.port}`;
    const grants = JSON.parse(await Deno.readTextFile(`${componentsDir}/weather.permissions.json`));
    await Deno.writeTextFile(
      `${componentsDir}/weather.permissions.json`,
      JSON.stringify({ ...grants, net: [`127.0.0.1:${api.server.addr.port}`] }),
    );
    await Deno.mkdir(`${dataDir}/weather`, { recursive: true });
    await Deno.writeTextFile(
      `${dataDir}/weather/config.json`,
      JSON.stringify({ api: weatherApiUrl }),
    );

    const pier: Pier = await startPier({
      componentsDir,
      dataDir,
      env: { PIER_ADMIN_TOKEN: TOKEN },
    });
    const call = async (path: string, init?: RequestInit) => {
      const response = await pier.fetch(path, init);
      const type = response.headers.get("content-type") ?? "";
      const body = type.startsWith("application/json")
        ? await response.json()
        : await response.text();
      return { status: response.status, type, body };
    };
    const send = (method: string, path: string, body: unknown) =>
      call(path, { method, body: typeof body === "string" ? body : JSON.stringify(body) });
    try {
      await t.step("every example builds within the world and loads", async () => {
        for (const result of results) {
          if (engine === "native") {
            // One module, SDK included: nothing imported, so nothing outside the SDK's protocol.
            assert.doesNotMatch(await Deno.readTextFile(result.wasm), /^\s*import\s/m);
            continue;
          }
          const wit = await componentWit(await Deno.readFile(result.wasm));
          const items = (kind: string) =>
            [...wit.matchAll(new RegExp(`^\\s*${kind} ([^;]+);`, "gm"))].map((m) => m[1]);
          for (const name of items("import")) {
            assert.ok(
              WORLD_IMPORTS.includes(name) || /^wasi:cli\/[a-z-]+@0\.2\.12$/.test(name),
              `${result.name} imports ${name}, which is not in the world`,
            );
          }
          assert.deepEqual(items("export").sort(), WORLD_EXPORTS);
        }
        const health = await (await pier.fetch("/_/health")).json();
        for (const component of health.components) {
          assert.equal(component.state, "loaded", JSON.stringify(component));
          assert.deepEqual(component.warnings, [], component.name);
        }
      });

      await t.step("hello: path params, query params, JSON echo, HTML page", async () => {
        assert.deepEqual(await call("/hello/Ada%20L"), {
          status: 200,
          type: "text/plain; charset=utf-8",
          body: "Hello, Ada L.",
        });
        assert.equal((await call("/hello/Ada?excited")).body, "Hello, Ada!");
        const echo = await send("POST", "/hello/echo?x=1&y=2", { items: [1, "two"] });
        assert.deepEqual(echo.body, {
          method: "POST",
          path: "/hello/echo",
          query: { x: "1", y: "2" },
          contentType: "text/plain;charset=UTF-8",
          body: { items: [1, "two"] },
        });
        assert.deepEqual(await send("POST", "/hello/echo", "{not json"), {
          status: 400,
          type: "text/plain; charset=utf-8",
          body: "the body must be JSON",
        });
        const page = await call(`/hello?name=${encodeURIComponent('<img src=x onerror="1">')}`);
        assert.equal(page.type, "text/html; charset=utf-8");
        assert.match(page.body, /<h1>Hello, &lt;img src=x onerror=&quot;1&quot;&gt;!<\/h1>/);
        assert.doesNotMatch(page.body, /<img/);
        assert.match((await call("/hello")).body, /<h1>Hello, world!<\/h1>/);
      });

      await t.step("todos: CRUD on SQLite with validation errors as 400s", async () => {
        assert.deepEqual((await call("/todos")).body, [], "the table is created on first use");
        const created = await send("POST", "/todos", { title: "  buy milk  " });
        assert.equal(created.status, 201);
        assert.equal(created.body.title, "buy milk");
        assert.equal(created.body.done, false);
        assert.equal(typeof created.body.id, "number");
        assert.equal(typeof created.body.createdAt, "number");
        const id = created.body.id;

        for (
          const [body, reason] of [
            [{}, "title must be a non-empty string"],
            [{ title: "   " }, "title must be a non-empty string"],
            [{ title: 5 }, "title must be a non-empty string"],
            [{ title: "x".repeat(201) }, "title must be at most 200 characters"],
            ["[1]", "the body must be a JSON object"],
            ["nonsense", "the body must be a JSON object"],
          ] as const
        ) {
          assert.deepEqual(await send("POST", "/todos", body), {
            status: 400,
            type: "text/plain; charset=utf-8",
            body: reason,
          });
        }
        assert.equal((await send("PATCH", `/todos/${id}`, { done: "yes" })).status, 400);
        assert.equal((await call("/todos/abc")).body, "id must be a positive integer");

        assert.deepEqual((await call(`/todos/${id}`)).body, created.body);
        const patched = await send("PATCH", `/todos/${id}`, { done: true });
        assert.deepEqual(patched.body, { ...created.body, done: true });
        const renamed = await send("PATCH", `/todos/${id}`, { title: "buy oat milk" });
        assert.deepEqual(renamed.body, { ...created.body, title: "buy oat milk", done: true });
        await send("POST", "/todos", { title: "second" });
        assert.deepEqual((await call("/todos")).body.map((t: { title: string }) => t.title), [
          "buy oat milk",
          "second",
        ]);

        const deleted = await pier.fetch(`/todos/${id}`, { method: "DELETE" });
        assert.equal(deleted.status, 204);
        await deleted.body?.cancel();
        assert.deepEqual(await call(`/todos/${id}`), {
          status: 404,
          type: "text/plain; charset=utf-8",
          body: `no todo ${id}`,
        });
        assert.equal((await send("PATCH", `/todos/${id}`, { done: false })).status, 404);
        assert.equal((await call(`/todos/${id}`, { method: "DELETE" })).status, 404);
      });

      await t.step("page: rows from the database, escaped", async () => {
        const evil = `<script>alert("pwned")</script> & 'quotes'`;
        await send("POST", "/todos", { title: evil });
        const page = await call("/page");
        assert.equal(page.status, 200);
        assert.equal(page.type, "text/html; charset=utf-8");
        assert.ok(
          page.body.includes(
            '<li class="open">&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;</li>',
          ),
          page.body,
        );
        assert.doesNotMatch(page.body, /<script>/);
        assert.match(page.body, /<li class="open">second<\/li>/);

        const search = await call(`/page?q=${encodeURIComponent('SEC"<')}`);
        assert.match(search.body, /<h1>Todos matching “SEC&quot;&lt;”<\/h1>/);
        assert.match(search.body, /value="SEC&quot;&lt;"/);
        assert.match(search.body, /<p>Nothing to do\.<\/p>/);
        assert.match((await call("/page?q=SEC")).body, /<ul><li class="open">second<\/li><\/ul>/);
      });

      await t.step("page: a real browser shows titles as text and runs none of them", async () => {
        const attack = `<img src=x onerror="document.title='pwned'">` +
          `<script>document.title='pwned'</script>`;
        await send("POST", "/todos", { title: attack });
        const dom = await renderInBrowser(`${pier.url}/page`);
        assert.match(dom, /<title>Todos<\/title>/, "no injected script ran");
        assert.ok(dom.includes("&lt;img src=x onerror="), "the title is shown as text");
        assert.doesNotMatch(dom, /<img|pwned<\/title>/);
        assert.match(dom, /<li class="open">second<\/li>/);
      });

      await t.step("counter: atomic increments in a KV bucket", async () => {
        const first = await call("/counter/home");
        assert.deepEqual(first.body, { page: "home", visits: 1, previousVisit: null });
        const second = await call("/counter/home");
        assert.equal(second.body.visits, 2);
        assert.match(second.body.previousVisit, /^\d{4}-\d\d-\d\dT/);
        // Concurrent visits are never lost.
        const counts = await Promise.all(
          Array.from({ length: 20 }, () => call("/counter/busy").then((r) => r.body.visits)),
        );
        assert.deepEqual(counts.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
        assert.deepEqual((await call("/counter")).body, { pages: ["busy", "home"] });
        assert.equal((await call("/counter/home", { method: "DELETE" })).status, 204);
        assert.deepEqual((await call("/counter")).body, { pages: ["busy"] });
        assert.equal((await call("/counter/home")).body.visits, 1);
      });

      await t.step("weather: outbound HTTP to the granted API, transformed", async () => {
        assert.deepEqual(await call("/weather/Berlin"), {
          status: 200,
          type: "application/json",
          body: {
            city: "Berlin",
            temperatureC: 13.5,
            windKmh: 21.2,
            summary: "mild",
            observedAt: "2026-01-15T12:00",
          },
        });
        const query = api.calls.at(-1)!;
        assert.equal(query.get("latitude"), "52.52");
        assert.equal(query.get("longitude"), "13.41");
        assert.equal(query.get("current"), "temperature_2m,wind_speed_10m");
        const unknown = await call("/weather/atlantis");
        assert.equal(unknown.status, 404);
        assert.match(unknown.body, /unknown city; try one of: berlin, paris/);
        assert.deepEqual(await call("/weather/tokyo"), {
          status: 502,
          type: "text/plain; charset=utf-8",
          body: "the weather API answered 503",
        });
      });

      await t.step("weather: a host not granted is refused", async () => {
        await Deno.writeTextFile(
          `${dataDir}/weather/config.json`,
          JSON.stringify({ api: pier.url }),
        );
        const refused = await call("/weather/paris");
        assert.equal(refused.status, 502);
        assert.match(refused.body, /cannot be reached: fetch .* failed: HTTP-request-denied/);
        await Deno.writeTextFile(
          `${dataDir}/weather/config.json`,
          JSON.stringify({ api: weatherApiUrl }),
        );
      });

      await t.step("cleanup: the scheduled job deletes expired rows", async () => {
        const expired = await send("POST", "/sessions", { user: "old", ttlSeconds: -60 });
        assert.equal(expired.status, 201);
        const alive = await send("POST", "/sessions", { user: "new", ttlSeconds: 3600 });
        assert.equal((await send("POST", "/sessions", { user: "x" })).status, 400);
        assert.deepEqual((await call("/sessions")).body.map((s: { user: string }) => s.user), [
          "old",
          "new",
        ]);

        const jobs = await (await pier.fetch("/_/jobs")).json();
        const job = jobs.jobs.find((j: { component: string }) => j.component === "cleanup");
        assert.equal(job.name, "purge expired sessions");
        assert.equal(job.spec, "0 * * * * *");
        const run = await pier.fetch(`/_/jobs/cleanup/${encodeURIComponent(job.name)}/run`, {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        assert.equal(run.status, 200);
        assert.equal((await run.json()).outcome, "ok");
        await pier.waitForLog(/\[cleanup:out\] purged 1 expired session\(s\)/, 5000);
        assert.deepEqual((await call("/sessions")).body, [alive.body]);
      });
    } finally {
      await pier.stop();
      await api.server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  });
}
