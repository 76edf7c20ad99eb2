/**
 * `deno task bench`: Pier side by side with its references, on loopback.
 *
 * Builds the bench guests (`bench/guests/`, cached in `.build/bench/`),
 * starts each system as a real process, drives it with `wrk`, and prints one
 * table. Everything it starts is stopped on exit, error or Ctrl-C.
 *
 * Flags: `--duration S` (seconds per load run, default 5), `--warmup S` (seconds of load before
 * each measured run, default 5: V8 keeps optimising Pier's code for seconds), `--connections N`
 * (default 16), `--fib N` (default 25), `--only a,b` (rows: hello, db, fib,
 * start, rss, log, reload), `--log-runs N` (runs each way of the log row,
 * default 2), `--json FILE` (also write the raw results), `--pier DIR`
 * (benchmark the Pier checkout in DIR instead of this one, to compare two),
 * `--processes N` (with N > 1, the hello rows also run Pier with
 * `--processes N`).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { EngineName } from "../tools/componentize.ts";
import { customSection } from "../tools/custom_section.ts";
import { startFlags } from "../tools/pier_process.ts";
import { fromFileUrl } from "../runtime/paths.ts";
import { writeAtomic } from "../runtime/write_atomic.ts";
import { buildGuest, buildWatGuest } from "./build.ts";
import { buildComponents } from "../tools/build.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url));

/** `--name value` flags over their defaults. */
function flags(argv: string[], defaults: Record<string, string>): Record<string, string> {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, "");
    if (!argv[i].startsWith("--") || !(name in defaults) || argv[i + 1] === undefined) {
      throw new Error(`unknown flag ${argv[i]}; flags: ${Object.keys(defaults).join(", ")}`);
    }
    out[name] = argv[++i];
  }
  return out;
}

const args = flags(Deno.args, {
  duration: "5",
  warmup: "5",
  connections: "16",
  fib: "25",
  only: "",
  "log-runs": "2",
  json: "",
  pier: "",
  processes: "1",
});
/** The Pier checkout benchmarked: this one, or another given with `--pier DIR` (to compare). */
const PIER_ROOT = args.pier || ROOT;
const DURATION_S = Number(args.duration);
const WARMUP_S = Number(args.warmup);
const CONNECTIONS = Number(args.connections);
const FIB_N = Number(args.fib);
const PROCESSES = Number(args.processes);
const ONLY = args.only ? new Set(args.only.split(",")) : undefined;
const wanted = (row: string) => !ONLY || ONLY.has(row);
if (wanted("floors") && !wanted("hello")) {
  throw new Error("the floors are measured against the hello reference: use --only hello,floors");
}
/** Components of the start-up and memory rows. */
const MANY = 10;
/** Rows in the bench table, read by the DB endpoint. */
const ITEMS = 1000;
const DB_ID = 421;

// ---------------------------------------------------------------------------
// Processes: everything started is tracked and stopped, whatever happens.

interface Proc {
  name: string;
  child: Deno.ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  exited: Promise<Deno.CommandStatus>;
}

const running = new Set<Proc>();

/** Pids of the processes below `pid`, read from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry.name)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      found.push(c);
      walk(c);
    }
  };
  walk(pid);
  return found;
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

function kill(pid: number, signal: Deno.Signal) {
  try {
    Deno.kill(pid, signal);
  } catch {
    // already gone
  }
}

function spawn(
  name: string,
  command: string,
  argv: string[],
  env?: Record<string, string>,
  cwd?: string,
): Proc {
  const child = new Deno.Command(command, {
    args: argv,
    env,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const listeners = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      output = (output + text).slice(-200_000);
      for (const listener of listeners) listener();
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  const exited = child.status.then(async (status) => {
    await pumped;
    for (const listener of listeners) listener();
    return status;
  });
  let done = false;
  exited.then(() => done = true);
  const proc: Proc = {
    name,
    child,
    output: () => output,
    exited,
    waitFor: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (!match && !done) return;
          listeners.delete(check);
          clearTimeout(timer);
          if (match) resolve(match);
          else reject(new Error(`${name} exited before printing ${pattern}:\n${output}`));
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`${name} never printed ${pattern}:\n${output}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      }),
  };
  running.add(proc);
  return proc;
}

/** SIGTERM to the process and everything below it, SIGKILL after 5 s. */
async function stop(what: Proc | { proc: Proc }) {
  const proc = "proc" in what ? what.proc : what;
  if (!running.delete(proc)) return;
  const pids = [proc.child.pid, ...descendants(proc.child.pid)];
  for (const pid of pids) kill(pid, "SIGTERM");
  const deadline = Date.now() + 5000;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids.filter(alive)) kill(pid, "SIGKILL");
  await proc.exited;
}

function stopAllNow() {
  for (const proc of running) {
    for (const pid of [proc.child.pid, ...descendants(proc.child.pid)]) kill(pid, "SIGKILL");
  }
  running.clear();
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    stopAllNow();
    Deno.exit(130);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Polls `url` until it answers 200; the time since `since`, in ms. */
/** Waits until Pier's health reports every component running (started from its cached manifest). */
async function allRunning(url: string, timeoutMs = 60_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const { components } = await (await fetch(`${url}/_/health`)).json();
    if (components.every((c: { running: boolean }) => c.running)) return;
    await sleep(100);
  }
  throw new Error(`components still not running after ${timeoutMs} ms`);
}

/**
 * Waits until `n` server processes, told apart by the pid `/_/health` gives (each asked on a new
 * connection, which the kernel gives to any of them), run every component.
 */
async function everyProcessRunning(url: string, n: number, timeoutMs = 60_000) {
  const running = new Set<number>();
  const deadline = performance.now() + timeoutMs;
  while (running.size < n) {
    if (performance.now() > deadline) throw new Error(`${running.size}/${n} processes running`);
    const health = await (await fetch(`${url}/_/health`, { headers: { connection: "close" } }))
      .json();
    if (health.components.every((c: { running: boolean }) => c.running)) running.add(health.pid);
    await sleep(20);
  }
}

async function firstOk(url: string, since: number, proc: Proc, timeoutMs = 180_000) {
  let exited = false;
  proc.exited.then(() => exited = true);
  const deadline = since + timeoutMs;
  while (performance.now() < deadline) {
    if (exited) throw new Error(`${proc.name} exited:\n${proc.output()}`);
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      if (response.status === 200) return performance.now() - since;
      if (/listening on/.test(proc.output())) {
        throw new Error(`${url} answered ${response.status}:\n${proc.output()}`);
      }
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // else: not listening yet
    }
    await sleep(5);
  }
  throw new Error(`${url} never answered 200:\n${proc.output()}`);
}

