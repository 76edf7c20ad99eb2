/**
 * Loads the components of a directory: discover, read each permission
 * manifest, compile (cached, in parallel), start each in a worker narrowed
 * to its grants, read its manifest and register its routes. A component
 * that fails any step is recorded with the reason and skipped; the others
 * load.
 *
 * @module
 */
import type { Hosts } from "./capabilities/sides.ts";
import { ComponentCapabilities } from "./capabilities/host.ts";
import { ungranted } from "./capabilities/mod.ts";
import type { SqlFunctionRegistry } from "./capabilities/database/sql_functions.ts";
import { outboundShare } from "./isolation/outbound_slots.ts";
import { type CacheEntry, checkEntry, sha256, writeAtomic } from "./compile/cache.ts";
import { compileAll, type CompileResult } from "./compile/compiler.ts";
import { GLUE } from "./compile/transpile.ts";
import { discover } from "./discovery.ts";
import { ComponentHost, type ComponentHostOptions } from "./isolation/component_host.ts";
import { log } from "./log.ts";
import { type Manifest, manifestArgs, parseManifest } from "./manifest.ts";
import { resolve, toFileUrl } from "./paths.ts";
import { CACHE_DIR } from "./data_dir.ts";
import {
  DENY_ALL,
  loadPermissions,
  type Permissions,
  permissionsPath,
  readRoots,
} from "./permissions.ts";
import { assertComponentRoute } from "./routing/pier_paths.ts";
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

/** One of Pier's own endpoints: gets the request and the route's decoded path parameters. */
export type PierHandler = (
  request: Request,
  params: [string, string][],
) => Response | Promise<Response>;

/** What a route leads to: a component or one of Pier's own endpoints. */
export type RouteTarget =
  | { kind: "component"; component: ComponentRecord }
  | { kind: "pier"; handler: PierHandler };

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
  /** How long a busy component's extra workers may idle before they stop. */
  workerIdleMs: number;
}

/** Registers the routes and SQL functions of `manifest` for `record`. */
function register(record: ComponentRecord, manifest: Manifest, context: LoadContext) {
  const refused = (message: string) => {
    record.warnings.push(message);
    log.error(`${record.name}: ${message}`);
  };
  for (const { method, path } of manifest.httpHandlers) {
    try {
      const parsed: Method = parseMethod(method);
      assertComponentRoute(parsed, path);
      context.router.add(parsed, path, { kind: "component", component: record }, describeTarget);
      record.routes.push(`${parsed} ${path}`);
    } catch (error) {
      if (!(error instanceof RouteError)) throw error;
      refused(`route refused: ${error.message}`);
    }
  }
  for (const problem of context.sqlFunctions.register(record.host!, manifest.sqliteFunctions)) {
    refused(problem);
  }
}

/**
 * Puts the manifest a component returned in place of the cached one it was
 * serving from: its routes and SQL functions follow the new manifest.
 */
