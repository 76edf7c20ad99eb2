/**
 * Loads the components of a directory: discover, read each permission
 * manifest, compile (cached, in parallel), start each in a worker narrowed
 * to its grants, read its manifest and register its routes. A component
 * that fails any step is recorded with the reason and skipped; the others
 * load.
 *
 * @module
 */
import { ComponentCapabilities, type Hosts } from "./capabilities/host.ts";
import type { SqlFunctionRegistry } from "./capabilities/sql_functions.ts";
import { createSyncBuffer } from "./isolation/sync_call.ts";
import type { CacheEntry } from "./compile/cache.ts";
import { compileAll } from "./compile/compiler.ts";
import { discover } from "./discovery.ts";
import { ComponentHost } from "./isolation/component_host.ts";
import { log } from "./log.ts";
import { type Manifest, manifestArgs, parseManifest } from "./manifest.ts";
import { resolve, toFileUrl } from "./paths.ts";
import { DENY_ALL, loadPermissions, type Permissions } from "./permissions.ts";
import { type Method, parseMethod, RouteError, type Router } from "./routing/router.ts";

/** Pier's version, sent to components in `get-manifest`. */
export const PIER_VERSION = "0.1.0";

/** Idle guest instances a worker keeps for reuse. */
const MAX_IDLE_INSTANCES = 8;

/** A component and what became of it. */
export interface ComponentRecord {
  name: string;
  file: string;
  state: "loaded" | "failed";
  error?: string;
  /** Problems that kept parts of a loaded component out (e.g. a route conflict). */
  warnings: string[];
  size?: number;
  cache?: "hit" | "miss";
  routes: string[];
  permissions?: Permissions;
  manifest?: Manifest;
  host?: ComponentHost;
}

/** What a route leads to: a component or one of Pier's own endpoints. */
export type RouteTarget =
  | { kind: "component"; component: ComponentRecord }
  | { kind: "pier"; handler: (request: Request) => Response | Promise<Response> };

/** Names a route's owner in conflict messages. */
export function describeTarget(target: RouteTarget): string {
  return target.kind === "pier" ? "Pier" : `component "${target.component.name}"`;
}

/** Where components come from and what they can reach. */
export interface LoadContext {
  componentsDir: string;
  dataDir: string;
  router: Router<RouteTarget>;
  hosts: Hosts;
  /** Where components' SQL functions are registered. */
  sqlFunctions: SqlFunctionRegistry;
  /** Reads an environment variable granted to a component. */
  env: (name: string) => string | undefined;
}

function registerRoutes(record: ComponentRecord, manifest: Manifest, router: Router<RouteTarget>) {
  for (const { method, path } of manifest.httpHandlers) {
    try {
      const parsed: Method = parseMethod(method);
      router.add(parsed, path, { kind: "component", component: record }, describeTarget);
      record.routes.push(`${parsed} ${path}`);
    } catch (error) {
      if (!(error instanceof RouteError)) throw error;
      const message = `route refused: ${error.message}`;
      record.warnings.push(message);
      log.error(`${record.name}: ${message}`);
    }
  }
}

/** Imported interfaces a component cannot use with its grants: worth a log line. */
function ungranted(imports: string[], permissions: Permissions): string[] {
  const checks: [string, boolean, string][] = [
    ["trailbase:database/sqlite", permissions.db === "none", '"db"'],
    ["wasi:keyvalue/store", permissions.kv.length === 0, '"kv"'],
    ["wasi:filesystem/preopens", permissions.read.length === 0, '"read"'],
    ["wasi:http/outgoing-handler", permissions.net.length === 0, '"net"'],
  ];
  return checks.filter(([iface, denied]) => denied && imports.includes(iface))
    .map(([iface, , key]) => `${iface} (grant ${key})`);
}

/** The Deno permissions of a component's worker: its grants, never write, run, ffi or sys. */
export function workerPermissions(
  entry: CacheEntry,
  readDirs: string[],
  permissions: Permissions,
): Deno.PermissionOptionsObject {
  const wildcard = permissions.net.some((rule) => rule.wildcard);
  return {
    read: [entry.dir, ...readDirs],
    // Deno cannot express `*.domain`: such a component relies on Pier's own host check.
    net: wildcard
      ? true
      : permissions.net.map(({ host, port }) => port === undefined ? host : `${host}:${port}`),
    write: false,
    env: false,
    run: false,
    ffi: false,
    sys: false,
    import: false,
  };
}

