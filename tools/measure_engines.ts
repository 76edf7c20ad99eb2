/**
 * Measures the guest engines on one component (`bench/guests/engines.ts`)
 * and prints the README's engine table:
 *
 * ```sh
 * deno run -A --unstable-worker-options tools/measure_engines.ts [REQUESTS]
 * ```
 *
 * Per engine: the build (bundle, type-check, componentize) time and `.wasm`
 * size; jco's transpile and the core modules' compile (what Pier does once
 * per component, then caches); a fresh instance (what Pier pays when no idle
 * instance is free); then, served by a real Pier over loopback HTTP, the
 * latency of a trivial route (REQUESTS sequential requests, default 300) and
 * of a CPU-bound one (`fib(25)`, next to the same function in Deno's V8).
 *
 * @module
 */
import { $init, generate } from "@bytecodealliance/jco-transpile/component";
import { buildComponents, type BuildResult } from "./build.ts";
import { type EngineName, ENGINES } from "./componentize.ts";
import { fromFileUrl, join } from "../runtime/paths.ts";
import { startPier } from "./pier_process.ts";

const SOURCE = fromFileUrl(new URL("../bench/guests/engines.ts", import.meta.url));
const FIB_N = 25;
const REQUESTS = Number(Deno.args[0] ?? 300);

interface Row {
  engine: EngineName;
  build: BuildResult;
  transpileMs?: number;
  compileMs?: number;
  instanceMs?: number;
  latency?: { p50: number; p95: number };
  fibMs?: number;
}

const median = (values: number[]) => quantile(values, 0.5);
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** WASI imports enough for an instance to start and answer `get-manifest`; the rest throw. */
function stubImports(): Record<string, unknown> {
  const known: Record<string, Record<string, unknown>> = {
    "wasi:clocks/monotonic-clock": {
      now: () => BigInt(Math.round(performance.now() * 1e6)),
      resolution: () => 1000n,
    },
    "wasi:clocks/wall-clock": {
      now: () => ({ seconds: BigInt(Math.floor(Date.now() / 1000)), nanoseconds: 0 }),
      resolution: () => ({ seconds: 0n, nanoseconds: 1000 }),
    },
    "wasi:random/random": {
      getRandomBytes: (n: bigint) => crypto.getRandomValues(new Uint8Array(Number(n))),
      getRandomU64: () => 4n,
    },
    "wasi:random/insecure-seed": { insecureSeed: () => [1n, 2n] },
  };
  return new Proxy({}, {
    get: (_, iface: string) =>
      new Proxy(known[iface] ?? {}, {
        get: (members, name: string) =>
          members[name] ?? (() => {
            throw new Error(`${iface}#${name} is not stubbed`);
          }),
      }),
  });
}

/** Transpile, compile and instantiate times of the component at `wasm`. */
async function instantiation(wasm: string, row: Row): Promise<void> {
  await $init;
  let started = performance.now();
  const { files } = generate(await Deno.readFile(wasm), {
    name: "component",
    instantiation: { tag: "async" },
    noTypescript: true,
    noNodejsCompat: true,
    base64Cutoff: 0,
  });
  row.transpileMs = performance.now() - started;
  const dir = await Deno.makeTempDir({ prefix: "pier-measure-" });
  try {
    for (const [name, bytes] of files) await Deno.writeFile(join(dir, name), bytes);
    started = performance.now();
    const modules = new Map<string, WebAssembly.Module>();
    for (const [name, bytes] of files) {
      if (name.endsWith(".wasm")) {
        modules.set(name, await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>));
      }
    }
    row.compileMs = performance.now() - started;
    const glue = await import(join("file://", dir, "component.js"));
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      started = performance.now();
      const exports = await glue.instantiate((name: string) => modules.get(name), stubImports());
      times.push(performance.now() - started);
      exports["trailbase:component/init-endpoint@0.2.0"].getManifest("{}"); // it works
    }
    row.instanceMs = median(times.slice(2));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Request latencies through a real Pier. */
async function serve(wasm: string, row: Row): Promise<void> {
  const pier = await startPier({ components: { bench: wasm } });
  try {
    const time = async (path: string) => {
      const started = performance.now();
      const response = await pier.fetch(path);
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`${path}: ${response.status}`);
      return performance.now() - started;
    };
    for (let i = 0; i < 20; i++) await time("/bench/noop");
    const latencies: number[] = [];
    for (let i = 0; i < REQUESTS; i++) latencies.push(await time("/bench/noop"));
    row.latency = { p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95) };
    const fibs: number[] = [];
    for (let i = 0; i < 10; i++) fibs.push(await time(`/bench/fib/${FIB_N}`));
    row.fibMs = median(fibs);
  } finally {
    await pier.stop();
  }
}

function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/** `fib(FIB_N)` in Deno's own V8, for scale. */
function v8Fib(): number {
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const started = performance.now();
    fib(FIB_N);
    times.push(performance.now() - started);
  }
  return median(times);
}

const ms = (value: number | undefined, digits = 0) =>
  value === undefined ? "—" : `${value.toFixed(digits)} ms`;

const rows: Row[] = [];
const workDir = await Deno.makeTempDir({ prefix: "pier-engines-" });
try {
  const source = await Deno.readTextFile(SOURCE);
  for (const engine of Object.keys(ENGINES) as EngineName[]) {
    console.error(`measuring ${engine} ...`);
    const entry = join(workDir, `bench_${engine}.ts`);
    await Deno.writeTextFile(entry, `// @pier-engine ${engine}\n${source}`);
    const [build] = await buildComponents([entry], { log: (line) => console.error(`  ${line}`) });
    const row: Row = { engine, build };
    rows.push(row);
    if (build.status !== "built") continue;
    await instantiation(build.wasm, row);
    await serve(build.wasm, row);
  }
} finally {
  await Deno.remove(workDir, { recursive: true });
}

console.log(
  `| engine | build | .wasm | transpile + compile (once) | fresh instance | request p50 / p95 | fib(${FIB_N}) request |`,
);
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const row of rows) {
  const name = `${row.engine} (\`${ENGINES[row.engine]}\`)`;
  if (row.build.status !== "built") {
    const reason = row.build.error!.split("\n")[0].replace(/\|/g, "\\|");
    console.log(
      `| ${name} | fails after ${
        (row.build.ms / 1000).toFixed(1)
      } s: ${reason} | — | — | — | — | — |`,
    );
    continue;
  }
  console.log(
    `| ${name} | ${(row.build.ms / 1000).toFixed(1)} s | ${
      (row.build.bytes! / 2 ** 20).toFixed(1)
    } MB | ${ms(row.transpileMs)} + ${ms(row.compileMs)} | ${ms(row.instanceMs, 1)} | ${
      ms(row.latency?.p50, 2)
    } / ${ms(row.latency?.p95, 2)} | ${ms(row.fibMs)} |`,
  );
}
console.log(`\nfib(${FIB_N}) in Deno's V8, for scale: ${ms(v8Fib(), 1)}`);
