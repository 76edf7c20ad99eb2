/**
 * `GET /_/metrics` and the request log, against a real Pier serving a real
 * component: each counter moves by exactly what the requests did; the text
 * is strict Prometheus exposition; every request gets a log line under the
 * id the client sent (when valid); `--log-format json` leaves no line that is
 * not a JSON object.
 */
import assert from "node:assert/strict";
import { buildFixtures, type Pier, startPier } from "./harness.ts";
import { scratchDir } from "./scratch.ts";

const fixtures = await buildFixtures(["metrics", "jobs"]);

/** One sample: metric name, labels and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)/;
const TYPES = ["counter", "gauge", "histogram", "summary", "untyped"];

/**
 * Parses Prometheus text exposition strictly: every sample belongs to the
 * family of the TYPE line before it (a histogram's by `_bucket`, `_sum`,
 * `_count`), no family is declared twice, no series appears twice, every
 * value is a number, and a histogram's buckets are cumulative up to `+Inf`,
 * which equals its `_count`.
 */
function parseExposition(text: string): Sample[] {
  assert.ok(text.endsWith("\n"), "exposition ends with a newline");
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const series = new Set<string>();
  let family: string | undefined;
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment;
      assert.match(name, new RegExp(`^${NAME}$`), line);
      if (kind === "TYPE") {
        assert.ok(TYPES.includes(rest), `unknown type: ${line}`);
        assert.ok(!types.has(name), `family declared twice: ${line}`);
        types.set(name, rest);
        family = name;
      }
      continue;
    }
    const match = SAMPLE.exec(line);
    assert.ok(match, `not a sample line: ${JSON.stringify(line)}`);
    const [, name, labelText = "", valueText] = match;
    const type = family && types.get(family);
    const suffixes = type === "histogram" ? ["_bucket", "_sum", "_count"] : [""];
    assert.ok(
      suffixes.some((suffix) => name === `${family}${suffix}`),
      `${name} outside its family (${family})`,
    );
    const labels: Record<string, string> = {};
    for (let rest = labelText; rest.length;) {
      const label = LABEL.exec(rest);
      assert.ok(label, `bad labels: ${labelText}`);
      assert.ok(!(label[1] in labels), `label twice: ${line}`);
      labels[label[1]] = label[2].replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
      rest = rest.slice(label[0].length);
    }
    const value = valueText === "+Inf" ? Infinity : Number(valueText);
    assert.ok(!Number.isNaN(value), `bad value: ${line}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!series.has(key), `series twice: ${line}`);
    series.add(key);
    samples.push({ name, labels, value });
  }
  for (const [name, type] of types) {
    if (type !== "histogram") continue;
    const buckets = samples.filter((s) => s.name === `${name}_bucket`);
    const byComponent = Map.groupBy(buckets, (s) => s.labels.component);
    for (const [component, each] of byComponent) {
      const values = each.map((s) => s.value);
      assert.deepEqual(values, [...values].sort((a, b) => a - b), `${name} not cumulative`);
      assert.equal(each.at(-1)!.labels.le, "+Inf");
      const count = samples.find((s) =>
        s.name === `${name}_count` && s.labels.component === component
      );
      assert.equal(count?.value, values.at(-1), `${name}_count of ${component}`);
    }
  }
  return samples;
}

/** Scrapes `/_/metrics`: a lookup of one sample's value (0 when absent). */
async function scrape(pier: Pier) {
  const response = await pier.fetch("/_/metrics");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  const samples = parseExposition(await response.text());
  return (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) =>
      s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
    )?.value ?? 0;
}

async function startMetricsPier(args: string[] = []): Promise<Pier> {
  const root = await scratchDir("pier-metrics-");
  const componentsDir = `${root}/components`;
  const dataDir = `${root}/data`;
  await Deno.mkdir(componentsDir);
  await Deno.mkdir(`${dataDir}/public`, { recursive: true });
  await Deno.copyFile(fixtures.metrics, `${componentsDir}/metrics.wasm`);
  await Deno.writeTextFile(
    `${componentsDir}/metrics.permissions.json`,
    JSON.stringify({
      kv: ["mine"],
      read: ["public"],
      limits: { concurrency: 1, timeoutMs: 1000 },
    }),
  );
  return await startPier({ componentsDir, dataDir, args });
}

async function get(pier: Pier, path: string, headers: HeadersInit = {}) {
  const response = await pier.fetch(path, { headers });
  return { response, body: await response.text() };
}

Deno.test("the counters of /_/metrics move by what the requests did", async () => {
  const pier = await startMetricsPier();
  try {
    assert.equal((await get(pier, "/m/status/200")).response.status, 200); // started
    const before = await scrape(pier);
    const c = { component: "metrics" };

    assert.equal((await get(pier, "/m/status/200")).response.status, 200);
    assert.equal((await get(pier, "/m/status/404")).response.status, 404);
    assert.equal((await get(pier, "/m/trap")).response.status, 500);
    assert.equal((await get(pier, "/m/sleep/5000")).response.status, 504);
    // limits.concurrency is 1: a request while another is in flight is refused.
    const slow = get(pier, "/m/sleep/600");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await get(pier, "/m/status/200")).response.status, 503);
    assert.equal((await slow).response.status, 200);
    assert.equal(JSON.parse((await get(pier, "/m/kv/secret")).body).result, "access-denied");
    assert.match((await get(pier, "/m/fetch")).body, /HTTP-request-denied/);
    assert.equal(JSON.parse((await get(pier, "/m/fs")).body).result, "not-permitted");
    assert.match(JSON.parse((await get(pier, "/m/db")).body).result, /not granted|other/);
    assert.equal((await get(pier, "/nowhere")).response.status, 404); // no component's

    const after = await scrape(pier);
    const moved = (name: string, labels: Record<string, string> = {}) =>
      after(name, { ...c, ...labels }) - before(name, { ...c, ...labels });
    const requests = (route: string, cls: string) =>
      moved("pier_requests_total", { method: "GET", route, class: cls });
    assert.equal(requests("/m/status/{code}", "2xx"), 1); // the refused one has no route entry
    assert.equal(requests("/m/status/{code}", "4xx"), 1);
    assert.equal(requests("/m/status/{code}", "5xx"), 1); // the 503
    assert.equal(requests("/m/trap", "5xx"), 1);
    assert.equal(requests("/m/sleep/{ms}", "5xx"), 1);
    assert.equal(requests("/m/sleep/{ms}", "2xx"), 1);
    assert.equal(moved("pier_request_duration_seconds_count"), 10);
    assert.ok(moved("pier_request_duration_seconds_sum") >= 1.5, "the 504 and the sleep");
    assert.equal(moved("pier_traps_total"), 1);
    assert.equal(moved("pier_timeouts_total"), 1);
    assert.equal(moved("pier_worker_restarts_total"), 1);
    assert.equal(moved("pier_busy_total"), 1);
    assert.equal(moved("pier_capability_denied_total", { kind: "kv" }), 1);
    assert.ok(moved("pier_capability_calls_total", { kind: "kv" }) >= 1);
    assert.equal(moved("pier_capability_calls_total", { kind: "fetch" }), 1);
    assert.equal(moved("pier_capability_denied_total", { kind: "fetch" }), 1);
    assert.ok(moved("pier_capability_calls_total", { kind: "fs" }) >= 1);
    assert.equal(moved("pier_capability_denied_total", { kind: "fs" }), 1);
    assert.equal(moved("pier_capability_denied_total", { kind: "db" }), 1);
    assert.ok(moved("pier_capability_calls_total", { kind: "db" }) >= 1);
    assert.equal(after("pier_requests_in_flight", c), 0);
    assert.equal(after("pier_workers", c), 1);
    assert.ok(after("pier_instances", c) >= 1);
    assert.ok(after("pier_resident_memory_bytes") > 10 * 1024 * 1024);
    assert.ok(after("pier_event_loop_delay_seconds") >= 0);
    assert.equal(
      after("pier_compile_cache_hits_total") + after("pier_compile_cache_misses_total"),
      1,
    );
  } finally {
    await pier.stop();
  }
});

Deno.test("every request has a log line under its id, which reaches the guest", async () => {
  const pier = await startMetricsPier();
  try {
    const sent = "client-Id_1.2";
    const { response, body } = await get(pier, "/m/id", { "x-request-id": sent });
    assert.equal(response.headers.get("x-request-id"), sent);
    assert.deepEqual(JSON.parse(body), { id: sent, count: 1 });
    await pier.waitForLog(
      new RegExp(
        `INFO  request id=${sent} component=metrics method=GET route=/m/id status=200 ` +
          `ms=[\\d.]+ bytes=\\d+`,
      ),
      5000,
    );
    await pier.waitForLog(new RegExp(`\\[metrics:out\\] guest saw request id ${sent}`), 5000);

    // Too long, or with characters outside [A-Za-z0-9._-]: replaced by one Pier makes.
    for (const invalid of ["bad id", "x".repeat(129), "a\u00e9", 'id"<script>']) {
      const { response, body } = await get(pier, "/m/id", { "x-request-id": invalid });
      const made = response.headers.get("x-request-id")!;
      assert.match(made, /^[0-9a-f-]{36}$/, invalid);
      assert.deepEqual(JSON.parse(body), { id: made, count: 1 });
      await pier.waitForLog(new RegExp(`request id=${made} component=metrics`), 5000);
    }
    const unknown = await get(pier, "/nowhere");
    const id = unknown.response.headers.get("x-request-id")!;
    await pier.waitForLog(new RegExp(`request id=${id} component=- method=GET route=- status=404`));
  } finally {
    await pier.stop();
  }
});

Deno.test("--request-log off: no request lines, the id still reaches the guest", async () => {
  const pier = await startMetricsPier(["--request-log", "off"]);
  try {
    const { response, body } = await get(pier, "/m/id", { "x-request-id": "quiet-1" });
    assert.equal(response.headers.get("x-request-id"), "quiet-1");
    assert.equal(JSON.parse(body).id, "quiet-1");
    await pier.waitForLog(/guest saw request id quiet-1/, 5000);
  } finally {
    // Pier writes what request lines it holds before it exits.
    await pier.stop();
  }
  assert.doesNotMatch(pier.log(), / request id=/);
});

Deno.test("--log-format json writes every line, the guests' too, as one JSON object", async () => {
  const pier = await startMetricsPier(["--log-format", "json"]);
  try {
    const { body } = await get(pier, "/m/id", { "x-request-id": "json-1" });
    assert.equal(JSON.parse(body).id, "json-1");
    assert.equal((await get(pier, "/m/trap")).response.status, 500);
    await pier.waitForLog(/"id":"json-1"/, 5000);
    await pier.waitForLog(/guest saw request id json-1/, 5000);
  } finally {
    await pier.stop();
  }
  const lines = pier.log().split("\n").filter((line) => line !== "");
  const objects = lines.map((line) => {
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`not a JSON line: ${line}`);
    }
  });
  assert.ok(objects.every((o) => typeof o === "object" && o !== null && !Array.isArray(o)));
  const request = objects.find((o) => o.message === "request" && o.id === "json-1");
  assert.deepEqual(
    { ...request, time: undefined, ms: undefined },
    {
      time: undefined,
      level: "info",
      message: "request",
      id: "json-1",
      component: "metrics",
      method: "GET",
      route: "/m/id",
      status: 200,
      ms: undefined,
      bytes: request.bytes,
    },
  );
  assert.ok(
    objects.some((o) =>
      o.component === "metrics" && o.stream === "out" && o.line === "guest saw request id json-1"
    ),
  );
  assert.ok(objects.some((o) => o.level === "error" && /wasm trap/.test(o.message)));
  assert.ok(objects.some((o) => o.stream === "err" && /trapped on purpose/.test(o.line)));
  assert.ok(objects.some((o) => /^listening on/.test(o.message)));
});

Deno.test("job runs are counted by outcome", async () => {
  const token = "metrics-test-token";
  const pier = await startPier({
    components: { jobs: fixtures.jobs },
    env: { PIER_ADMIN_TOKEN: token },
  });
  try {
    const c = { component: "jobs" };
    const before = await scrape(pier);
    for (let i = 0; i < 2; i++) {
      const response = await pier.fetch("/_/jobs/jobs/manual/run", {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal((await response.json()).outcome, "ok");
    }
    // Its "fail" job fails every second.
    const moved = async (outcome: string) =>
      (await scrape(pier))("pier_job_runs_total", { ...c, outcome }) -
      before("pier_job_runs_total", { ...c, outcome });
    const deadline = Date.now() + 5000;
    while (await moved("failed") < 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(await moved("ok") >= 2, "two manual runs at least");
    assert.ok(await moved("failed") >= 1, "a failed run within 5 s");
  } finally {
    await pier.stop();
  }
});
