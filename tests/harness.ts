/**
 * Test harness: builds test components from their sources with the real
 * toolchain (cached by source hash in `.build/`), and runs Pier as a real
 * process, started exactly as `deno task start` starts it.
 *
 * @module
 */
import { bundle, componentize, ENGINE } from "../guest/componentize.ts";
import { sha256 } from "../runtime/compile/cache.ts";
import { fromFileUrl } from "../runtime/paths.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url));
const BUILD_DIR = `${ROOT}/.build/components`;

/** A fixture names a world other than the default with a `// @world <name>` line. */
const WORLD_PRAGMA = /^\/\/ @world (\S+)$/m;

/** Builds a component from `source` (a JS/TS entry), reusing an earlier build of the same bundle. */
export async function buildComponent(source: string): Promise<string> {
  const js = await bundle(source);
  const world = WORLD_PRAGMA.exec(await Deno.readTextFile(source))?.[1];
  const out = `${BUILD_DIR}/${(await sha256(ENGINE + (world ?? "") + js)).slice(0, 24)}.wasm`;
  try {
    await Deno.stat(out);
    return out;
  } catch {
    // not built yet
  }
  const bytes = await componentize(js, { world });
  await Deno.mkdir(BUILD_DIR, { recursive: true });
  const staging = `${out}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await Deno.writeFile(staging, bytes);
  await Deno.rename(staging, out);
  return out;
}

/** Builds the named fixtures of `tests/fixtures/`, two at a time. */
export async function buildFixtures<N extends string>(names: N[]): Promise<Record<N, string>> {
  const built = {} as Record<N, string>;
  const queue = [...names];
  const worker = async () => {
    for (let name = queue.shift(); name; name = queue.shift()) {
      const started = performance.now();
      built[name] = await buildComponent(`${ROOT}/tests/fixtures/${name}.js`);
      console.log(`  built fixture ${name} in ${(performance.now() - started).toFixed(0)} ms`);
    }
  };
  await Promise.all([worker(), worker()]);
  return built;
}

/** The `deno run` flags of the `start` task, read from deno.json so tests start Pier the same way. */
async function startFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const words: string[] = config.tasks.start.split(/\s+/);
  return words.filter((w) => w.startsWith("--"));
}

/** Set `PIER_TEST_LOG` to a file to keep every Pier log of a test run there (for a hang). */
const LOG_FILE = Deno.env.get("PIER_TEST_LOG");

/** A running Pier process. */
export interface Pier {
  url: string;
  /** The server process (the launcher's child), e.g. to read its memory use from `/proc`. */
  pid: number;
  componentsDir: string;
  dataDir: string;
  /** Everything Pier printed so far. */
  log(): string;
  /** Resolves when the log matches `pattern`. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Kills the server process itself with SIGKILL, as a crash would. */
  crash(): Promise<void>;
  stop(signal?: Deno.Signal): Promise<void>;
}

/** What to serve: component name to `.wasm` path (or raw bytes). */
export interface PierSetup {
  components?: Record<string, string | Uint8Array>;
  /** Reuse directories of an earlier run. */
  componentsDir?: string;
  dataDir?: string;
  /** Environment variables added to Pier's (e.g. PIER_ADMIN_TOKEN). */
  env?: Record<string, string>;
  /** More flags for Pier (e.g. `--timezone`). */
  args?: string[];
}

/** Starts Pier on a free loopback port with temporary directories. */
export async function startPier(setup: PierSetup = {}): Promise<Pier> {
  const root = await Deno.makeTempDir({ prefix: "pier-test-" });
  const componentsDir = setup.componentsDir ?? `${root}/components`;
  const dataDir = setup.dataDir ?? `${root}/data`;
  await Deno.mkdir(componentsDir, { recursive: true });
  for (const [name, wasm] of Object.entries(setup.components ?? {})) {
    const target = `${componentsDir}/${name}.wasm`;
    if (typeof wasm === "string") await Deno.copyFile(wasm, target);
    else await Deno.writeFile(target, wasm);
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(await startFlags()),
      `${ROOT}/main.ts`,
      "--components",
      componentsDir,
      "--data",
      dataDir,
      "--port",
      "0",
      ...(setup.args ?? []),
    ],
    env: setup.env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();

  let output = "";
  const listeners = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      output += text;
      if (LOG_FILE) Deno.writeTextFileSync(LOG_FILE, text, { append: true });
      for (const listener of listeners) listener();
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const waitForLog = (pattern: RegExp, timeoutMs = 60_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!pattern.test(output)) return;
        listeners.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`log never matched ${pattern}; log:\n${output}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  let stopped = false;
  const exited = child.status.then((status) => {
    if (!stopped) output += `\n[harness] Pier exited with ${status.code}\n`;
    for (const listener of listeners) listener();
    return status;
  });
  await Promise.race([
    waitForLog(/listening on http:\/\/[^/]+\//, 120_000),
    exited.then((status) => {
      throw new Error(`Pier exited with ${status.code} before listening:\n${output}`);
    }),
  ]);
  const url = output.match(/listening on (http:\/\/[^/]+)\//)![1];
  const serverPid = Number(output.match(/\(pid (\d+)\)/)![1]);
  return {
    url,
    pid: serverPid,
    componentsDir,
    dataDir,
    log: () => output,
    waitForLog,
    fetch: (path, init) => fetch(`${url}${path}`, init),
    crash: async () => {
      stopped = true;
      Deno.kill(serverPid, "SIGKILL");
      await exited;
      await pumped;
    },
    stop: async (signal = "SIGTERM") => {
      stopped = true;
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
      await exited;
      await pumped;
      if (!setup.dataDir) await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}

/** Debian's Chromium, installed with apt on first use (the tests run as root on CI machines). */
export async function ensureChromium(): Promise<string> {
  const path = "/usr/bin/chromium";
  const present = () => Deno.stat(path).then(() => true, () => false);
  if (await present()) return path;
  const apt = (...args: string[]) =>
    new Deno.Command("apt-get", { args, stdout: "null", stderr: "inherit" }).output();
  console.log("  installing chromium with apt-get (once per machine)");
  if (!(await apt("install", "-y", "chromium")).success) {
    await apt("update");
    await apt("install", "-y", "chromium");
  }
  if (!await present()) throw new Error("could not install chromium (apt-get install chromium)");
  return path;
}

/** The DOM of `url` after a headless Chromium loaded it and ran its scripts. */
export async function renderInBrowser(url: string): Promise<string> {
  const chromium = await ensureChromium();
  const profile = await Deno.makeTempDir({ prefix: "pier-chromium-" });
  try {
    const { stdout, success } = await new Deno.Command(chromium, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        "--virtual-time-budget=2000",
        "--dump-dom",
        url,
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!success) throw new Error(`chromium could not render ${url}`);
    return new TextDecoder().decode(stdout);
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** A streamed text body: its first chunk, the rest, and when each arrived (ms after the call). */
export async function readTimed(
  response: Response,
): Promise<{ first: string; rest: string; firstAt: number; allAt: number }> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const started = performance.now();
  const first = (await reader.read()).value ?? "";
  const firstAt = performance.now() - started;
  let rest = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += r.value;
  return { first, rest, firstAt, allAt: performance.now() - started };
}

/**
 * A new components dir holding each component's `.wasm` and, when given, its permission manifest;
 * and a data dir beside it (not created).
 */
export async function componentsWithManifests(
  components: Record<string, [wasm: string, manifest?: unknown]>,
): Promise<{ componentsDir: string; dataDir: string }> {
  const root = await Deno.makeTempDir({ prefix: "pier-components-" });
  const componentsDir = `${root}/components`;
  await Deno.mkdir(componentsDir);
  for (const [name, [wasm, manifest]] of Object.entries(components)) {
    await Deno.copyFile(wasm, `${componentsDir}/${name}.wasm`);
    if (manifest) {
      await Deno.writeTextFile(
        `${componentsDir}/${name}.permissions.json`,
        JSON.stringify(manifest),
      );
    }
  }
  return { componentsDir, dataDir: `${root}/data` };
}