function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) / 1024;
}

// ---------------------------------------------------------------------------
// Load generation: wrk.

interface Load {
  rps: number;
  p50: number;
  p99: number;
  /** CPU time of the system's processes per request, in µs. */
  cpuUs: number;
  errors: string;
}

async function ensureWrk() {
  const found = await new Deno.Command("sh", { args: ["-c", "command -v wrk"], stdout: "null" })
    .output();
  if (found.success) return;
  console.log("installing wrk (apt-get install -y wrk)");
  const install = await new Deno.Command("sh", {
    args: ["-c", "apt-get install -y wrk || (apt-get update && apt-get install -y wrk)"],
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!install.success) throw new Error("could not install wrk; install it and run again");
}

/** Milliseconds from a wrk time such as `1.20ms`, `812.00us`, `2.01s`. */
function ms(text: string): number {
  const [, value, unit] = text.match(/([\d.]+)(us|ms|s|m)/)!;
  return Number(value) * { us: 1e-3, ms: 1, s: 1e3, m: 6e4 }[unit]!;
}

async function wrk(url: string, seconds: number): Promise<string> {
  const out = await new Deno.Command("wrk", {
    args: [
      "-t1",
      `-c${CONNECTIONS}`,
      `-d${seconds}s`,
      "--timeout",
      "10s",
      "--latency",
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

/** Warms up for 1 s, then measures `url` for the configured duration. */
/** CPU time used so far by processes `pids` (all their threads), in ms. */
function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/**
 * Warms up for {@link WARMUP_S}, then measures `url` for the configured duration; also
 * the CPU time the system's processes (`system.pids()`) spent per request,
 * which other load on the machine does not skew the way it skews req/s.
 */
async function load(label: string, url: string, system: Started): Promise<Load> {
  const check = await fetch(url);
  const body = await check.text();
  if (check.status !== 200) throw new Error(`${label}: ${url} answered ${check.status}: ${body}`);
  await wrk(url, WARMUP_S);
  const pids = system.pids();
  const cpuBefore = cpuMs(pids);
  const text = await wrk(url, DURATION_S);
  const cpu = cpuMs(pids) - cpuBefore;
  // Anchored: a stdev column such as `90.50%` also contains "50%".
  const percentile = (p: number) => text.match(new RegExp(`^\\s*${p}%\\s+(\\S+)`, "m"))?.[1];
  const p50 = percentile(50);
  const p99 = percentile(99);
  if (!/Requests\/sec/.test(text) || !p50 || !p99) {
    throw new Error(`${label}: unexpected wrk output:\n${text}`);
  }
  const errors = [
    text.match(/Non-2xx or 3xx responses: \d+/)?.[0],
    text.match(/Socket errors:.*/)?.[0],
  ].filter(Boolean).join("; ");
  const requests = Number(text.match(/(\d+) requests in/)![1]);
  const result = {
    rps: Number(text.match(/Requests\/sec:\s+([\d.]+)/)![1]),
    p50: ms(p50),
    p99: ms(p99),
    cpuUs: (cpu * 1000) / requests,
    errors,
  };
  console.log(
    `  ${label}: ${result.rps.toFixed(0)} req/s, p50 ${fmtMs(result.p50)}, p99 ${
      fmtMs(result.p99)
    }, ${result.cpuUs.toFixed(0)} µs CPU/request${errors ? ` (${errors})` : ""}`,
  );
  return result;
}

/** The machine's 1-minute load average (it is shared: a busy neighbour shows here). */
function loadAverage(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
}

/** Runs each way of the request-log rows gets, alternated on, off, on, off. */
const LOG_RUNS = Number(args["log-runs"]);

/** Mean of the runs' req/s and CPU per request. */
function mean(runs: Load[]): Load {
  const avg = (pick: (l: Load) => number) =>
    runs.reduce((sum, l) => sum + pick(l), 0) / runs.length;
  return {
    rps: avg((l) => l.rps),
    p50: avg((l) => l.p50),
    p99: avg((l) => l.p99),
    cpuUs: avg((l) => l.cpuUs),
    errors: runs.map((l) => l.errors).filter(Boolean).join("; "),
  };
}

/**
 * The request log's cost on `/hello` of the Pier in `dir`: started with
 * `--request-log on` and `off` in turn, {@link LOG_RUNS} times each, the
 * load average noted before each run. Each run is a fresh process.
 */
async function requestLogRuns(label: string, dir: string): Promise<Record<"on" | "off", Load[]>> {
  const runs: Record<"on" | "off", Load[]> = { on: [], off: [] };
  for (let i = 0; i < LOG_RUNS; i++) {
    // on, off, off, on, ...: neither way always runs second (a later run tends to be faster).
    const order = i % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const);
    for (const way of order) {
      const pier = await startPier(dir, "/hello", {}, ["--request-log", way]);
      const at = `load average ${loadAverage()}`;
      runs[way].push(
        await load(`${label} hello, request log ${way} (${at})`, `${pier.url}/hello`, pier),
      );
      await stop(pier);
    }
  }
  return runs;
}

/** The two rows of one guest's request-log runs: each way's mean, and the runs' spread. */
function requestLogRows(guest: string, runs: Record<"on" | "off", Load[]>): Row[] {
  const each = (loads: Load[]) =>
    `runs: ${loads.map((l) => `${l.rps.toFixed(0)} req/s ${l.cpuUs.toFixed(0)} µs`).join(", ")}`;
  const on = mean(runs.on);
  const off = mean(runs.off);
  return [
    {
      n: "9",
      bench: "hello, request log on",
      system: `Pier, ${guest} guest`,
      load: on,
      result: each(runs.on),
      ratio: `${pct(on.rps, off.rps)} of log off`,
      target: `CPU/req ${pct(on.cpuUs, off.cpuUs)} of log off`,
    },
    {
      n: "9",
      bench: "hello, request log off",
      system: `Pier, ${guest} guest`,
      load: off,
      result: each(runs.off),
    },
  ];
}

// ---------------------------------------------------------------------------
// The systems.

/** Creates the `items` table the DB endpoints read. */
function seed(path: string) {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL)");
  const insert = db.prepare("INSERT INTO items (id, name, score) VALUES (?, ?, ?)");
  db.exec("BEGIN");
  for (let id = 1; id <= ITEMS; id++) insert.run(id, `item ${id}`, id / 7);
  db.exec("COMMIT");
  db.close();
}

/** `bytes` with a custom section appended: same code, its own compile-cache key. */
function withCustomSection(bytes: Uint8Array, name: string, payload: string): Uint8Array {
  return new Uint8Array([...bytes, ...customSection(name, payload)]);
}

interface Started {
  proc: Proc;
  url: string;
  /** Process start to the first 200 on the probe path, in ms. */
  firstOkMs: number;
  /** The server process (the launcher's child). */
  serverPid: number;
  /** The processes serving requests, for their CPU time. */
  pids(): number[];
}

async function startPier(
  dir: string,
  probe: string,
  env: Record<string, string> = {},
  pierArgs: string[] = [],
  processes = 1,
): Promise<Started> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const flags = await startFlags(PIER_ROOT);
  const started = performance.now();
  const proc = spawn(
    "pier",
    Deno.execPath(),
    [
      "run",
      ...flags,
      `${PIER_ROOT}/main.ts`,
      "--components",
      `${dir}/components`,
      "--data",
      `${dir}/data`,
      "--port",
      String(port),
      ...pierArgs,
      ...(processes > 1 ? ["--processes", String(processes)] : []),
    ],
    env,
    PIER_ROOT,
  );
  const firstOkMs = await firstOk(`${url}${probe}`, started, proc);
  const serverPid = Number((await proc.waitFor(/\(pid (\d+)\)/, 10_000))[1]);
  if (processes > 1) await everyProcessRunning(url, processes);
  // Its server processes and their database processes (started on first use, so read after the
  // warm-up) serve requests; the launcher only waits.
  const pids = () => [proc.child.pid, ...descendants(proc.child.pid)];
  return { proc, url, firstOkMs, serverPid, pids };
}

/**
 * Starts `command argv` as `name`, serving on loopback `port`, and waits for
 * its first 200 on `/hello`. It and the processes it starts (a floor's guest,
 * jco serve's worker) serve requests.
 */
async function startServer(
  name: string,
  port: number,
  command: string,
  argv: string[],
): Promise<Started> {
  const started = performance.now();
  const proc = spawn(name, command, argv);
  const url = `http://127.0.0.1:${port}`;
  const firstOkMs = await firstOk(`${url}/hello`, started, proc);
  const pids = () => [proc.child.pid, ...descendants(proc.child.pid)];
  return { proc, url, firstOkMs, serverPid: proc.child.pid, pids };
}

function startReference(dbPath: string): Promise<Started> {
  const port = freePort();
  return startServer("Deno.serve", port, Deno.execPath(), [
    "run",
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-write",
    `${ROOT}/bench/reference.ts`,
    String(port),
    dbPath,
  ]);
}

/** The hand-over designs `bench/floors/server.ts` measures, and how the table names them. */
const FLOORS = {
  worker: "a Worker (postMessage)",
  ring: "a Worker (Pier's ring)",
  process: "a process (pipes)",
  unix: "a process (Unix socket)",
  tcp: "a process (loopback TCP)",
} as const;

/**
 * The floor of one way to hand requests to an isolated guest
 * (`bench/floors/server.ts`): `Deno.serve` forwarding each request to a
 * worker or a child process that answers at once, nothing of Pier's; or,
 * `process-db` with database `db`, a child process whose answer is a row
 * read for it by a database process.
 */
function startFloor(design: keyof typeof FLOORS | "process-db", db = ""): Promise<Started> {
  const port = freePort();
  return startServer(`floor (${design})`, port, Deno.execPath(), [
    "run",
    "--allow-net", // 127.0.0.1 and the Unix socket's path
    "--allow-read",
    "--allow-write",
    `--allow-run=${Deno.execPath()}`,
    `${ROOT}/bench/floors/server.ts`,
    design,
    String(port),
    db,
  ]);
}

/** jco's CLI: the copy Deno installed with componentize-js, else npx. */
async function jcoCommand(): Promise<string[]> {
  const candidates = [
    `${ROOT}/node_modules/.deno/@bytecodealliance+jco@1.35.0/node_modules/@bytecodealliance/jco/src/jco.js`,
    `${ROOT}/node_modules/.bin/jco`,
  ];
  for (const path of candidates) {
    try {
      await Deno.stat(path);
      return [path];
    } catch {
      // not installed there
    }
  }
  return ["npx", "-y", "@bytecodealliance/jco@1.35.0"];
}

async function startJcoServe(wasm: string): Promise<Started> {
  const port = freePort();
  const jco = await jcoCommand();
  const [command, ...rest] = jco[0] === "npx" ? jco : ["node", ...jco];
  return await startServer("jco serve", port, command, [
    ...rest,
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    wasm,
  ]);
}

// ---------------------------------------------------------------------------
// The table.

interface Row {
  n: string;
  bench: string;
  system: string;
  load?: Load;
  /** A start-up time or memory figure. */
  result?: string;
  ratio?: string;
  target?: string;
}

function fmtMs(value: number): string {
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 10) return `${value.toFixed(0)} ms`;
  return `${value.toFixed(2)} ms`;
}

function pct(a: number, b: number): string {
  const r = a / b;
  return r >= 2 ? `${r.toFixed(1)}x` : `${(r * 100).toFixed(r < 0.1 ? 1 : 0)}%`;
}

function table(rows: Row[]): string {
  const header = [
    "#",
    "benchmark",
    "system",
    "req/s",
    "p50",
    "p99",
    "CPU/req",
    "result",
    "vs reference",
    "target",
  ];
  const numeric = (i: number) => i >= 3 && i <= 6;
  const lines = rows.map((r) => [
    r.n,
    r.bench,
    r.system,
    r.load ? r.load.rps.toFixed(0) : "",
    r.load ? fmtMs(r.load.p50) : "",
    r.load ? fmtMs(r.load.p99) : "",
    r.load ? `${r.load.cpuUs.toFixed(0)} µs` : "",
    (r.result ?? "") + (r.load?.errors ? ` (${r.load.errors})` : ""),
    r.ratio ?? "",
    r.target ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) =>
    `| ${
      cells.map((c, i) => numeric(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])).join(" | ")
    } |`;
  const rule = `|${
    widths.map((w, i) => numeric(i) ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2)).join("|")
  }|`;
  return [fmt(header), rule, ...lines.map(fmt)].join("\n");
}

const met = (ok: boolean, text: string) => `${ok ? "met" : "MISSED"}: ${text}`;

// ---------------------------------------------------------------------------

async function buildAll() {
  console.log("building the bench guests (cached in .build/bench/)");
  const jobs: [string, string, EngineName | "wat", string | undefined][] = [
    ["pier-spidermonkey", "pier.js", "spidermonkey", undefined],
    ["proxy", "proxy.js", "spidermonkey", "wasi:http/proxy@0.2.12"],
    ["pier-quickjs", "pier.js", "quickjs", undefined],
    ["pier-wat", "hello.wat", "wat", undefined],
    ["reload-a", "reload_a.js", "spidermonkey", undefined],
    ["reload-b", "reload_b.js", "spidermonkey", undefined],
  ];
  const built: Record<string, string | Error> = {};
  const queue = [...jobs];
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const [key, entry, engine, world] = job;
      const started = performance.now();
      try {
        built[key] = engine === "wat"
          ? await buildWatGuest(entry)
          : await buildGuest(entry, engine, world);
        console.log(`  ${key}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
      } catch (error) {
        built[key] = error as Error;
        const first = (error as Error).message.split("\n").find((l) => l.trim()) ?? "";
        console.log(`  ${key}: cannot build: ${first.slice(0, 160)}`);
      }
    }
  };
  await Promise.all([worker(), worker()]);
  // The SDK guest's routes (`sdk_routes.ts`) on the native engine and on SpiderMonkey.
  for (const [key, entry] of [["pier-native", "native.ts"], ["sdk-spidermonkey", "sdk.ts"]]) {
    const started = performance.now();
    const [result] = await buildComponents([`${ROOT}/bench/guests/${entry}`], {
      outDir: `${ROOT}/.build/bench`,
    });
    built[key] = result.status === "failed" ? new Error(result.error) : result.wasm;
    console.log(
      `  ${key}: ${
        result.status === "failed"
          ? `cannot build: ${result.error}`
          : `${((performance.now() - started) / 1000).toFixed(1)} s`
      }`,
    );
  }
  return built;
}

/** Server process and all its children (database and native component processes), in MB. */
function treeRssMb(pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, each) => {
    try {
      return sum + rssMb(each);
    } catch {
      return sum; // it exited meanwhile
    }
  }, 0);
}

/**
 * Starts Pier on `dir` three times, each until `probe` answers; returns each
 * start's ms to the first 200. The third time, once every component of the
 * `c<i>` set is running and has served a request and all idled 2 s, calls
 * `measure` with it.
 */
async function threeStarts(
  dir: string,
  probe: string,
  env: Record<string, string>,
  measure: (pier: Started) => void,
): Promise<number[]> {
  const runs: number[] = [];
  for (let run = 0; run < 3; run++) {
    const pier = await startPier(dir, probe, env);
    runs.push(pier.firstOkMs);
    if (run === 2) {
      await allRunning(pier.url);
      for (let i = 0; i < MANY; i++) await (await fetch(`${pier.url}/c${i}/hello`)).text();
      await sleep(2000);
      measure(pier);
    }
    await stop(pier);
  }
  return runs;
}

/** `rss` (MB) of Pier's server process serving no components (in `dir`), idle 2 s after its start. */
async function idleRss(dir: string, rss: (pid: number) => number): Promise<number> {
  await Deno.mkdir(`${dir}/components`, { recursive: true });
  const idle = await startPier(dir, "/_/health");
  await sleep(2000);
  const mb = rss(idle.serverPid);
  await stop(idle);
  return mb;
}

/**
 * {@link MANY} components `c0`, `c1`, ... in `dir/components` beside a seeded
 * database, each granted the database and `BENCH_PREFIX_<i>`, the path prefix
 * it serves under; `place` writes component `name`'s code at `path` plus its
 * extension. Returns the environment that sets the prefixes.
 */
async function manyComponents(
  dir: string,
  place: (path: string, name: string) => Promise<void>,
): Promise<Record<string, string>> {
  await Deno.mkdir(`${dir}/components`, { recursive: true });
  await Deno.mkdir(`${dir}/data`, { recursive: true });
  seed(`${dir}/data/main.db`);
  const env: Record<string, string> = {};
  for (let i = 0; i < MANY; i++) {
    const name = `c${i}`;
    const variable = `BENCH_PREFIX_${i}`;
    env[variable] = `/${name}`;
    await place(`${dir}/components/${name}`, name);
    await Deno.writeTextFile(
      `${dir}/components/${name}.permissions.json`,
      JSON.stringify({ db: "read", env: [variable] }),
    );
  }
  return env;
}

/**
 * Rows 7-8 for the native engine: ten native components (one process each),
 * process start to the first 200 (median of 3), and the idle RSS each adds
 * (the server process and its children, against Pier with no component).
 */
async function nativeStartup(
  dir: string,
  module: string,
  results: Record<string, unknown>,
): Promise<Row[]> {
  const env = await manyComponents(dir, (path) => Deno.copyFile(module, `${path}.js`));
  const probe = `/c${MANY - 1}/hello`;
  console.log(`native start-up: ${MANY} native components, process start to the first 200`);
  let rss10 = 0;
  const runs = await threeStarts(dir, probe, env, (pier) => rss10 = treeRssMb(pier.serverPid));
  const rss0 = await idleRss(`${dir}-empty`, treeRssMb);
  const warmMs = runs.sort((a, b) => a - b)[1];
  const perComponent = (rss10 - rss0) / MANY;
  console.log(`  ${runs.map(fmtMs).join(", ")}; RSS ${rss0.toFixed(0)} → ${rss10.toFixed(0)} MB`);
  results.nativeStartup = { runs, rss0, rss10 };
  const rows: Row[] = [];
  if (wanted("start")) rows.push(warmStartRow("Pier, native engine, warm", warmMs));
  if (wanted("rss")) {
    rows.push(
      idleRssRow(
        `Pier, ${MANY} native components`,
        `${rss10.toFixed(0)} MB with its processes`,
        perComponent,
        45,
        "native component",
      ),
    );
  }
  return rows;
}

/** Row 7: process start to the first 200 with the compile cache warm (median of 3). */
function warmStartRow(system: string, warmMs: number): Row {
  return {
    n: "7",
    bench: `start-up, ${MANY} components`,
    system,
    result: `first 200 after ${fmtMs(warmMs)} (median of 3)`,
    target: met(warmMs < 1000, "< 1 s"),
  };
}

/** Row 8: the idle RSS of Pier with `MANY` components, and what each adds against `limitMb`. */
function idleRssRow(
  system: string,
  result: string,
  perComponent: number,
  limitMb: number,
  component: string,
): Row {
  return {
    n: "8",
    bench: "idle RSS",
    system,
    result: `${result} (${perComponent.toFixed(1)} MB per component)`,
    target: met(perComponent <= limitMb, `<= ${limitMb} MB per ${component}`),
  };
}

function cpuModel(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return info.match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

// ---------------------------------------------------------------------------
// Row 10: hot reload.

/** Milliseconds from `since` until `url` answers `body` (polled every 5 ms). */
async function untilServes(url: string, body: string, since: number, timeoutMs = 300_000) {
  while (performance.now() - since < timeoutMs) {
    const response = await fetch(url);
    if (await response.text() === body) return performance.now() - since;
    await sleep(5);
  }
  throw new Error(`${url} never answered ${JSON.stringify(body)}`);
}

/**
 * The number in the first group of the last line matching `pattern` (global)
 * that `proc` printed, read 50 ms from now: the line comes by another pipe than
 * the response that shows its effect, and the request log soon pushes it out
 * of the output kept.
 */
async function lastLogged(proc: Proc, pattern: RegExp): Promise<number> {
  await sleep(50);
  const last = [...proc.output().matchAll(pattern)].at(-1);
  if (!last) throw new Error(`${proc.name} never printed ${pattern}`);
  return Number(last[1]);
}

const median = (values: number[]) => [...values].sort((x, y) => x - y)[values.length >> 1];

/**
 * A component source for the watch mode answering `GET /greet` with
 * `greeting`, built by `engine` (`native`, or the default SpiderMonkey).
 */
const greetSource = (greeting: string, engine?: string) =>
  `${
    engine ? `// @pier-engine ${engine}\n` : ""
  }import { defineComponent, text } from "@pier/guest";
export default defineComponent({ routes: { "GET /greet": () => text(${
    JSON.stringify(greeting)
  }) } });
`;

/** `.ts` saves under `--watch` measured per engine; the first of the row's numbers. */
const TS_SAVES = 5;

/** One `.ts` save under `--watch`: the build, the rest, the server's compile (if any) and reload. */
interface TsReload {
  /** From the save to the build's `built` line (the `.wasm` is written just before it). */
  build: number;
  /** From that line to the new version's first response. */
  after: number;
  /** The server's compile of the new file (absent for a native `.js`), and its whole reload. */
  compile?: number;
  reload: number;
}

/**
 * {@link TS_SAVES} saves of a `.ts` under `deno task start --watch`, each
 * timed from the write: its build (until the build's `built` line, looked
 * for as the new version is polled every 5 ms), then the rest until the new
 * version answers.
 */
async function tsReloads(dir: string, engine?: string): Promise<TsReload[]> {
  await Deno.mkdir(`${dir}/components`, { recursive: true });
  const source = `${dir}/components/greet.ts`;
  await Deno.writeTextFile(source, greetSource("first", engine));
  const watching = await startPier(dir, "/greet", {}, ["--watch", "--request-log", "off"]);
  const url = `${watching.url}/greet`;
  const builtLines = () => watching.proc.output().match(/built with \S+ in/g)?.length ?? 0;
  const runs: TsReload[] = [];
  try {
    for (let i = 0; i < TS_SAVES; i++) {
      const greeting = `save ${i}`;
      const before = builtLines();
      const since = performance.now();
      await Deno.writeTextFile(source, greetSource(greeting, engine));
      let build: number | undefined;
      for (;;) {
        if (build === undefined && builtLines() > before) build = performance.now() - since;
        if (await (await fetch(url)).text() === greeting) break;
        await sleep(5);
      }
      const total = performance.now() - since;
      build ??= total;
      const log = (pattern: RegExp) => lastLogged(watching.proc, pattern);
      runs.push({
        build,
        after: total - build,
        compile: engine === "native"
          ? undefined
          : await log(/greet: [\d.]+ MB, cache [^,]*, (\d+) ms/g),
        reload: await log(/greet: reloaded in (\d+) ms/g),
      });
    }
  } finally {
    await stop(watching);
  }
  return runs;
}

/** A row's words for {@link tsReloads}: medians, and the spread of the part after the build. */
function tsReloadLine(runs: TsReload[]): string {
  const after = runs.map((r) => r.after);
  const compiles = runs.flatMap((r) => r.compile === undefined ? [] : [r.compile]);
  return [
    `build ${fmtMs(median(runs.map((r) => r.build)))} + ${fmtMs(median(after))}`,
    `to the new version's first response (medians of ${runs.length};`,
    `after the build ${fmtMs(Math.min(...after))} to ${fmtMs(Math.max(...after))});`,
    `the server's reload ${fmtMs(median(runs.map((r) => r.reload)))}`,
    compiles.length ? `(compile ${fmtMs(median(compiles))})` : "",
  ].filter(Boolean).join(" ");
}

/**
 * Time from a component's file written to the first response from its new
 * version: a `.wasm` replaced by another whose compiled form is cached (two
 * versions taking turns), idle and under load, with the load's latency
 * steady and during swaps; and a `.ts` saved under `--watch` (its build, then
 * the rest).
 */
async function reloadBench(root: string, a: string, b: string) {
  const dir = `${root}/reload`;
  await Deno.mkdir(`${dir}/components`, { recursive: true });
  await Deno.mkdir(`${dir}/data`, { recursive: true });
  const target = `${dir}/components/reload.wasm`;
  await Deno.copyFile(a, target);
  const bytes: Record<string, Uint8Array> = {
    a: await Deno.readFile(a),
    b: await Deno.readFile(b),
  };
  const pier = await startPier(dir, "/version");
  const url = `${pier.url}/version`;
  let current = "a";
  /** The server's own part of each swap: from seeing the change to the swap. */
  const serverMs: number[] = [];
  const swap = async () => {
    const next = current === "a" ? "b" : "a";
    const since = performance.now();
    await writeAtomic(target, bytes[next]);
    const took = await untilServes(url, next, since);
    serverMs.push(await lastLogged(pier.proc, /reload: reloaded in (\d+) ms/g));
    current = next;
    return took;
  };
  console.log("reload: a .wasm replaced by one whose compiled form is cached");
  // Version b's first load compiles it into the cache: not measured.
  await swap();
  await swap();
  const idle: number[] = [];
  for (let i = 0; i < 7; i++) idle.push(await swap());
  console.log(`  idle: ${idle.map(fmtMs).join(", ")}`);
  const idleServerMs = serverMs.slice(2);
  const steady = await load("Pier steady", url, pier);
  let loading = true;
  const during = load("Pier during swaps", url, pier).finally(() => loading = false);
  const loaded: number[] = [];
  while (loading) loaded.push(await swap());
  const swapping = await during;
  console.log(`  under load: ${loaded.map(fmtMs).join(", ")}`);
  await stop(pier);

  console.log("reload: a .ts saved under --watch");
  const ts = await tsReloads(`${root}/reload-ts`);
  console.log(`  ${tsReloadLine(ts)}`);
  console.log("reload: a native .ts saved under --watch");
  const tsNative = await tsReloads(`${root}/reload-ts-native`, "native");
  console.log(`  ${tsReloadLine(tsNative)}`);

  const idleMs = median(idle);
  const wasmLine = [
    `new version answers ${fmtMs(idleMs)} after the write`,
    `(median of ${idle.length}, max ${fmtMs(Math.max(...idle))};`,
    `the server's swap ${fmtMs(median(idleServerMs))});`,
    `under load ${fmtMs(median(loaded))} (median of ${loaded.length})`,
  ].join(" ");
  const rows: Row[] = [
    {
      n: "10",
      bench: "reload: .wasm changed, cache warm",
      system: "Pier, SpiderMonkey guest",
      result: wasmLine,
      target: met(idleMs < 1000, "< 1 s"),
    },
    {
      n: "10",
      bench: "reload: load, steady",
      system: "Pier, SpiderMonkey guest",
      load: steady,
    },
    {
      n: "10",
      bench: "reload: load, during swaps",
      system: "Pier, SpiderMonkey guest",
      load: swapping,
      result: `${loaded.length} swaps during the run`,
      ratio: `p99 ${pct(swapping.p99, steady.p99)} of steady`,
    },
    ...([["SpiderMonkey guest", ts], ["native engine", tsNative]] as const).map(([what, runs]) => ({
      n: "10",
      bench: "reload: .ts saved (--watch)",
      system: `Pier, ${what}`,
      result: tsReloadLine(runs),
      target: met(median(runs.map((r) => r.after)) < 1000, "build + < 1 s"),
    })),
  ];
  return {
    rows,
    results: { idle, serverMs, loaded, steady, swapping, ts, tsNative },
  };
}

async function main() {
  const began = performance.now();
  await ensureWrk();
  const built = await buildAll();
  const spidermonkey = built["pier-spidermonkey"];
  if (spidermonkey instanceof Error) throw spidermonkey;
  const quickjs = built["pier-quickjs"];
  const quickjsNa = quickjs instanceof Error ? "n/a (cannot build)" : undefined;

  const root = await Deno.makeTempDir({ prefix: "pier-bench-" });
  const results: Record<string, unknown> = {};
  const rows: Row[] = [];
  try {
    // One component serving /hello, /fib/{n}, /db/{id}.
    const single = async (name: string, file: string) => {
      const dir = `${root}/${name}`;
      await Deno.mkdir(`${dir}/components`, { recursive: true });
      await Deno.mkdir(`${dir}/data`, { recursive: true });
      await Deno.copyFile(file, `${dir}/components/bench.${file.endsWith(".js") ? "js" : "wasm"}`);
      await Deno.writeTextFile(
        `${dir}/components/bench.permissions.json`,
        JSON.stringify({ db: "read" }),
      );
      seed(`${dir}/data/main.db`);
      return dir;
    };
    const refDb = `${root}/reference.db`;
    seed(refDb);

    // Rows 1-6: throughput.
    let ref: Record<string, Load> = {};
    let pier: Record<string, Load> = {};
    let pierQjs: Record<string, Load> = {};
    let pierWat: Load | undefined;
    let pierNative: Record<string, Load> = {};
    const pierSdkSm: Record<string, Load> = {};
    const nativeJs = built["pier-native"];
    const nativeNa = nativeJs instanceof Error ? "n/a (cannot build)" : undefined;
    let pierWatN: Load | undefined;
    let pierSmN: Load | undefined;
    const throughput = ["hello", "db", "fib"].filter(wanted);
    const paths: Record<string, string> = {
      hello: "/hello",
      db: `/db/${DB_ID}`,
      fib: `/fib/${FIB_N}`,
    };
    const drive = async (label: string, system: Started) => {
      const out: Record<string, Load> = {};
      for (const what of throughput) {
        out[what] = await load(`${label} ${what}`, `${system.url}${paths[what]}`, system);
      }
      return out;
    };
    if (throughput.length) {
      console.log(`load: wrk -t1 -c${CONNECTIONS} -d${DURATION_S}s after a ${WARMUP_S} s warm-up`);
      const reference = await startReference(refDb);
      ref = await drive("Deno.serve", reference);
      await stop(reference);

      const dir = await single("spidermonkey", spidermonkey);
      const pierSm = await startPier(dir, "/hello");
      pier = await drive("Pier (SpiderMonkey)", pierSm);
      await stop(pierSm);

      const sdkSm = built["sdk-spidermonkey"];
      if (!(sdkSm instanceof Error)) {
        const pierS = await startPier(await single("sdk-spidermonkey", sdkSm), "/hello");
        for (const what of throughput.filter((w) => w !== "fib")) {
          pierSdkSm[what] = await load(
            `Pier (SpiderMonkey, SDK) ${what}`,
            `${pierS.url}${paths[what]}`,
            pierS,
          );
        }
        await stop(pierS);
      }

      if (!nativeNa) {
        const pierN = await startPier(await single("native", nativeJs as string), "/hello");
        pierNative = await drive("Pier (native)", pierN);
        await stop(pierN);
      }

      const wat = built["pier-wat"];
      if (!(wat instanceof Error) && throughput.includes("hello")) {
        const pierW = await startPier(await single("wat", wat), "/hello");
        pierWat = await load("Pier (WAT) hello", `${pierW.url}/hello`, pierW);
        await stop(pierW);
      }

      if (PROCESSES > 1 && throughput.includes("hello")) {
        const label = `${PROCESSES} processes`;
        if (!(wat instanceof Error)) {
          const pierW = await startPier(await single("wat-n", wat), "/hello", {}, [], PROCESSES);
          pierWatN = await load(`Pier (WAT, ${label}) hello`, `${pierW.url}/hello`, pierW);
          await stop(pierW);
        }
        const pierN = await startPier(dir, "/hello", {}, [], PROCESSES);
        pierSmN = await load(`Pier (SpiderMonkey, ${label}) hello`, `${pierN.url}/hello`, pierN);
        await stop(pierN);
      }

      if (!quickjsNa) {
        const qdir = await single("quickjs", quickjs as string);
        const pierQ = await startPier(qdir, "/hello");
        pierQjs = await drive("Pier (QuickJS)", pierQ);
        await stop(pierQ);
      }
    }
    let jco: Load | undefined;
    let jcoNa: string | undefined;
    if (wanted("hello")) {
      const proxy = built["proxy"];
      if (proxy instanceof Error) jcoNa = "n/a (cannot build)";
      else {
        const server = await startJcoServe(proxy);
        jco = await load("jco serve hello", `${server.url}/hello`, server);
        await stop(server);
      }
    }
    const floors: Partial<Record<keyof typeof FLOORS, Load>> = {};
    if (wanted("floors") && ref.hello) {
      for (const design of Object.keys(FLOORS) as (keyof typeof FLOORS)[]) {
        const floor = await startFloor(design);
        floors[design] = await load(`floor (${design}) hello`, `${floor.url}/hello`, floor);
        await stop(floor);
      }
    }
    let databaseFloor: Load | undefined;
    if (wanted("floors") && ref.db) {
      const floor = await startFloor("process-db", refDb);
      databaseFloor = await load("floor (process-db) db", `${floor.url}/db/${DB_ID}`, floor);
      await stop(floor);
    }
    results.reference = ref;
    results.floors = { ...floors, "process-db": databaseFloor };
    results.pier = pier;
    results.pierQuickjs = pierQjs;
    results.pierWat = pierWat;
    results.pierNative = pierNative;
    results.pierSdkSpidermonkey = pierSdkSm;
    results.pierWatProcesses = pierWatN;
    results.pierProcesses = pierSmN;
    results.jco = jco;

    if (wanted("hello")) {
      rows.push({
        n: "1",
        bench: "hello",
        system: "Deno.serve",
        load: ref.hello,
        ratio: "100% (reference)",
      });
      rows.push({
        n: "2",
        bench: "hello",
        system: "Pier, QuickJS guest",
        result: quickjsNa,
        load: pierQjs.hello,
        ratio: pierQjs.hello ? pct(pierQjs.hello.rps, ref.hello.rps) : "",
      });
      const vsJco = jco ? pier.hello.rps / jco.rps : undefined;
      rows.push({
        n: "3",
        bench: "hello",
        system: "Pier, SpiderMonkey guest",
        load: pier.hello,
        ratio: pct(pier.hello.rps, ref.hello.rps),
        target: met(pier.hello.rps >= 0.25 * ref.hello.rps, ">= 25% of Deno.serve") + "; " +
          met(pier.hello.cpuUs <= 200, "CPU/request <= 200 µs") +
          (vsJco === undefined
            ? ""
            : `; ${met(vsJco >= 20, `>= 20x jco serve (${vsJco.toFixed(0)}x)`)}`),
      });
      if (pierSdkSm.hello) {
        rows.push({
          n: "3",
          bench: "hello",
          system: "Pier, SpiderMonkey guest, SDK",
          load: pierSdkSm.hello,
          result: "the native row's code (SDK)",
          ratio: pct(pierSdkSm.hello.rps, ref.hello.rps),
        });
      }
      /** A hello row's target: at least `share` of Deno.serve's req/s, at most `times` its CPU. */
      const helloTarget = (load: Load | undefined, share: number, times: number) =>
        load &&
        met(load.rps >= share * ref.hello.rps, `>= ${Math.round(share * 100)}% of Deno.serve`) +
          "; " +
          met(
            load.cpuUs <= times * ref.hello.cpuUs,
            `CPU/request <= ${times}x (${(load.cpuUs / ref.hello.cpuUs).toFixed(1)}x)`,
          );
      const nativeHello = pierNative.hello;
      rows.push({
        n: "3",
        bench: "hello",
        system: "Pier, native engine (V8)",
        load: nativeHello,
        result: nativeNa,
        ratio: nativeHello ? pct(nativeHello.rps, ref.hello.rps) : "",
        target: helloTarget(nativeHello, 0.4, 2.5),
      });
      rows.push({
        n: "3",
        bench: "hello",
        system: "Pier, WAT guest (no JS engine)",
        load: pierWat,
        result: pierWat ? "the host's own cost" : "n/a (cannot build)",
        ratio: pierWat ? pct(pierWat.rps, ref.hello.rps) : "",
        target: helloTarget(pierWat, 0.35, 3),
      });
      for (
        const [system, load, one] of [
          ["Pier, WAT guest", pierWatN, pierWat],
          ["Pier, SpiderMonkey guest", pierSmN, pier.hello],
        ] as const
      ) {
        if (!load || !one) continue;
        rows.push({
          n: "3",
          bench: "hello",
          system: `${system}, ${PROCESSES} processes`,
          load,
          result: `${pct(load.rps, one.rps)} of 1 process`,
          ratio: pct(load.rps, ref.hello.rps),
        });
      }
      rows.push({
        n: "4",
        bench: "hello",
        system: "jco serve (Node), SpiderMonkey guest",
        load: jco,
        result: jcoNa,
        ratio: jco ? pct(jco.rps, ref.hello.rps) : "",
      });
      for (const [design, floor] of Object.entries(floors)) {
        rows.push({
          n: "4f",
          bench: "hello",
          system: `floor: Deno.serve → ${FLOORS[design as keyof typeof FLOORS]}`,
          load: floor,
          result: `CPU/request ${(floor.cpuUs / ref.hello.cpuUs).toFixed(1)}x Deno.serve's`,
          ratio: pct(floor.rps, ref.hello.rps),
        });
      }
    }
    if (wanted("db")) {
      rows.push({
        n: "5",
        bench: "DB read by primary key",
        system: "Deno.serve + node:sqlite",
        load: ref.db,
        ratio: "100% (reference)",
      });
      rows.push({
        n: "5",
        bench: "DB read by primary key",
        system: "Pier, SpiderMonkey guest",
        load: pier.db,
        ratio: pct(pier.db.rps, ref.db.rps),
        target: met(pier.db.rps >= 0.3 * ref.db.rps, ">= 30% of plain") + "; " +
          met(pier.db.rps >= 0.1 * ref.db.rps, ">= 10%"),
      });
      if (pierSdkSm.db) {
        rows.push({
          n: "5",
          bench: "DB read by primary key",
          system: "Pier, SpiderMonkey guest, SDK",
          load: pierSdkSm.db,
          result: "the native row's code (SDK)",
          ratio: pct(pierSdkSm.db.rps, ref.db.rps),
        });
      }
      rows.push({
        n: "5",
        bench: "DB read by primary key",
        system: "Pier, native engine (V8)",
        load: pierNative.db,
        result: nativeNa,
        ratio: pierNative.db ? pct(pierNative.db.rps, ref.db.rps) : "",
        target: pierNative.db
          ? met(pierNative.db.rps >= 0.3 * ref.db.rps, ">= 30% of plain")
          : undefined,
      });
      if (databaseFloor) {
        rows.push({
          n: "5f",
          bench: "DB read by primary key",
          system: "floor: Deno.serve → a process → a database process (pipes)",
          load: databaseFloor,
          result: `CPU/request ${(databaseFloor.cpuUs / ref.db.cpuUs).toFixed(1)}x the reference's`,
          ratio: pct(databaseFloor.rps, ref.db.rps),
        });
      }
      if (pierQjs.db || quickjsNa) {
        rows.push({
          n: "5",
          bench: "DB read by primary key",
          system: "Pier, QuickJS guest",
          load: pierQjs.db,
          result: quickjsNa,
          ratio: pierQjs.db ? pct(pierQjs.db.rps, ref.db.rps) : "",
        });
      }
    }
    if (wanted("fib")) {
      rows.push({
        n: "6",
        bench: `fib(${FIB_N})`,
        system: "Deno.serve",
        load: ref.fib,
        ratio: "100% (reference)",
      });
      rows.push({
        n: "6",
        bench: `fib(${FIB_N})`,
        system: "Pier, SpiderMonkey guest",
        load: pier.fib,
        ratio: pct(pier.fib.rps, ref.fib.rps),
      });
      rows.push({
        n: "6",
        bench: `fib(${FIB_N})`,
        system: "Pier, native engine (V8)",
        load: pierNative.fib,
        result: nativeNa,
        ratio: pierNative.fib ? pct(pierNative.fib.rps, ref.fib.rps) : "",
        target: pierNative.fib
          ? met(pierNative.fib.rps >= 0.85 * ref.fib.rps, ">= 85% of Deno.serve")
          : undefined,
      });
      rows.push({
        n: "6",
        bench: `fib(${FIB_N})`,
        system: "Pier, QuickJS guest",
        load: pierQjs.fib,
        result: quickjsNa,
        ratio: pierQjs.fib ? pct(pierQjs.fib.rps, ref.fib.rps) : "",
      });
    }

    // Rows 7-8: start-up and memory with ten components.
    if (wanted("start") || wanted("rss")) {
      const dir = `${root}/ten`;
      const bytes = await Deno.readFile(spidermonkey);
      const env = await manyComponents(
        dir,
        (path, name) =>
          Deno.writeFile(`${path}.wasm`, withCustomSection(bytes, "pier-bench", name)),
      );
      const probe = `/c${MANY - 1}/hello`;
      console.log(`start-up: ${MANY} components, process start to the first 200 on ${probe}`);
      const cold = await startPier(dir, probe, env);
      console.log(`  cold cache: ${fmtMs(cold.firstOkMs)}`);
      await stop(cold);
      let rss10 = 0;
      let launcherRss = 0;
      const warmRuns = await threeStarts(dir, probe, env, (warm) => {
        rss10 = rssMb(warm.serverPid);
        launcherRss = rssMb(warm.proc.child.pid);
      });
      const warmMs = warmRuns.sort((a, b) => a - b)[1];
      console.log(`  warm cache: ${warmRuns.map(fmtMs).join(", ")} (median ${fmtMs(warmMs)})`);

      const rss0 = await idleRss(`${root}/empty`, rssMb);
      const perComponent = (rss10 - rss0) / MANY;
      console.log(
        `  idle RSS of the server process: ${rss0.toFixed(0)} MB with 0 components, ${
          rss10.toFixed(0)
        } MB with ${MANY} (launcher: ${launcherRss.toFixed(0)} MB)`,
      );
      results.startup = { coldMs: cold.firstOkMs, warmMs: warmRuns, rss0, rss10, launcherRss };
      if (wanted("start")) {
        rows.push({
          n: "7",
          bench: `start-up, ${MANY} components`,
          system: "Pier, cache cold",
          result: `first 200 after ${fmtMs(cold.firstOkMs)}`,
        });
        rows.push(warmStartRow("Pier, cache warm", warmMs));
      }
      if (wanted("rss")) {
        rows.push({
          n: "8",
          bench: "idle RSS",
          system: "Pier, 0 components",
          result: `${rss0.toFixed(0)} MB`,
        });
        rows.push(
          idleRssRow(
            `Pier, ${MANY} components`,
            `${rss10.toFixed(0)} MB`,
            perComponent,
            30,
            "component",
          ),
        );
      }
    }
    if ((wanted("start") || wanted("rss")) && !nativeNa) {
      rows.push(...await nativeStartup(`${root}/ten-native`, nativeJs as string, results));
    }
    // Row 9: the request log's cost, on and off alternated (the machine may be shared).
    if (wanted("log")) {
      console.log(`request log: /hello with --request-log on and off, ${LOG_RUNS} runs each`);
      const guests: [string, string | Error][] = [
        ["SpiderMonkey", spidermonkey],
        ["WAT", built["pier-wat"]],
      ];
      results.requestLog = {};
      for (const [guest, wasm] of guests) {
        if (wasm instanceof Error) continue;
        const runs = await requestLogRuns(`Pier (${guest})`, await single(`log-${guest}`, wasm));
        (results.requestLog as Record<string, unknown>)[guest] = runs;
        rows.push(...requestLogRows(guest, runs));
      }
    }
    if (wanted("reload")) {
      const [a, b] = [built["reload-a"], built["reload-b"]];
      if (a instanceof Error) throw a;
      if (b instanceof Error) throw b;
      const reload = await reloadBench(root, a, b);
      results.reload = reload.results;
      rows.push(...reload.rows);
    }
  } finally {
    for (const proc of [...running]) await stop(proc);
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }

  const machine =
    `${navigator.hardwareConcurrency} cores, ${cpuModel()}, ${Deno.build.os} ${Deno.build.arch}, Deno ${Deno.version.deno}`;
  console.log(
    `\nPier bench: ${machine}; wrk -t1 -c${CONNECTIONS} -d${DURATION_S}s after ${WARMUP_S} s on loopback; ${
      ((performance.now() - began) / 1000).toFixed(0)
    } s in all\n`,
  );
  console.log(table(rows));
  if (args.json) {
    await Deno.writeTextFile(args.json, JSON.stringify({ machine, results, rows }, null, 2));
  }
}

try {
  await main();
} catch (error) {
  console.error(`bench failed: ${(error as Error).stack ?? error}`);
  stopAllNow();
  Deno.exit(1);
}
