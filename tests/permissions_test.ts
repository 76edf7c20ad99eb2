/** The permission manifest parser, its schema, and the host rules. */
import assert from "node:assert/strict";
import {
  allowsHost,
  DEFAULT_LIMITS,
  isPrivateAddress,
  parseNetRule,
  parsePermissions,
  PermissionsError,
} from "../runtime/permissions.ts";
import { limitMemory } from "../runtime/compile/memory_limit.ts";

const schema = JSON.parse(
  await Deno.readTextFile(new URL("../runtime/permissions.schema.json", import.meta.url)),
);

Deno.test("the schema names exactly the keys the parser knows", () => {
  const keys = Object.keys(schema.properties).filter((k) => k !== "$schema").sort();
  assert.deepEqual(keys, ["db", "env", "kv", "limits", "net", "read"]);
  assert.deepEqual(
    Object.keys(schema.properties.limits.properties).sort(),
    Object.keys(DEFAULT_LIMITS).sort(),
  );
  for (const [key, value] of Object.entries(DEFAULT_LIMITS)) {
    // The worker count follows the machine's cores: the schema states the rule, not a number.
    if (key === "workers") assert.equal(value, Math.min(4, navigator.hardwareConcurrency));
    else assert.equal(schema.properties.limits.properties[key].default, value);
  }
});

Deno.test("a full manifest parses", () => {
  const permissions = parsePermissions({
    net: ["api.example.com", "localhost:9000", "*.example.org:443"],
    read: ["public", "./assets/"],
    env: ["WEATHER_API_KEY"],
    db: "write",
    kv: ["", "sessions"],
    limits: { memoryMb: 32, timeoutMs: 1000, concurrency: 2, workers: 3, outbound: 5 },
  }, "x.permissions.json");
  assert.deepEqual(permissions.net, [
    { host: "api.example.com", port: undefined, wildcard: false },
    { host: "localhost", port: 9000, wildcard: false },
    { host: "example.org", port: 443, wildcard: true },
  ]);
  assert.deepEqual(permissions.read, ["public", "assets"]);
  assert.deepEqual(permissions.limits, {
    memoryMb: 32,
    timeoutMs: 1000,
    concurrency: 2,
    workers: 3,
    outbound: 5,
  });
});

Deno.test("bad manifests name the file and the key", () => {
  const cases: [unknown, RegExp][] = [
    [{ nett: [] }, /"nett" is not a known key/],
    [{ net: "example.com" }, /"net" must be a list of strings/],
    [{ net: ["http://example.com"] }, /"net" entry "http:\/\/example.com"/],
    [{ read: ["../etc"] }, /"read" entry "..\/etc"/],
    [{ read: ["/etc"] }, /"read" entry "\/etc"/],
    [{ read: ["./"] }, /"read" entry ".\/" is the data dir itself/],
    [{ read: ["cache/x"] }, /"read" entry "cache\/x" is the compile cache, Pier's own/],
    [{ read: ["main.db-shm"] }, /"read" entry "main.db-shm" is the database, Pier's own/],
    [{ env: ["NOT-A-NAME"] }, /"env" entry/],
    [{ env: ["PIER_ADMIN_TOKEN"] }, /PIER_\* variables are Pier's own/],
    [{ db: "admin" }, /"db" must be "none", "read" or "write"/],
    [{ limits: { memoryMb: -1 } }, /"limits.memoryMb" must be a positive integer/],
    [{ limits: { cpu: 1 } }, /"limits.cpu" is not a known limit/],
    [[], /must be a JSON object/],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => parsePermissions(raw, "bad.permissions.json"), (error: Error) => {
      assert.ok(error instanceof PermissionsError);
      assert.match(error.message, /^bad\.permissions\.json: /);
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("host rules: exact, port, wildcard, private addresses", () => {
  const rules = ["api.example.com", "localhost:9000", "*.example.org", "10.0.0.5"].map((r) =>
    parseNetRule(r)!
  );
  assert.ok(allowsHost(rules, "api.example.com", 443));
  assert.ok(allowsHost(rules, "API.example.com", 80));
  assert.ok(!allowsHost(rules, "evil-api.example.com", 443));
  assert.ok(allowsHost(rules, "localhost", 9000));
  assert.ok(!allowsHost(rules, "localhost", 9001));
  assert.ok(allowsHost(rules, "a.b.example.org", 443));
  assert.ok(!allowsHost(rules, "example.org", 443), "a wildcard covers subdomains only");
  assert.ok(allowsHost(rules, "10.0.0.5", 80), "a private address listed exactly");
  const wildcardOnly = [parseNetRule("*.localhost")!];
  assert.ok(!allowsHost(wildcardOnly, "x.localhost", 80), "a wildcard never reaches loopback");
  for (
    const host of [
      "127.0.0.1",
      "127.1.2.3",
      "::1",
      "[::1]",
      "10.1.2.3",
      "172.16.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "localhost",
      "fe80::1",
    ]
  ) {
    assert.ok(isPrivateAddress(host), host);
  }
  for (const host of ["8.8.8.8", "172.32.0.1", "example.com", "2001:db8::1"]) {
    assert.ok(!isPrivateAddress(host), host);
  }
});

Deno.test("memory cap: written padded into the cache, then set in place at load", () => {
  // (module (memory (export "m") 1)): no maximum of its own.
  const module = new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...[0x05, 0x03, 0x01, 0x00, 0x01],
    ...[0x07, 0x05, 0x01, 0x01, 0x6d, 0x02, 0x00],
  ]);
  const stored = limitMemory(module, 2 ** 32);
  assert.notEqual(stored, module);
  const capped = limitMemory(stored, 2 * 65536);
  assert.equal(capped, stored, "the cap is set in the same buffer");
  const memory = new WebAssembly.Instance(new WebAssembly.Module(capped as BufferSource)).exports
    .m as WebAssembly.Memory;
  assert.equal(memory.grow(1), 1);
  assert.throws(() => memory.grow(1), RangeError);
  assert.throws(() => limitMemory(stored, 0), /needs 0.0625 MB of memory at start/);
});
