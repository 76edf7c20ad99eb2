/**
 * `deno task start`: reads Pier's flags, builds the TypeScript components
 * whose sources changed, then runs the server process inside
 * a Deno sandbox narrowed to exactly what that config needs (see
 * `runtime/sandbox.ts`). This launcher runs no component code itself.
 *
 * @module
 */
import { buildInProcess, staleSources, watchSources } from "./tools/watch_sources.ts";
import { type Config, ConfigError, parseConfig, USAGE } from "./runtime/config.ts";
import { setLogFormat } from "./runtime/log.ts";
import { loadPermissions, type Permissions } from "./runtime/permissions.ts";
import { discover } from "./runtime/discovery.ts";
import { Supervisor, watchComponents } from "./runtime/supervisor.ts";
import { resolve } from "./runtime/paths.ts";
import { componentGrants, serverPermissionFlags, UNSTABLE_FLAGS } from "./runtime/sandbox.ts";

const ENV_VARS = ["PIER_COMPONENTS", "PIER_DATA", "PORT", "PIER_HOSTNAME", "PIER_PROCESSES"];
/** Rebuild component sources as they change (see `tools/watch_sources.ts`). */
const WATCH_FLAG = "--watch";

/**
 * Builds the TypeScript components in `dir` whose sources changed, in a
 * process of its own with only the permissions a build needs. A component
 * that fails to build keeps its previous `.wasm`, so serving goes on.
 */
async function buildStaleComponents(dir: string): Promise<void> {
  // Each build records what it read: unchanged sources need no build process at all.
  const stale = await staleSources(dir);
  if (stale.length === 0) return;
  if (!await buildInProcess(stale)) {
    console.error("some components failed to build (see above); serving what there is");
  }
}

/**
 * Refuses a hand-over while a permission manifest is broken: the new server
 * processes would not load its component, which the current ones serve.
 */
async function checkManifests(dir: string): Promise<void> {
  const { found } = await discover(dir);
  for (const { name } of found) {
    await loadPermissions(dir, name).catch((error) => {
      throw new Error(`not handing over: ${error.message}; the current server processes serve on`);
    });
  }
}

/** The `deno run` arguments of a server process for `config` and the components' `grants`. */
function serverCommand(config: Config, grants: Permissions[]): string[] {
  return [
    "run",
    ...UNSTABLE_FLAGS,
    ...serverPermissionFlags(config, grants),
    new URL("./runtime/pier.ts", import.meta.url).href,
    "--components",
    config.componentsDir,
    "--data",
    config.dataDir,
    "--port",
    String(config.port),
    "--hostname",
    config.hostname,
    "--timezone",
    config.timezone,
    "--worker-idle",
    String(config.workerIdleSeconds),
    "--grace",
    String(config.graceSeconds),
    "--log-format",
    config.logFormat,
    "--request-log",
    config.requestLog ? "on" : "off",
  ];
}

async function main(): Promise<number> {
  // `--watch` is the launcher's alone: the server process never sees it.
  const watch = Deno.args.includes(WATCH_FLAG);
  let config;
  try {
    config = parseConfig(
      Deno.args.filter((arg) => arg !== WATCH_FLAG),
      (name) => ENV_VARS.includes(name) ? Deno.env.get(name) : undefined,
    );
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof TypeError)) throw error;
    console.error(`${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (config === "help") {
    console.log(USAGE);
    return 0;
  }
  config = {
    ...config,
    componentsDir: resolve(config.componentsDir),
    dataDir: resolve(config.dataDir),
  };
  await buildStaleComponents(config.componentsDir);
  setLogFormat(config.logFormat);
  const { componentsDir } = config;
  const supervisor = new Supervisor({
    processes: config.processes,
    command: async () => {
      const grants = await componentGrants(componentsDir);
      return (port) => serverCommand({ ...config, port }, grants);
    },
    // glibc gives each thread that allocates an arena of its own, and every component has a
    // thread: two arenas in all keep idle memory a third lower, at no measured cost in speed.
    env: { MALLOC_ARENA_MAX: "2" },
  });
  let stopWatchingSources: (() => void) | undefined;
  if (watch) stopWatchingSources = await watchSources(componentsDir);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => supervisor.stop(signal));
  }
  // A zero-downtime restart: rebuilds, rescans, new server processes.
  Deno.addSignalListener("SIGHUP", () => {
    void supervisor.reload("SIGHUP", {
      always: true,
      prepare: () => buildStaleComponents(componentsDir),
    });
  });
  const watching = new AbortController();
  void watchComponents(
    componentsDir,
    () =>
      void supervisor.reload("the components' permissions changed", {
        check: () => checkManifests(componentsDir),
      }),
    watching.signal,
  );
  const code = await supervisor.run(config.port);
  watching.abort();
  stopWatchingSources?.();
  return code;
}

if (import.meta.main) Deno.exit(await main());