async function startComponent(
  name: string,
  file: string,
  compiled: { entry: CacheEntry; size: number },
  permissions: Permissions,
  context: LoadContext,
): Promise<{ record: ComponentRecord; manifest?: Manifest }> {
  const record: ComponentRecord = {
    name,
    file,
    state: "failed",
    warnings: [],
    routes: [],
    size: compiled.size,
    cache: compiled.entry.hit ? "hit" : "miss",
    permissions,
  };
  const missing = ungranted(compiled.entry.imports, permissions);
  if (missing.length) log.info(`${name}: imports but was not granted: ${missing.join(", ")}`);
  const readDirs = permissions.read.map((dir) => resolve(context.dataDir, dir));
  const host = new ComponentHost({
    init: {
      name,
      glueUrl: toFileUrl(`${resolve(compiled.entry.dir)}/component.js`).href,
      coreDir: compiled.entry.dir,
      env: permissions.env.flatMap((key) => {
        const value = context.env(key);
        return value === undefined ? [] : [[key, value] as [string, string]];
      }),
      net: permissions.net,
      preopens: permissions.read.map((dir, i) => ({ hostPath: readDirs[i], guestPath: `/${dir}` })),
      memoryMb: permissions.limits.memoryMb,
      maxIdleInstances: MAX_IDLE_INSTANCES,
      manifestArgs: manifestArgs(PIER_VERSION),
      syncBuffer: createSyncBuffer(),
    },
    permissions: workerPermissions(compiled.entry, readDirs, permissions),
    timeoutMs: permissions.limits.timeoutMs,
    concurrency: permissions.limits.concurrency,
    capabilities: new ComponentCapabilities(name, permissions, context.hosts),
  });
  try {
    const manifest = parseManifest(await host.start());
    Object.assign(record, { state: "loaded", host, manifest });
    return { record, manifest };
  } catch (error) {
    host.stop();
    record.error = `init failed: ${(error as Error).message}`;
    log.error(`${name}: ${record.error}`);
    return { record };
  }
}

/** Loads every component in the components dir and registers its routes. */
export async function loadComponents(context: LoadContext): Promise<ComponentRecord[]> {
  const { componentsDir, dataDir } = context;
  const { found, refused } = await discover(componentsDir);
  const failed = (name: string, file: string, error: string): ComponentRecord => {
    log.error(`${name}: ${error}`);
    return { name, file, state: "failed", error, warnings: [], routes: [] };
  };
  const records = refused.map(({ file, reason }) => failed(file.split("/").pop()!, file, reason));

  const permitted: { name: string; path: string; permissions: Permissions }[] = [];
  for (const { name, path } of found) {
    try {
      const permissions = await loadPermissions(componentsDir, name);
      if (!permissions) log.info(`${name}: no ${name}.permissions.json: all capabilities denied`);
      permitted.push({ name, path, permissions: permissions ?? DENY_ALL });
    } catch (error) {
      records.push(failed(name, path, (error as Error).message));
    }
  }
  if (permitted.length === 0) {
    if (found.length === 0) log.info(`no components in ${componentsDir}`);
    return records;
  }

  log.info(`compiling ${permitted.length} component(s) from ${componentsDir}`);
  const byPath = new Map(permitted.map((c) => [c.path, c]));
  const compiled = await compileAll([...byPath.keys()], `${dataDir}/cache`, (path, result) => {
    const name = byPath.get(path)!.name;
    if (!result.ok) return;
    const { entry, size, ms } = result;
    const cache = entry.hit
      ? "cache hit"
      : `cache miss${entry.rebuilt ? ` (rebuilt: ${entry.rebuilt})` : ""}`;
    log.info(`${name}: ${(size / 1e6).toFixed(1)} MB, ${cache}, ${ms.toFixed(0)} ms`);
  });

  const started = permitted.map(({ name, path, permissions }) => {
    const result = compiled.get(path)!;
    if (!result.ok) {
      const record = failed(name, path, `${path} is not a loadable component: ${result.error}`);
      return { record, manifest: undefined };
    }
    return startComponent(name, path, result, permissions, context);
  });
  // Register in discovery order so that a route conflict always refuses the later component.
  for (const { record, manifest } of await Promise.all(started)) {
    records.push(record);
    if (!manifest) continue;
    registerRoutes(record, manifest, context.router);
    for (const problem of context.sqlFunctions.register(record.host!, manifest.sqliteFunctions)) {
      record.warnings.push(problem);
      log.error(`${record.name}: ${problem}`);
    }
    log.info(`${record.name}: loaded, routes: ${record.routes.join(", ") || "none"}`);
  }
  return records;
}
