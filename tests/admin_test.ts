/**
 * The admin page `/_/admin` over a real Pier process: log-in, the cookie, the
 * refusals (wrong token, no cookie, cross-site writes, non-loopback clients
 * with no token set), and the page itself in headless Chromium driven over
 * the DevTools protocol: log in, see a component, its grants against its
 * imports and a failed component's error, press "run now", see the run, keep
 * a screenshot, log out and be refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { adminRoutes } from "../runtime/admin/page.ts";
import { isLoopback } from "../runtime/admin/auth.ts";
import { RecentLoad } from "../runtime/admin/load.ts";
import { ComponentMetrics } from "../runtime/metrics.ts";
import { componentizeWat } from "../tools/componentize.ts";
import { buildFixtures, componentsWithManifests, ensureChromium, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["jobs", "metrics", "badinit"]);
const plain = await Deno.makeTempFile({ prefix: "pier-plain-", suffix: ".wasm" });
await Deno.writeFile(
  plain,
  await componentizeWat(
    await Deno.readTextFile(new URL("../bench/guests/hello.wat", import.meta.url)),
  ),
);
const TOKEN = "admin-test-token";
const ARTIFACTS = new URL("../.build/artifacts/", import.meta.url);

/** Logs in through the form and returns the cookie it set. */
async function login(url: string, token: string, headers: HeadersInit = {}): Promise<Response> {
  return await fetch(`${url}/_/admin/login`, {
    method: "POST",
    body: new URLSearchParams({ token }),
    redirect: "manual",
    headers,
  });
}

