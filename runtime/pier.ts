/**
 * The Pier server process: serves the WebAssembly components of a directory
 * over HTTP. It runs inside the narrow Deno sandbox that `main.ts` computes.
 *
 * @module
 */
import { parseConfig, USAGE } from "./config.ts";
import { openDatabase } from "./database.ts";
import { log } from "./log.ts";
import { describeTarget, loadComponents, PIER_VERSION, type RouteTarget } from "./registry.ts";
import { Router } from "./routing/router.ts";
import { createHandler } from "./server.ts";

// A failure Pier did not foresee is logged; it must not take the server down.
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  log.error(`unhandled rejection: ${event.reason?.stack ?? event.reason}`);
});
globalThis.addEventListener("error", (event) => {
  event.preventDefault();
  log.error(`uncaught error: ${event.error?.stack ?? event.message}`);
});

async function main(): Promise<number> {
  let config;
  try {
    config = parseConfig(Deno.args, () => undefined);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (config === "help") {
    console.log(USAGE);
    return 0;
  }
  const { componentsDir, dataDir } = config;
  await Deno.mkdir(`${dataDir}/cache`, { recursive: true });
  const db = openDatabase(`${dataDir}/main.db`);

  const router = new Router<RouteTarget>();
  const started = performance.now();
  const components = await loadComponents(componentsDir, `${dataDir}/cache`, router);
  router.add("GET", "/_/health", {
    kind: "pier",
    handler: () =>
      Response.json({
        status: "ok",
        version: PIER_VERSION,
        components: components.map(({ name, state, error, warnings, routes, size, cache }) => ({
          name,
          state,
          error,
          warnings,
          routes,
          size,
          cache,
        })),
      }),
  }, describeTarget);

  const server = Deno.serve({
    hostname: config.hostname,
    port: config.port,
    onListen: ({ hostname, port }) => {
      const loaded = components.filter((c) => c.state === "loaded").length;
      log.info(
        `listening on http://${hostname}:${port}/ with ${loaded}/${components.length} component(s), ready in ${
          (performance.now() - started).toFixed(0)
        } ms`,
      );
    },
  }, createHandler(router));

  const shutdown = async () => {
    log.info("shutting down");
    // Stop the guests first: a looping one would otherwise hold the server's shutdown.
    for (const component of components) component.host?.stop();
    await server.shutdown();
    db.close();
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  await server.finished;
  return 0;
}

if (import.meta.main) Deno.exit(await main());
