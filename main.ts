/**
 * `deno task start`: reads Pier's flags, builds the TypeScript components
 * whose sources changed, then runs the server process inside
 * a Deno sandbox narrowed to exactly what that config needs (see
 * `runtime/sandbox.ts`). This launcher runs no component code itself.
 *
 * @module
 */
import { buildInProcess, staleSources, watchSources } from "./tools/watch_sources.ts";
import { ConfigError, parseConfig, USAGE } from "./runtime/config.ts";
import { resolve } from "./runtime/paths.ts";
import { componentGrants, serverPermissionFlags, UNSTABLE_FLAGS } from "./runtime/sandbox.ts";

const ENV_VARS = ["PIER_COMPONENTS", "PIER_DATA", "PORT", "PIER_HOSTNAME"];
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
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...UNSTABLE_FLAGS,
      ...serverPermissionFlags(config, await componentGrants(config.componentsDir)),
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
    ],
    // glibc gives each thread that allocates an arena of its own, and every component has a
    // thread: two arenas in all keep idle memory a third lower, at no measured cost in speed.
    env: { MALLOC_ARENA_MAX: "2" },
    stdin: "null",
  }).spawn();
  if (watch) await watchSources(config.componentsDir);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => server.kill(signal));
  }
  return (await server.status).code;
}

if (import.meta.main) Deno.exit(await main());
