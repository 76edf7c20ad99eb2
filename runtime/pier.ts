/**
 * The Pier server process: serves the WebAssembly components of a directory
 * over HTTP. It runs inside the narrow Deno sandbox that `main.ts` computes.
 *
 * @module
 */
import { parseConfig, USAGE } from "./config.ts";
import { closeHosts, openHosts } from "./capabilities/host.ts";
import { SqlFunctionRegistry } from "./capabilities/database/sql_functions.ts";
import { checkpoint, openDatabase } from "./pier_db.ts";
import { CACHE_DIR, DB_FILE } from "./data_dir.ts";
import { log, setLogFormat } from "./log.ts";
import { exposition, watchEventLoop } from "./metrics.ts";
import type { ComponentRecord } from "./component.ts";
import { type Deferred, loadComponents, type LoadContext } from "./registry.ts";
import { Reloader, snapshot } from "./reload/reloader.ts";
import { watchDirectory } from "./reload/watch.ts";
import { PIER_VERSION } from "./version.ts";
import { Router } from "./routing/router.ts";
import { jobRoutes } from "./scheduling/api.ts";
import { adminRoutes } from "./admin/page.ts";
import { RecentLoad, SAMPLE_MS } from "./admin/load.ts";
import { ComponentJobs } from "./scheduling/jobs.ts";
import { Scheduler } from "./scheduling/scheduler.ts";
import { JobStore } from "./scheduling/store.ts";
import { createHandler, type RouteTables } from "./server.ts";
import { shutdownOnSignals } from "./shutdown.ts";
import { READY } from "./supervisor.ts";

// A failure Pier did not foresee is logged; it must not take the server down.
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  log.error(`unhandled rejection: ${event.reason?.stack ?? event.reason}`);
});
globalThis.addEventListener("error", (event) => {
  event.preventDefault();
  log.error(`uncaught error: ${event.error?.stack ?? event.message}`);
});

/**
 * Starts the components that serve from their cached manifest, one at a time:
 * a request for one of them starts it at once, ahead of these. A component
 * whose manifest changed gets its jobs registered again; one that cannot
 * start loses them.
 */
async function startDeferred(deferred: Deferred[], jobs: ComponentJobs) {
  for (const { record, start } of deferred) {
    // A reload may replace a component before or while it starts: its jobs are the new one's.
    const changed = record.state !== "retired" && await start();
    if (record.state === "retired") continue;
    if (record.state !== "loaded") jobs.unregister(record.name);
    else if (changed) jobs.register(record);
  }
}

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
  setLogFormat(config.logFormat);
  watchEventLoop();
  await Deno.mkdir(`${dataDir}/${CACHE_DIR}`, { recursive: true });
  const dbPath = `${dataDir}/${DB_FILE}`;
  const db = openDatabase(dbPath);
  const idleMs = config.workerIdleSeconds * 1000;
  const hosts = openHosts(dbPath, idleMs);

  // Pier's own routes have a table of their own, the only one its paths are looked up in.
  const tables: RouteTables = { pier: new Router(), components: new Router() };
  const started = performance.now();
  const components: ComponentRecord[] = [];
  tables.pier.add("GET", "/_/health", {
    kind: "pier",
    handler: () =>
      Response.json({
        status: "ok",
        version: PIER_VERSION,
        // Several server processes may serve the port: this answer is this one's.
        pid: Deno.pid,
        components: components.map((
          { name, state, error, warnings, routes, size, cache, host, rejected },
        ) => ({
          name,
          state,
          running: host?.running ?? false,
          workers: host?.workers ?? 0,
          error,
          warnings,
          routes,
          size,
          cache,
          rejected,
        })),
      }),
  });
  tables.pier.add("GET", "/_/metrics", {
    kind: "pier",
    handler: () =>
      new Response(exposition(components), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      }),
  });
  // Job history and leases live in main.db.
  const jobs = new ComponentJobs(new Scheduler({ timezone: config.timezone }), new JobStore(db));
  const adminToken = Deno.env.get("PIER_ADMIN_TOKEN");
  // The admin page's charts: a sample of every component's load every 10 s.
  const load = new RecentLoad();
  Deno.unrefTimer(setInterval(() => load.sample(components), SAMPLE_MS));
  for (
    const { method, path, handler } of [
      ...jobRoutes(jobs, adminToken),
      ...adminRoutes(adminToken, load, components),
    ]
  ) {
    tables.pier.add(method, path, { kind: "pier", handler });
  }

  const context: LoadContext = {
    componentsDir,
    dataDir,
    router: tables.components,
    hosts,
    sqlFunctions: new SqlFunctionRegistry(hosts.database),
    workerIdleMs: idleMs,
    // The sandbox grants exactly the variables the permission manifests name.
    env: (name) => Deno.env.get(name),
  };
  // Taken before loading, so that a change made while Pier loads is reloaded.
  const baseline = await snapshot(componentsDir);
  const { records, deferred } = await loadComponents(context);
  components.push(...records);
  for (const component of components) if (component.state === "loaded") jobs.register(component);
  const reloader = new Reloader(context, components, jobs, baseline);
  void reloader.prune();
  const stopWatching = watchDirectory(componentsDir, () => void reloader.reconcile());

  let closeConnections = false;
  const handler = createHandler(tables, {
    requestLog: config.requestLog,
    closing: () => closeConnections,
  });
  const server = Deno.serve({
    hostname: config.hostname,
    port: config.port,
    // Other server processes may listen on this port too (see supervisor.ts).
    reusePort: Deno.build.os === "linux",
    onListen: ({ hostname, port }) => {
      const loaded = components.filter((c) => c.state === "loaded").length;
      log.info(
        `listening on http://${hostname}:${port}/ with ${loaded}/${components.length} component(s), ready in ${
          (performance.now() - started).toFixed(0)
        } ms (pid ${Deno.pid})`,
      );
      // For the launcher: the one line this process writes to stdout.
      console.log(`${READY} ${port}`);
      void startDeferred(deferred, jobs);
    },
  }, handler);

  return await shutdownOnSignals(config.graceSeconds * 1000, {
    // Deno.serve's shutdown closes the listener at once and resolves when every response
    // in flight has been sent, streamed bodies included; no job run starts any more.
    drain: () => {
      stopWatching();
      return Promise.allSettled([server.shutdown(), jobs.close()]);
    },
    closeConnections: () => closeConnections = true,
    cut: () => {
      for (const component of components) component.host?.stop("Pier is shutting down");
    },
    close: async () => {
      await closeHosts(hosts);
      if (!checkpoint(db)) log.warn("the WAL could not be checkpointed: another process uses it");
      db.close();
    },
  });
}

if (import.meta.main) Deno.exit(await main());