function reregister(record: ComponentRecord, manifest: Manifest, context: LoadContext) {
  for (const route of record.routes) {
    const [method, path] = route.split(" ") as [Method, string];
    context.router.remove(
      method,
      path,
      (target) => target.kind === "component" && target.component === record,
    );
  }
  Object.assign(record, { manifest, routes: [], warnings: [] });
  register(record, manifest, context);
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

/** How to compile a component again when its cache entry turns out damaged. */
type Recompile = () => Promise<CompileResult>;

/**
 * Starts `host`; when it fails on a cache entry that was not just built,
 * checks the entry against its hashes and, if it is damaged, rebuilds it and
 * starts once more.
 */
async function startChecked(
  host: ComponentHost,
  entry: CacheEntry,
  recompile: Recompile,
): Promise<string> {
  try {
    return await host.start();
  } catch (error) {
    host.stop();
    const problem = entry.hit ? await checkEntry(entry.dir, "hashes") : undefined;
    if (!problem) throw error;
    log.warn(`${host.name}: compiled entry damaged (${problem}): compiling it again`);
    const again = await recompile();
    if (!again.ok) throw new Error(again.error);
    try {
      return await host.start();
    } catch (error) {
      host.stop();
      throw error;
    }
  }
}

/**
 * Where the manifest a component returned is kept for its next start. It may
 * depend on the component's bytes (the entry), Pier's version and what the
 * component can read at start: its environment and its directories.
 */
async function manifestFile(entry: CacheEntry, init: ComponentHostOptions["init"]) {
  const inputs = JSON.stringify([init.manifestArgs, init.env, init.preopens]);
  return `${entry.dir}/manifest-${(await sha256(inputs)).slice(0, 16)}.json`;
}

/** A component whose routes were registered from its cached manifest, still to be started. */
export interface Deferred {
  record: ComponentRecord;
  /**
   * Starts the component; records it as failed if it cannot start. Resolves
   * true when the component's manifest was not the cached one: its routes and
   * SQL functions now follow the new one, and its jobs must be registered again.
   */
  start(): Promise<boolean>;
}

/** A component made ready to serve: started, deferred (see {@link Deferred}), or failed. */
interface Prepared {
  record: ComponentRecord;
  manifest?: Manifest;
  deferred?: Deferred;
}

async function prepareComponent(
  name: string,
  file: string,
  compiled: { entry: CacheEntry; size: number },
  permissions: Permissions,
  readDirs: string[],
  context: LoadContext,
  recompile: Recompile,
): Promise<Prepared> {
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
  const init = {
    name,
    glueUrl: toFileUrl(`${resolve(compiled.entry.dir)}/${GLUE}`).href,
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
    outbound: outboundShare(permissions.limits.outbound),
  };
  const host = new ComponentHost({
    init,
    permissions: workerPermissions(compiled.entry, readDirs, permissions),
    timeoutMs: permissions.limits.timeoutMs,
    concurrency: permissions.limits.concurrency,
    workers: permissions.limits.workers,
    idleMs: context.workerIdleMs,
    capabilities: new ComponentCapabilities(name, permissions, context.hosts),
  });
  const cachedPath = await manifestFile(compiled.entry, init);
  const cachedText = await Deno.readTextFile(cachedPath).catch(() => undefined);
  const start = async () => {
    const text = await startChecked(host, compiled.entry, recompile);
    // Best effort: without it the next start only waits for the component.
    if (text !== cachedText) await writeAtomic(cachedPath, text).catch(() => {});
    return text;
  };

  // A known manifest lets Pier listen before the component runs; SQL functions do not wait,
  // so a component with any starts first.
  const cached = cachedText === undefined ? undefined : tryParseManifest(cachedText);
  if (cached && cached.sqliteFunctions.length === 0) {
    Object.assign(record, { state: "loaded", host, manifest: cached });
    const deferred = async () => {
      try {
        const text = await start();
        if (text === cachedText) return false;
        reregister(record, parseManifest(text), context);
        log.warn(
          `${name}: its manifest changed since the last start: routes now ${
            record.routes.join(", ") || "none"
          }`,
        );
        return true;
      } catch (error) {
        Object.assign(record, {
          state: "failed",
          error: `init failed: ${(error as Error).message}`,
        });
        log.error(`${name}: ${record.error}`);
        return false;
      }
    };
    return { record, manifest: cached, deferred: { record, start: deferred } };
  }
  try {
    const manifest = parseManifest(await start());
    Object.assign(record, { state: "loaded", host, manifest });
    return { record, manifest };
  } catch (error) {
    host.stop();
    record.error = `init failed: ${(error as Error).message}`;
    log.error(`${name}: ${record.error}`);
    return { record };
  }
}

function tryParseManifest(text: string): Manifest | undefined {
  try {
    return parseManifest(text);
  } catch {
    return undefined;
  }
}

/** The components of a directory, and the ones still to be started. */
export interface Loaded {
  records: ComponentRecord[];
  /** Components serving from their cached manifest: start them once Pier listens. */
  deferred: Deferred[];
}

/**
 * Loads every component in the components dir and registers its routes. A
 * component whose manifest is cached is not started yet (see {@link Loaded}).
 */
export async function loadComponents(context: LoadContext): Promise<Loaded> {
  const { componentsDir, dataDir } = context;
  const { found, refused } = await discover(componentsDir);
  const failed = (name: string, file: string, error: string): ComponentRecord => {
    log.error(`${name}: ${error}`);
    return { name, file, state: "failed", error, warnings: [], routes: [] };
  };
  const records = refused.map(({ file, reason }) => failed(file.split("/").pop()!, file, reason));
  const deferred: Deferred[] = [];

  const permitted: {
    name: string;
    path: string;
    permissions: Permissions;
    readDirs: string[];
  }[] = [];
  for (const { name, path } of found) {
    try {
      const permissions = await loadPermissions(componentsDir, name) ?? DENY_ALL;
      if (permissions === DENY_ALL) {
        log.info(`${name}: no ${name}.permissions.json: all capabilities denied`);
      }
      const file = permissionsPath(componentsDir, name);
      const readDirs = await readRoots(permissions.read, dataDir, file);
      permitted.push({ name, path, permissions, readDirs });
    } catch (error) {
      records.push(failed(name, path, (error as Error).message));
    }
  }
  if (permitted.length === 0) {
    if (found.length === 0) log.info(`no components in ${componentsDir}`);
    return { records, deferred };
  }

  log.info(`compiling ${permitted.length} component(s) from ${componentsDir}`);
  const byPath = new Map(permitted.map((c) => [c.path, c]));
  const onCompiled = (path: string, result: CompileResult) => {
    const name = byPath.get(path)!.name;
    if (!result.ok) return;
    const { entry, size, ms } = result;
    const cache = entry.hit
      ? "cache hit"
      : `cache miss${entry.rebuilt ? ` (rebuilt: ${entry.rebuilt})` : ""}`;
    log.info(`${name}: ${(size / 1e6).toFixed(1)} MB, ${cache}, ${ms.toFixed(0)} ms`);
  };
  const cacheDir = `${dataDir}/${CACHE_DIR}`;
  const compiled = await compileAll([...byPath.keys()], cacheDir, onCompiled);

  const prepared = permitted.map(
    ({ name, path, permissions, readDirs }): Promise<Prepared> | Prepared => {
      const result = compiled.get(path)!;
      if (!result.ok) {
        const record = failed(name, path, `${path} is not a loadable component: ${result.error}`);
        return { record };
      }
      const recompile = async () =>
        (await compileAll([path], cacheDir, onCompiled, { fresh: true })).get(path)!;
      return prepareComponent(name, path, result, permissions, readDirs, context, recompile);
    },
  );
  // Register in discovery order so that a route conflict always refuses the later component.
  for (const { record, manifest, deferred: later } of await Promise.all(prepared)) {
    records.push(record);
    if (!manifest) continue;
    register(record, manifest, context);
    if (later) deferred.push(later);
    const when = later ? " (from its cached manifest; starting)" : "";
    log.info(`${record.name}: loaded${when}, routes: ${record.routes.join(", ") || "none"}`);
  }
  return { records, deferred };
}
