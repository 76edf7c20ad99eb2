/**
 * Attacks on Pier's own surface (issue 17, items 9, 12 and 13), over real Pier
 * processes: a component shadowing Pier's paths, files in the components dir
 * that are not regular files (or are too large), malformed `%` escapes, and
 * responses without a body to requests and to jobs.
 */
import assert from "node:assert/strict";
import { buildComponents, upToDate } from "../tools/build.ts";
import { scaffold } from "../tools/new.ts";
import { fromFileUrl } from "../runtime/paths.ts";
import { buildFixtures, type Pier, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["shadow", "authui", "nobody"]);
const TOKEN = "surface-test-admin-token";
const bearer = { authorization: `Bearer ${TOKEN}` };

interface HealthComponent {
  name: string;
  state: string;
  error?: string;
  warnings: string[];
  routes: string[];
}

async function health(pier: Pier): Promise<Record<string, HealthComponent>> {
  // Generous, but a server hung on a file fails here rather than hanging the suite.
  const response = await pier.fetch("/_/health", { signal: AbortSignal.timeout(2000) });
  assert.equal(response.status, 200);
  const { components } = await response.json();
  return Object.fromEntries(components.map((c: HealthComponent) => [c.name, c]));
}

/** Fetches and returns the status, the headers and the whole body. */
async function call(pier: Pier, path: string, init: RequestInit = {}) {
  const response = await pier.fetch(path, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

Deno.test("a component cannot shadow Pier's own paths; /_/auth stays open to components", async (t) => {
  const pier = await startPier({
    components: { authui: fixtures.authui, shadow: fixtures.shadow },
    env: { PIER_ADMIN_TOKEN: TOKEN },
  });
  try {
    await t.step("routes inside Pier's paths are refused at load, with a message", async () => {
      const { shadow } = await health(pier);
      assert.equal(shadow.state, "loaded");
      const refused = [
        "HEAD /_/health",
        "GET /_/health/",
        "DELETE /_/health",
        "GET /_/health/{*rest}",
        "PUT /_/jobs/{component}/{job}/run",
        "GET /_/jobs/{component}/{job}/run",
        "POST /_/jobs/{component}/{job}/run/",
        "OPTIONS /_/jobs",
        "GET /_/metrics",
        "POST /_/admin/{*rest}",
      ];
      assert.deepEqual(
        shadow.warnings,
        refused.map((route) =>
          `route refused: ${route} is inside Pier's own paths (/_/health, /_/jobs, /_/metrics, ` +
          `/_/admin and everything under them); other paths under /_/ are free`
        ),
      );
      for (const route of refused) assert.ok(!shadow.routes.includes(route), route);
      assert.ok(
        shadow.routes.includes("GET /_/{*rest}") && shadow.routes.includes("POST /{*rest}"),
      );
      assert.match(
        pier.log(),
        /shadow: route refused: HEAD \/_\/health is inside Pier's own paths/,
      );
    });

    await t.step("every request for Pier's paths is answered by Pier", async () => {
      const expected: [string, string, number, string?][] = [
        ["GET", "/_/health", 200],
        ["HEAD", "/_/health", 200],
        ["GET", "/%5F/health", 200],
        ["GET", "/_/health/", 404],
        ["GET", "/_/health/deep/path", 404],
        ["DELETE", "/_/health", 405, "GET, HEAD"],
        ["POST", "/_/health", 405, "GET, HEAD"],
        ["GET", "/_/jobs", 200],
        ["GET", "/_/jobs/", 404],
        ["OPTIONS", "/_/jobs", 405, "GET, HEAD"],
        ["PATCH", "/_/jobs", 405, "GET, HEAD"],
        ["PUT", "/_/jobs/shadow/job/run", 405, "POST"],
        ["GET", "/_/jobs/shadow/job/run", 405, "POST"],
        ["POST", "/_/jobs/shadow/job/run", 404],
        ["POST", "/_/jobs/shadow/job/run/", 404],
        ["POST", "/_/jobs/x/y/run/", 404],
        ["GET", "/_/metrics", 200],
        ["POST", "/_/metrics", 405, "GET, HEAD"],
        ["POST", "/_/metrics/", 404],
        ["GET", "/_/admin", 200],
        ["POST", "/_/admin", 405, "GET, HEAD"],
        ["POST", "/_/admin/users", 404],
      ];
      for (const [method, path, status, allow] of expected) {
        // The admin token goes with every request: it must never reach a component.
        const { status: got, headers, text } = await call(pier, path, { method, headers: bearer });
        const what = `${method} ${path}: ${got} ${text}`;
        assert.equal(got, status, what);
        assert.equal(headers.get("x-served-by"), null, what);
        assert.ok(!text.includes("shadow answered"), what);
        if (allow) assert.equal(headers.get("allow"), allow, what);
      }
      // The shadow's log lines arrive in order: once this one is in, none came before it.
      assert.equal((await call(pier, "/after-the-attack")).headers.get("x-served-by"), "shadow");
      await pier.waitForLog(/shadow saw get \/after-the-attack/, 5000);
      assert.deepEqual(pier.log().match(/shadow saw .*/g), [
        "shadow saw get /after-the-attack authorization=null",
      ]);
      assert.ok(!pier.log().includes(TOKEN), "the admin token never reached a component");
    });

    await t.step("other paths under /_/ are the components'", async () => {
      const login = await call(pier, "/_/auth/login");
      assert.equal(login.status, 200);
      assert.deepEqual(JSON.parse(login.text), {
        from: "authui",
        method: "get",
        registered_path: "/_/auth/login",
        path_params: [],
      });
      const posted = JSON.parse((await call(pier, "/_/auth/login", { method: "POST" })).text);
      assert.equal(posted.method, "post");
      const asset = JSON.parse((await call(pier, "/_/auth/assets/app.js")).text);
      assert.deepEqual(asset.path_params, [["rest", "assets/app.js"]]);
      const other = await call(pier, "/_/anything-else", { method: "PUT" });
      assert.equal(other.headers.get("x-served-by"), "shadow");
      assert.match(other.text, /shadow answered put \/_\/anything-else/);
      const healthy = await call(pier, "/_/healthy");
      assert.equal(healthy.headers.get("x-served-by"), "shadow", "/_/healthy is not /_/health");
    });

    await t.step("a malformed % escape anywhere in the path is a 400", async () => {
      for (
        const [method, path] of [
          ["GET", "/_/jobs/%ZZ/job"],
          ["GET", "/_/jobs/shadow/%"],
          ["POST", "/_/jobs/shadow/%E0%A4%A/run"],
          ["GET", "/_/%ZZ"],
          ["GET", "/_/auth/%C3"],
          ["GET", "/anything/%zz/deeper"],
        ]
      ) {
        const { status, headers, text } = await call(pier, path, { method, headers: bearer });
        assert.equal(status, 400, `${method} ${path}: ${status} ${text}`);
        assert.match(text, /malformed %-escape in the path segment/);
        assert.equal(headers.get("x-served-by"), null);
      }
      const fine = await call(pier, "/_/jobs/%73hadow/job%20x");
      assert.equal(fine.status, 404, "well-formed escapes still decode");
      assert.equal(JSON.parse(fine.text).error, 'no job "job x" in component "shadow"');
    });
  } finally {
    await pier.stop();
  }
});

Deno.test("responses without a body: requests and jobs alike", async (t) => {
  const pier = await startPier({
    components: { nobody: fixtures.nobody },
    env: { PIER_ADMIN_TOKEN: TOKEN },
  });
  try {
    for (const shape of ["head", "empty", "late"]) {
      await t.step(`requests: ${shape}`, async () => {
        for (const status of [200, 204, 304]) {
          const response = await call(pier, `/nobody/${shape}/${status}`);
          assert.equal(response.status, status, `${shape} ${status}`);
          assert.equal(response.headers.get("x-shape"), shape);
          assert.equal(response.text, "");
        }
      });
      await t.step(`jobs: ${shape}`, async () => {
        for (const status of [200, 204, 304]) {
          const path = `/_/jobs/nobody/${encodeURIComponent(`${shape} ${status}`)}/run`;
          const response = await pier.fetch(path, { method: "POST", headers: bearer });
          assert.equal(response.status, 200);
          const run = await response.json();
          assert.equal(run.status, status, JSON.stringify(run));
          if (status === 304) {
            // Not 2xx: a failure like any other status, never an internal error.
            assert.equal(run.outcome, "failed");
            assert.equal(run.error, "status 304");
          } else {
            assert.equal(run.outcome, "ok", JSON.stringify(run));
            assert.equal(run.error, null);
          }
        }
      });
    }
  } finally {
    await pier.stop();
  }
});

Deno.test("only regular files of a sane size are read from the components dir", async () => {
  const root = await scratchDir("pier-surface-");
  const componentsDir = `${root}/components`;
  await Deno.mkdir(componentsDir);
  const dir = (name: string) => `${componentsDir}/${name}`;
  // Beside the attacks: a good component, and one linked, with a linked manifest (both supported).
  await Deno.copyFile(fixtures.authui, dir("good.wasm"));
  await Deno.symlink(fixtures.nobody, dir("linked.wasm"));
  await Deno.writeTextFile(`${root}/linked.json`, '{ "limits": { "timeoutMs": 5000 } }');
  await Deno.symlink(`${root}/linked.json`, dir("linked.permissions.json"));
  // The attacks.
  const mkfifo = (path: string) => new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok((await mkfifo(dir("fifo.wasm"))).success);
  await Deno.symlink("/dev/zero", dir("zero.wasm"));
  await Deno.copyFile(fixtures.authui, dir("zeromanifest.wasm"));
  await Deno.symlink("/dev/zero", dir("zeromanifest.permissions.json"));
  await Deno.copyFile(fixtures.authui, dir("fifomanifest.wasm"));
  assert.ok((await mkfifo(dir("fifomanifest.permissions.json"))).success);
  await Deno.copyFile(fixtures.authui, dir("bigmanifest.wasm"));
  await Deno.writeTextFile(dir("bigmanifest.permissions.json"), `{${" ".repeat(100_000)}}`);
  // Sparse: 300 MiB on paper, nothing on disk.
  await Deno.writeFile(dir("huge.wasm"), new Uint8Array());
  await Deno.truncate(dir("huge.wasm"), 300 * 1024 * 1024);

  // startPier gives up after 120 s: a start-up that hangs on the FIFO fails the test.
  const pier = await startPier({ componentsDir, dataDir: `${root}/data` });
  try {
    const byName = await health(pier);
    assert.equal(byName.good.state, "loaded");
    assert.equal(byName.linked.state, "loaded", byName.linked.error);
    const refusals: [string, RegExp][] = [
      [
        "fifo.wasm",
        /fifo\.wasm is a FIFO, not a regular file: a component must be a regular file or a link to one; replace or remove it/,
      ],
      ["zero.wasm", /zero\.wasm is a character device, not a regular file: a component must/],
      ["huge.wasm", /huge\.wasm is 300\.0 MiB, more than the 256\.0 MiB a component may have/],
      [
        "zeromanifest",
        /zeromanifest\.permissions\.json is a character device, not a regular file: a permission manifest must be a regular file/,
      ],
      ["fifomanifest", /fifomanifest\.permissions\.json is a FIFO, not a regular file/],
      [
        "bigmanifest",
        /bigmanifest\.permissions\.json is 97\.7 KiB, more than the 64\.0 KiB a permission manifest may have; remove it/,
      ],
    ];
    for (const [name, message] of refusals) {
      assert.equal(byName[name]?.state, "failed", name);
      assert.match(byName[name].error!, message);
      assert.match(pier.log(), message);
    }
    assert.equal(Object.keys(byName).length, 2 + refusals.length);
    const login = await call(pier, "/_/auth/login");
    assert.equal(JSON.parse(login.text).from, "authui");
    assert.equal((await call(pier, "/nobody/head/200")).status, 200);
  } finally {
    await pier.stop();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the launcher's build check does not open a .wasm that is not a regular file", async () => {
  // Inside the project, so that the source finds the guest SDK through deno.json.
  const scratch = fromFileUrl(new URL("../.build/surface_test", import.meta.url));
  await Deno.remove(scratch, { recursive: true }).catch(() => {});
  await Deno.mkdir(scratch, { recursive: true });
  try {
    const [source] = await scaffold("piped", scratch);
    const wasm = `${scratch}/piped.wasm`;
    const options = { cacheDir: fromFileUrl(new URL("../.build/components", import.meta.url)) };
    assert.equal((await buildComponents([source], options))[0].status, "built");
    assert.equal(await upToDate(source), true);
    await Deno.remove(wasm);
    assert.ok((await new Deno.Command("mkfifo", { args: [wasm] }).output()).success);
    // Bounded: on a hang, a writer releases the blocked open and the test fails.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<"hung">((resolve) =>
      timer = setTimeout(() => resolve("hung"), 10_000)
    );
    const answer = await Promise.race([upToDate(source), hung]);
    clearTimeout(timer);
    if (answer === "hung") {
      (await Deno.open(wasm, { write: true })).close();
      assert.fail("upToDate blocked on opening the FIFO");
    }
    assert.equal(answer, false, "a FIFO is no build: the component is built again");
    assert.equal((await buildComponents([source], options))[0].status, "built");
    assert.ok((await Deno.lstat(wasm)).isFile, "the build replaced the FIFO");
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
});
