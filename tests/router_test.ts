/** The route table: brace syntax, specificity, 405s and conflicts. */
import assert from "node:assert/strict";
import { parsePath, RouteError, Router } from "../runtime/routing/router.ts";

function router() {
  const r = new Router<string>();
  r.add("GET", "/users/{id}", "user");
  r.add("GET", "/users/me", "me");
  r.add("POST", "/users/{id}", "update");
  r.add("GET", "/files/{*rest}", "files");
  r.add("GET", "/{*all}", "fallback");
  r.add("GET", "/a/{x}/b/{y}", "two");
  return r;
}

Deno.test("literal beats parameter beats wildcard", () => {
  const r = router();
  const me = r.match("GET", "/users/me");
  assert.equal(me.kind === "found" && me.route.target, "me");
  const user = r.match("GET", "/users/42");
  assert.ok(user.kind === "found");
  assert.equal(user.route.target, "user");
  assert.deepEqual(user.params, [["id", "42"]]);
  const other = r.match("GET", "/elsewhere/x");
  assert.ok(other.kind === "found" && other.route.target === "fallback");
  assert.deepEqual(other.kind === "found" && other.params, [["all", "elsewhere/x"]]);
});

Deno.test("parameters are decoded, wildcards keep slashes", () => {
  const r = router();
  const two = r.match("GET", "/a/x%20y/b/%C3%A9");
  assert.ok(two.kind === "found");
  assert.deepEqual(two.params, [["x", "x y"], ["y", "é"]]);
  const files = r.match("GET", "/files/a/b/c.txt");
  assert.ok(files.kind === "found");
  assert.deepEqual(files.params, [["rest", "a/b/c.txt"]]);
});

Deno.test("a known path with the wrong method lists what is allowed", () => {
  const r = new Router<string>();
  r.add("POST", "/only", "x");
  r.add("DELETE", "/only", "y");
  const match = r.match("GET", "/only");
  assert.equal(match.kind, "method-not-allowed");
  assert.deepEqual(match.kind === "method-not-allowed" && match.allow.sort(), ["DELETE", "POST"]);
  assert.equal(r.match("GET", "/nothing").kind, "not-found");
});

Deno.test("a path shape already taken is refused naming its owner", () => {
  const r = router();
  assert.throws(
    () => r.add("GET", "/users/{other}", "late", (t) => `component ${t}`),
    (e: Error) => {
      assert.ok(e instanceof RouteError);
      assert.match(
        e.message,
        /GET \/users\/\{other\} is already registered by component user \(as \/users\/\{id\}\)/,
      );
      return true;
    },
  );
  r.add("PUT", "/users/{other}", "put is free");
});

Deno.test("bad paths are refused with a reason", () => {
  assert.throws(() => parsePath("users"), /must start with "\/"/);
  assert.throws(() => parsePath("/a/{*rest}/b"), /must be the last segment/);
  assert.throws(() => parsePath("/a/{id"), /bad segment/);
  assert.throws(() => parsePath("/a/{1x}"), /bad segment/);
});

Deno.test("a route is removed only by its owner; the path is free again", () => {
  const r = router();
  r.remove("GET", "/users/{id}", (target) => target === "someone else");
  assert.ok(r.match("GET", "/users/42").kind === "found");
  r.remove("GET", "/users/{id}", (target) => target === "user");
  r.remove("GET", "/files/{*rest}", (target) => target === "files");
  const user = r.match("GET", "/users/42");
  assert.ok(user.kind === "found" && user.route.target === "fallback");
  const files = r.match("GET", "/files/a/b");
  assert.ok(files.kind === "found" && files.route.target === "fallback");
  r.remove("GET", "/never/added", () => true);
  r.add("GET", "/users/{name}", "renamed");
  const renamed = r.match("GET", "/users/7");
  assert.ok(renamed.kind === "found" && renamed.route.target === "renamed");
});
