/**
 * Pier as a real process, started exactly as `deno task start` starts it: for
 * the tests (through `tests/harness.ts`) and the measurement tools.
 *
 * @module
 */
import { fromFileUrl } from "../runtime/paths.ts";

const ROOT = fromFileUrl(new URL("..", import.meta.url));

/**
 * The `deno run` flags of the `start` task of the Pier tree at `root`, read
 * from its deno.json so that Pier starts here as `deno task start` starts it.
 */
export async function startFlags(root = ROOT): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${root}/deno.json`));
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
  /** The launcher (`main.ts`), e.g. to send it SIGHUP. */
  launcherPid: number;
  componentsDir: string;
  dataDir: string;
  /** Everything Pier printed so far. */
  log(): string;
  /** Resolves when the log matches `pattern`. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Kills the server process itself with SIGKILL, as a crash would. */
  crash(): Promise<void>;
  /**
   * Sends `signal` (default SIGTERM) to the launcher at once; resolves with its exit code once it
   * has exited. Called again meanwhile, it sends the signal again.
   */
  stop(signal?: Deno.Signal): Promise<number>;
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
    launcherPid: child.pid,
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
      const { code } = await exited;
      await pumped;
      // Only what was made here for the directories not given.
      await Deno.remove(root, { recursive: true }).catch(() => {});
      return code;
    },
  };
}