Deno.test("admin page: log-in and refusals without a browser", async (t) => {
  const pier = await startPier({
    components: { jobs: fixtures.jobs },
    env: { PIER_ADMIN_TOKEN: TOKEN },
  });
  try {
    await t.step("no cookie: redirected to the login form", async () => {
      const response = await pier.fetch("/_/admin", { redirect: "manual" });
      await response.body?.cancel();
      assert.equal(response.status, 303);
      assert.equal(response.headers.get("location"), "/_/admin/login");
    });
    await t.step("no cookie: no load data, no component details either", async () => {
      for (const path of ["/_/admin/load", "/_/admin/components"]) {
        const response = await pier.fetch(path);
        await response.body?.cancel();
        assert.equal(response.status, 401, path);
      }
    });
    await t.step("wrong token: 401 and the form again, no cookie", async () => {
      const response = await login(pier.url, "not-the-token");
      assert.equal(response.status, 401);
      assert.match(await response.text(), /Wrong token[\s\S]*name="token"/);
      assert.equal(response.headers.get("set-cookie"), null);
      const forged = await pier.fetch("/_/admin", {
        redirect: "manual",
        headers: { cookie: "pier_admin=not-the-token" },
      });
      await forged.body?.cancel();
      assert.equal(forged.status, 303);
    });
    let cookie = "";
    await t.step(
      "right token: an HttpOnly, SameSite=Strict cookie for /_/ opens the page",
      async () => {
        const response = await login(pier.url, TOKEN);
        await response.body?.cancel();
        assert.equal(response.status, 303);
        const set = response.headers.get("set-cookie") ?? "";
        assert.match(set, /HttpOnly/);
        assert.match(set, /SameSite=Strict/);
        assert.match(set, /Path=\/_\//);
        cookie = set.split(";")[0];
        const page = await pier.fetch("/_/admin", { headers: { cookie } });
        assert.equal(page.status, 200);
        assert.match(await page.text(), /Pier admin/);
        const bearer = await pier.fetch("/_/admin", {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        assert.equal(bearer.status, 200);
        await bearer.body?.cancel();
      },
    );
    await t.step("the cookie runs a job same-site, never cross-site", async () => {
      const same = await pier.fetch("/_/jobs/jobs/manual/run", {
        method: "POST",
        headers: { cookie, origin: pier.url, "sec-fetch-site": "same-origin" },
      });
      assert.equal(same.status, 200, await same.clone().text());
      assert.equal((await same.json()).trigger, "manual");
      const crossSite: [string, string][] = [
        ["origin", "https://evil.example"],
        ["sec-fetch-site", "cross-site"],
      ];
      for (const header of crossSite) {
        const cross = await pier.fetch("/_/jobs/jobs/manual/run", {
          method: "POST",
          headers: [["cookie", cookie], header],
        });
        assert.equal(cross.status, 403, header.join(": "));
        await cross.body?.cancel();
      }
      const crossLogin = await login(pier.url, TOKEN, { origin: "https://evil.example" });
      await crossLogin.body?.cancel();
      assert.equal(crossLogin.status, 403);
      assert.equal(crossLogin.headers.get("set-cookie"), null);
    });
    await t.step("log-out expires the cookie, same-site only", async () => {
      const logout = (headers: HeadersInit) =>
        pier.fetch("/_/admin/logout", { method: "POST", redirect: "manual", headers });
      const cross = await logout({ cookie, origin: "https://evil.example" });
      await cross.body?.cancel();
      assert.equal(cross.status, 403);
      assert.equal(cross.headers.get("set-cookie"), null);
      const response = await logout({ cookie, origin: pier.url });
      await response.body?.cancel();
      assert.equal(response.status, 303);
      assert.equal(response.headers.get("location"), "/_/admin/login");
      assert.match(response.headers.get("set-cookie") ?? "", /^pier_admin=;.*Max-Age=0/);
    });
  } finally {
    await pier.stop();
  }
});

Deno.test("admin page: with no token set only loopback clients get it", async () => {
  const get = adminRoutes(undefined, new RecentLoad(), []).find((r) =>
    r.method === "GET" && r.path === "/_/admin"
  )!;
  const request = () => new Request("http://pier.example/_/admin");
  assert.equal((await get.handler(request(), [], { loopback: true })).status, 200);
  const far = await get.handler(request(), [], { loopback: false });
  assert.equal(far.status, 303);
  const tcp = (hostname: string): Deno.Addr => ({ transport: "tcp", hostname, port: 1 });
  for (const near of ["127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1"]) {
    assert(isLoopback(tcp(near)), near);
  }
  for (const other of ["10.0.0.1", "192.168.1.2", "::ffff:10.0.0.1", "fe80::1", "128.0.0.1"]) {
    assert(!isLoopback(tcp(other)), other);
  }
  // A real Pier on loopback with no token: the page answers.
  const pier = await startPier({ components: { jobs: fixtures.jobs } });
  try {
    const page = await pier.fetch("/_/admin", { redirect: "manual" });
    assert.equal(page.status, 200);
    await page.body?.cancel();
  } finally {
    await pier.stop();
  }
});

Deno.test("the admin charts' samples: requests per second and the p99 bucket over each interval", () => {
  const load = new RecentLoad();
  const metrics = new ComponentMetrics();
  const components = [{ name: "app", metrics }];
  load.sample(components, 0);
  for (let i = 0; i < 100; i++) metrics.request("GET", "/", 200, 1);
  metrics.request("GET", "/", 200, 3000);
  metrics.request("GET", "/", 200, 3000);
  load.sample(components, 10_000);
  load.sample(components, 20_000);
  // 102 requests: the 101st slowest lies in the bucket up to 5 s.
  assert.deepEqual(load.toJSON(), {
    app: [{ at: 10_000, rps: 10.2, p99Ms: 5000 }, { at: 20_000, rps: 0, p99Ms: null }],
  });
  for (let i = 0; i < 40; i++) load.sample(components, 30_000 + i * 10_000);
  assert.equal(load.toJSON().app.length, 30);
});

/** A headless Chromium page driven over the DevTools protocol. */
interface BrowserPage {
  /** Evaluates `expression` in the page (awaiting a promise) and returns its value. */
  evaluate(expression: string): Promise<unknown>;
  /** Polls `expression` until it is truthy, for up to 15 s. */
  waitFor(expression: string): Promise<void>;
  screenshot(): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Opens `url` in a fresh headless Chromium. */
async function openPage(url: string): Promise<BrowserPage> {
  const profile = await scratchDir("pier-chromium-");
  const child = new Deno.Command(await ensureChromium(), {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--window-size=1200,1400",
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      "about:blank",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Chromium names its DevTools socket on stderr.
  let seen = "";
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let endpoint: string | undefined;
  while (!endpoint) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`chromium exited: ${seen}`);
    seen += value;
    endpoint = /DevTools listening on (ws:\/\/\S+)/.exec(seen)?.[1];
  }
  void reader.read().then(function drain(r): unknown {
    return r.done ? undefined : reader.read().then(drain);
  });
  const socket = new WebSocket(endpoint);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let nextId = 0;
  const pending = new Map<number, (message: { result?: unknown; error?: unknown }) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    pending.get(message.id)?.(message);
  };
  const send = (method: string, params = {}, sessionId?: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = ++nextId;
      pending.set(
        id,
        (message) =>
          message.error
            ? reject(new Error(`${method}: ${JSON.stringify(message.error)}`))
            : resolve(message.result as Record<string, unknown>),
      );
      socket.send(JSON.stringify({ id, method, params, sessionId }));
    });
  const { targetId } = await send("Target.createTarget", { url });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const page = (method: string, params = {}) => send(method, params, sessionId as string);
  const evaluate = async (expression: string) => {
    const { result, exceptionDetails } = await page("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    }) as { result: { value: unknown }; exceptionDetails?: unknown };
    if (exceptionDetails) throw new Error(`${expression}: ${JSON.stringify(exceptionDetails)}`);
    return result.value;
  };
  return {
    evaluate,
    async waitFor(expression) {
      const deadline = Date.now() + 15_000;
      while (!await evaluate(`!!(${expression})`).catch(() => false)) {
        if (Date.now() > deadline) {
          throw new Error(
            `not true in 15 s: ${expression}; page: ${await evaluate("document.body?.innerText")}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async screenshot() {
      const { data } = await page("Page.captureScreenshot", { format: "png" });
      return Uint8Array.from(atob(data as string), (c) => c.charCodeAt(0));
    },
    async close() {
      socket.close();
      child.kill();
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** A variable granted to a component: its name may show, its value never. */
const SECRET = { name: "ADMIN_TEST_SECRET", value: "admin-test-secret-value-7f3a" };

Deno.test("admin page in Chromium: components, grants, a failed one, run now, log out", async () => {
  const { componentsDir, dataDir } = await componentsWithManifests({
    jobs: [fixtures.jobs, { db: "read" }],
    // Both import every capability of Pier's world (componentize-js imports the whole world).
    metrics: [fixtures.metrics, {
      kv: ["mine"],
      net: ["api.example.com"],
      env: [SECRET.name],
      limits: { timeoutMs: 1000 },
    }],
    badinit: [fixtures.badinit],
    // Hand-written WebAssembly that imports nothing: its grant is unused.
    plain: [plain, { kv: ["unused"] }],
  });
  const pier = await startPier({
    componentsDir,
    dataDir,
    env: { PIER_ADMIN_TOKEN: TOKEN, [SECRET.name]: SECRET.value },
  });
  const browser = await openPage(`${pier.url}/_/admin`);
  try {
    // No cookie yet: the page sent the browser to the form.
    await browser.waitFor(`document.querySelector("input[name=token]")`);
    await browser.evaluate(
      `document.querySelector("input[name=token]").value = ${JSON.stringify(TOKEN)};
       document.querySelector("form").submit()`,
    );
    const componentRow = (name: string) =>
      `[...document.querySelectorAll("#components tr")].find((tr) =>
        tr.cells[0]?.textContent === ${JSON.stringify(name)})`;
    await browser.waitFor(componentRow("jobs"));
    const cells = await browser.evaluate(
      `[...${componentRow("jobs")}.cells].map((td) => td.textContent)`,
    ) as string[];
    assert.equal(cells[3], "0", "no restarts");
    assert.equal(cells[4], "GET /jobs-fixture/ping");
    assert.ok(
      await browser.evaluate(
        `${componentRow("jobs")}.querySelectorAll("svg polyline").length === 2`,
      ),
    );

    // Grants against imports: one coloured cell per capability.
    const grant = (component: string, capability: string) =>
      `[...document.querySelectorAll("#grants tr")].find((tr) =>
        tr.cells[0]?.textContent === ${JSON.stringify(component)})
        ?.querySelector("[data-capability=${capability}]")`;
    await browser.waitFor(grant("metrics", "keyvalue"));
    const status = async (component: string, capability: string) =>
      await browser.evaluate(`(() => { const td = ${grant(component, capability)};
        return [td.dataset.status, td.textContent]; })()`) as [string, string];
    assert.deepEqual(await status("metrics", "keyvalue"), ["granted", "mine\nimported"]);
    assert.deepEqual(
      await status("metrics", "outbound"),
      ["granted", "api.example.com\nimported"],
    );
    assert.deepEqual(
      await status("metrics", "database"),
      ["denied", "not granted\nimported: its calls are denied"],
    );
    assert.equal((await status("metrics", "filesystem"))[0], "denied");
    assert.deepEqual(
      await status("metrics", "environment"),
      ["granted", `${SECRET.name}\nimported`],
    );
    assert.deepEqual(
      await status("plain", "keyvalue"),
      ["unused", "unused\nnot imported: the grant is unused"],
    );
    assert.deepEqual(await status("jobs", "database"), ["granted", "read\nimported"]);
    assert.equal((await status("jobs", "keyvalue"))[0], "denied");
    // Imported (its toolchain always does) and not granted: it sees an empty environment.
    assert.equal((await status("jobs", "environment"))[0], "quiet");
    assert.equal((await status("plain", "environment"))[0], "none");

    // The failed component: a box with its state, file and error; its row in red.
    const box = `document.querySelector(".failed-box[data-component=badinit]")`;
    await browser.waitFor(box);
    const failed = await browser.evaluate(`${box}.innerText`) as string;
    assert.match(failed, /badinit: failed since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    assert.ok(failed.includes(`file: ${componentsDir}/badinit.wasm`), failed);
    assert.match(failed, /init failed: .*badinit refuses to start/);
    assert.equal(await browser.evaluate(`${componentRow("badinit")}.className`), "failed");
    assert.match(
      await browser.evaluate(`${componentRow("badinit")}.cells[7].textContent`) as string,
      /^\d{4}-.* UTC\ninit failed: .*badinit refuses to start/,
    );

    // A new version a reload refuses: a box with its time, file and error; the old one serves on.
    await Deno.writeFile(`${componentsDir}/plain.wasm`, new TextEncoder().encode("not wasm"));
    const refused = `document.querySelector(".rejected-box[data-component=plain]")`;
    await browser.waitFor(`(refresh(), ${refused})`);
    const rejected = await browser.evaluate(`${refused}.innerText`) as string;
    assert.match(
      rejected,
      /plain: new version refused at \d{4}-.* UTC; the running version serves/,
    );
    assert.ok(rejected.includes(`file: ${componentsDir}/plain.wasm`), rejected);
    assert.match(rejected, /magic|not a WebAssembly|invalid/i);
    assert.equal(await (await pier.fetch("/hello")).text(), "Hello, world!\n");

    // A trap is the component's last error, with its time.
    const trap = await pier.fetch("/m/trap");
    await trap.body?.cancel();
    assert.equal(trap.status, 500);
    await browser.evaluate(`refresh()`);
    await browser.waitFor(
      `/^\\d{4}-.* UTC\\ncomponent failed: RuntimeError: wasm trap/.test(
        ${componentRow("metrics")}.cells[7].textContent)`,
    );
    // A request past the time limit restarts the worker.
    const late = await pier.fetch("/m/sleep/5000");
    await late.body?.cancel();
    assert.equal(late.status, 504);
    await browser.evaluate(`refresh()`);
    await browser.waitFor(`${componentRow("metrics")}.cells[3].textContent === "1"`);
    assert.match(
      await browser.evaluate(`${componentRow("metrics")}.cells[7].textContent`) as string,
      /UTC\nworker replaced: a request ran past the 1000 ms limit/,
    );

    const manualRow = `[...document.querySelectorAll("#jobs tr")].find((tr) =>
      tr.cells[0]?.textContent === "jobs/manual")`;
    await browser.waitFor(manualRow);
    assert.equal(await browser.evaluate(`${manualRow}.cells[3].textContent`), "");
    await browser.evaluate(`${manualRow}.querySelector("button").click()`);
    await browser.waitFor(
      `document.getElementById("message").textContent === "ran jobs/manual: ok"`,
    );
    await browser.waitFor(`${manualRow}.cells[3].textContent.includes("manual ok")`);

    // The variable's name shows; its value nowhere: not on the page, not in Pier's JSON.
    assert.ok(
      !(await browser.evaluate(`document.documentElement.outerHTML`) as string).includes(
        SECRET.value,
      ),
    );
    for (const path of ["/_/health", "/_/admin/components"]) {
      const text = await browser.evaluate(`fetch(${JSON.stringify(path)}).then((r) => r.text())`);
      assert.ok(!(text as string).includes(SECRET.value), path);
    }

    const png = await browser.screenshot();
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    await Deno.writeFile(new URL("admin.png", ARTIFACTS), png);
    assert.deepEqual([...png.slice(0, 4)], [0x89, 0x50, 0x4e, 0x47], "a PNG");
    // Not blank: decoded in the browser, the screenshot has many colours.
    const colours = await browser.evaluate(`(async () => {
      const image = new Image();
      image.src = "data:image/png;base64," + ${JSON.stringify(btoaBytes(png))};
      await image.decode();
      const canvas = new OffscreenCanvas(image.width, image.height);
      const context = canvas.getContext("2d");
      context.drawImage(image, 0, 0);
      const { data } = context.getImageData(0, 0, image.width, image.height);
      const seen = new Set();
      for (let i = 0; i < data.length; i += 4) seen.add(data[i] << 16 | data[i + 1] << 8 | data[i + 2]);
      return seen.size;
    })()`) as number;
    assert.ok(colours > 10, `the screenshot has ${colours} colour(s)`);

    // Log out: back at the form, and the admin's data is refused to this browser.
    await browser.evaluate(`document.getElementById("logout").click()`);
    await browser.waitFor(`document.querySelector("input[name=token]")`);
    assert.equal(
      await browser.evaluate(`fetch("/_/admin/components").then((r) => r.status)`),
      401,
    );
    assert.equal(
      await browser.evaluate(`fetch("/_/admin", { redirect: "manual" }).then((r) => r.type)`),
      "opaqueredirect",
    );
    assert.equal(
      await browser.evaluate(
        `fetch("/_/jobs/jobs/manual/run", { method: "POST" }).then((r) => r.status)`,
      ),
      401,
    );
  } finally {
    await browser.close();
    await pier.stop();
  }
});

/** Base64 of bytes too many for one `String.fromCharCode` call. */
function btoaBytes(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}
