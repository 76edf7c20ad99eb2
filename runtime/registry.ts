/**
 * Loads the components of a directory, in steps; each step takes the
 * components the one before left, and one that fails a step is recorded as
 * failed with the reason (see `component.ts` for the states of a record):
 *
 * 1. **discover** the `.wasm` files (`discovery.ts`);
 * 2. **permit**: read each one's permission manifest, resolve its directories;
 * 3. **compile** them (cached, in parallel);
 * 4. **start**: make each one's host and start it, or, when the manifest it
 *    returned last time is cached, load it from that and start it later;
 * 5. **register** the routes and SQL functions of each one's manifest, in
 *    discovery order.
 *
 * A reload (`reload/reloader.ts`) takes one component through steps 2 to 4
 * ({@link prepareComponent}), then swaps it in with {@link register} and
 * {@link unregister}.
 *
 * @module
 */
import type { Hosts } from "./capabilities/sides.ts";
import { ComponentCapabilities } from "./capabilities/host.ts";
import { ungranted } from "./capabilities/mod.ts";
import type { SqlFunctionRegistry } from "./capabilities/database/sql_functions.ts";
import { type CacheEntry, checkEntry } from "./compile/cache.ts";
import { sha256 } from "./hash.ts";
import { writeAtomic } from "./write_atomic.ts";
import { compileAll, type CompileResult } from "./compile/compiler.ts";
import { ComponentRecord } from "./component.ts";
import { discover, type Discovered } from "./discovery.ts";
import { ComponentHost, type ComponentInit } from "./isolation/component_host.ts";
import { NativeHost } from "./isolation/native_host.ts";
import type { ComponentEngine } from "./isolation/engine.ts";
import { outboundFor } from "./capabilities/outbound/native.ts";
import { log } from "./log.ts";
import { type Manifest, parseManifest } from "./manifest.ts";
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
import { type ComponentTarget, describeTarget } from "./routing/targets.ts";
import { grantsBeyondProcess } from "./sandbox.ts";

/** Where components come from and what they can reach. */
export interface LoadContext {
  componentsDir: string;
  dataDir: string;
  router: Router<ComponentTarget>;
  hosts: Hosts;
  /** Where components' SQL functions are registered. */
  sqlFunctions: SqlFunctionRegistry;
  /** Reads an environment variable granted to a component. */
  env: (name: string) => string | undefined;
  /** How long a busy component's extra workers may idle before they stop. */
  workerIdleMs: number;
}

/** A component past step 2: its grants. */
interface Permitted {
  record: ComponentRecord;
  engine: "wasm" | "native";
  permissions: Permissions;
  /** The directories of its `read` grants, resolved. */
  readDirs: string[];
}

/** A component past step 3: its compiled files. */
interface Compiled extends Permitted {
  entry: CacheEntry;
  /** Compiles it again, when its cache entry turns out damaged. */
  recompile: () => Promise<CompileResult>;
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

/** The components of a directory, and the ones still to be started. */
export interface Loaded {
  records: ComponentRecord[];
  /** Components serving from their cached manifest: start them once Pier listens. */
  deferred: Deferred[];
}

/** A record of a component that failed at once. */
function failed(name: string, file: string, error: string): ComponentRecord {
  const record = new ComponentRecord(name, file);
  record.fail(error);
  return record;
}

/**
 * Loads every component in the components dir and registers its routes. A
 * component whose manifest is cached is not started yet (see {@link Loaded}).
 */
export async function loadComponents(context: LoadContext): Promise<Loaded> {
  const { found, refused } = await discover(context.componentsDir);
  const records = refused.map(({ file, reason }) => failed(file.split("/").pop()!, file, reason));
  const deferred: Deferred[] = [];

  const permitted: Permitted[] = [];
  for (const { name, path, engine } of found) {
    try {
      permitted.push({ ...await permit(name, path, context), engine });
    } catch (error) {
      records.push(failed(name, path, (error as Error).message));
    }
  }
  if (permitted.length === 0) {
    if (found.length === 0) log.info(`no components in ${context.componentsDir}`);
    return { records, deferred };
  }

  const wasm = permitted.filter((each) => each.engine === "wasm");
  const compiled = wasm.length ? await compile(wasm, context) : [];
  const later = new Map<ComponentRecord, Deferred | undefined>(
    await Promise.all([
      ...compiled.map(async (each) => [each.record, await start(each, context)] as const),
      ...permitted.filter((each) => each.engine === "native").map(async (each) =>
        [each.record, await startNative(each, context)] as const
      ),
    ]),
  );
  // Register in discovery order so that a route conflict always refuses the later component.
  for (const { record } of permitted) {
    records.push(record);
    if (record.state !== "loaded") continue;
    register(record, context);
    const pending = later.get(record);
    if (pending) deferred.push(pending);
    const when = pending ? " (from its cached manifest; starting)" : "";
    log.info(`${record.name}: loaded${when}, routes: ${record.routes.join(", ") || "none"}`);
  }
  return { records, deferred };
}

/**
 * Loads one component as a change in the components directory asks: steps 2
 * to 4, started at once (never from a cached manifest, so that a version
 * that cannot start is known before it replaces anything). Its routes are not
 * registered: resolves to its record, loaded or failed.
 */
export async function prepareComponent(
  { name, path, engine }: Discovered,
  context: LoadContext,
): Promise<ComponentRecord> {
  let permitted: Permitted;
  try {
    permitted = { ...await permit(name, path, context), engine };
  } catch (error) {
    return failed(name, path, (error as Error).message);
  }
  if (engine === "native") await startNative(permitted, context);
  else {
    for (const compiled of await compile([permitted], context)) {
      await start(compiled, context, true);
    }
  }
  return permitted.record;
}

/**
 * Step 2: the permission manifest of component `name`, and the directories it
 * grants. Grants this process's Deno flags lack (a host, a variable added
 * since the launch) are refused: only a new server process can have them.
 */
async function permit(
  name: string,
  path: string,
  context: LoadContext,
): Promise<Omit<Permitted, "engine">> {
  const { componentsDir, dataDir } = context;
  const permissions = await loadPermissions(componentsDir, name) ?? DENY_ALL;
  if (permissions === DENY_ALL) {
    log.info(`${name}: no ${name}.permissions.json: all capabilities denied`);
  }
  const file = permissionsPath(componentsDir, name);
  const beyond = grantsBeyondProcess(permissions);
  if (beyond.length) {
    throw new Error(
      `${file} grants ${beyond.join(", ")}, beyond the server process's Deno flags: ` +
        "this needs a process hand-over (a new server process launched with the new flags)",
    );
  }
  const readDirs = await readRoots(permissions.read, dataDir, file);
  const record = new ComponentRecord(name, path);
  record.permissions = permissions;
  return { record, permissions, readDirs };
}

/**
 * Step 3: compiles the permitted components, on a pool of workers; one that
 * does not compile is failed. Returns the compiled ones.
 */
async function compile(permitted: Permitted[], context: LoadContext): Promise<Compiled[]> {
  log.info(`compiling ${permitted.length} component(s) from ${context.componentsDir}`);
  const byPath = new Map(permitted.map((each) => [each.record.file, each]));
  const onCompiled = (path: string, result: CompileResult) => {
    const name = byPath.get(path)!.record.name;
    if (!result.ok) return;
    const { entry, size, ms } = result;
    const cache = entry.hit
      ? "cache hit"
      : `cache miss${entry.rebuilt ? ` (rebuilt: ${entry.rebuilt})` : ""}${
        entry.sameShapeAs ? " (no jco: the glue of a cached component of the same shape)" : ""
      }`;
    log.info(`${name}: ${(size / 1e6).toFixed(1)} MB, ${cache}, ${ms.toFixed(0)} ms`);
  };
  const cacheDir = `${context.dataDir}/${CACHE_DIR}`;
  const results = await compileAll([...byPath.keys()], cacheDir, onCompiled);
  return permitted.flatMap((each): Compiled[] => {
    const path = each.record.file;
    const result = results.get(path)!;
    if (!result.ok) {
      each.record.fail(`${path} is not a loadable component: ${result.error}`);
      return [];
    }
    each.record.compiled(result.size, result.entry.hit, result.entry.imports);
    const recompile = async () =>
      (await compileAll([path], cacheDir, onCompiled, { fresh: true })).get(path)!;
    return [{ ...each, entry: result.entry, recompile }];
  });
}

/** How long a start waits at least for the component's manifest (see {@link start}). */
const START_MIN_MS = 10_000;

/**
 * Step 4: makes the component's host and starts it; with the manifest it
 * returned last time cached, loads it from that and returns its start, to be
 * made once Pier listens. SQL functions do not wait, so a component with any
 * starts now, and so does a `reload`. A start that has not returned the
 * manifest within the component's time limit (at least {@link START_MIN_MS})
 * fails: a guest that never returns would keep Pier from listening, or hold
 * up every later reload.
 */
async function start(
  component: Compiled,
  context: LoadContext,
  reload = false,
): Promise<Deferred | undefined> {
  const { record, entry, permissions, readDirs } = component;
  const name = record.name;
  const missing = ungranted(entry.imports, permissions);
  if (missing.length) log.info(`${name}: imports but was not granted: ${missing.join(", ")}`);
  const host = new ComponentHost({
    name,
    entry,
    permissions,
    readDirs,
    env: context.env,
    idleMs: context.workerIdleMs,
    capabilities: new ComponentCapabilities(name, permissions, context.hosts),
  });
  const cachedPath = await manifestFile(entry, host.init);
  const cachedText = await Deno.readTextFile(cachedPath).catch(() => undefined);
  /** Starts the host and keeps the manifest it returns for the next start. */
  const startKept = async () => {
    const text = await startChecked(host, component, startLimitMs(host));
    // Best effort: without it the next start only waits for the component.
    if (text !== cachedText) await writeAtomic(cachedPath, text).catch(() => {});
    return text;
  };

  const cached = cachedText === undefined ? undefined : tryParseManifest(cachedText);
  if (!reload && cached && cached.sqliteFunctions.length === 0) {
    record.load(host, cached);
    const later = async () => {
      try {
        const text = await startKept();
        // A reload may have replaced it meanwhile: its routes are another version's now.
        if (text === cachedText || record.state === "retired") return false;
        replaceManifest(record, parseManifest(text), context);
        return true;
      } catch (error) {
        record.fail(`init failed: ${(error as Error).message}`);
        return false;
      }
    };
    return { record, start: later };
  }
  try {
    record.load(host, parseManifest(await startKept()));
  } catch (error) {
    host.stop();
    record.fail(`init failed: ${(error as Error).message}`);
  }
  return undefined;
}

/**
 * Step 4 for a native component: its process starts now (nothing to compile
 * or cache); bounded as {@link start}'s is.
 */
async function startNative(component: Permitted, context: LoadContext): Promise<undefined> {
  const { record, permissions, readDirs } = component;
  const host = new NativeHost({
    name: record.name,
    module: record.file,
    permissions,
    readDirs,
    env: context.env,
    capabilities: new ComponentCapabilities(record.name, permissions, context.hosts),
    outbound: outboundFor(record.name, permissions),
  });
  try {
    record.load(host, parseManifest(await within(host.start(), startLimitMs(host))));
  } catch (error) {
    host.stop();
    record.fail(`init failed: ${(error as Error).message}`);
  }
  return undefined;
}

/** How long `host` may take to return its manifest. */
const startLimitMs = (host: ComponentEngine) => Math.max(host.timeoutMs, START_MIN_MS);

/**
 * Starts `host` within `limitMs`; when it fails on a cache entry
 * that was not just built, checks the entry against its hashes and, if it is
 * damaged, rebuilds it and starts once more.
 */
async function startChecked(
  host: ComponentHost,
  { entry, recompile }: Compiled,
  limitMs: number,
): Promise<string> {
  const begin = () => within(host.start(), limitMs);
  try {
    return await begin();
  } catch (error) {
    host.stop();
    const problem = entry.hit ? await checkEntry(entry.dir, "hashes") : undefined;
    if (!problem) throw error;
    log.warn(`${host.name}: compiled entry damaged (${problem}): compiling it again`);
    const again = await recompile();
    if (!again.ok) throw new Error(again.error);
    try {
      return await begin();
    } catch (error) {
      host.stop();
      throw error;
    }
  }
}

/** `started`, or a rejection once `limitMs` have passed without it. */
async function within(started: Promise<string>, limitMs: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no manifest within ${limitMs} ms: the start was stopped`)),
      limitMs,
    );
  });
  try {
    return await Promise.race([started, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Where the manifest a component returned is kept for its next start. It may
 * depend on the component's bytes (the entry), Pier's version and what the
 * component can read at start: its environment and its directories.
 */
async function manifestFile(entry: CacheEntry, init: ComponentInit) {
  const inputs = JSON.stringify([init.manifestArgs, init.env, init.preopens]);
  return `${entry.dir}/manifest-${(await sha256(inputs)).slice(0, 16)}.json`;
}

function tryParseManifest(text: string): Manifest | undefined {
  try {
    return parseManifest(text);
  } catch {
    return undefined;
  }
}

/**
 * Step 5: registers the routes and SQL functions of a loaded component's
 * manifest; one that cannot be registered is refused, in `record.warnings`.
 */
export function register(record: ComponentRecord, context: LoadContext): void {
  const manifest = record.manifest!;
  for (const { method, path } of manifest.httpHandlers) {
    try {
      const parsed: Method = parseMethod(method);
      assertComponentRoute(parsed, path);
      context.router.add(parsed, path, { kind: "component", component: record }, describeTarget);
      record.routes.push(`${parsed} ${path}`);
    } catch (error) {
      if (!(error instanceof RouteError)) throw error;
      record.refuse(`route refused: ${error.message}`);
    }
  }
  for (const problem of context.sqlFunctions.register(record.host!, manifest.sqliteFunctions)) {
    record.refuse(problem);
  }
}

/**
 * Takes the routes and SQL functions of `record` out of the tables: its routes
 * answer 404 (or lead to what is registered next).
 */
export function unregister(record: ComponentRecord, context: LoadContext): void {
  for (const route of record.routes) {
    const [method, path] = route.split(" ") as [Method, string];
    context.router.remove(
      method,
      path,
      (target) => target.kind === "component" && target.component === record,
    );
  }
  context.sqlFunctions.release(record.name);
}

/**
 * Registers again what {@link unregister} took out of a component that was
 * registered (a new version of it could not be): its routes as they were,
 * free since, and its SQL functions.
 */
export function restore(record: ComponentRecord, context: LoadContext): void {
  for (const route of record.routes) {
    const [method, path] = route.split(" ") as [Method, string];
    context.router.add(method, path, { kind: "component", component: record }, describeTarget);
  }
  if (record.host && record.manifest) {
    // Any refused now was refused the first time too, and is in its warnings.
    context.sqlFunctions.register(record.host, record.manifest.sqliteFunctions);
  }
}

/**
 * Puts the manifest a component returned in place of the cached one it was
 * serving from: its routes and SQL functions follow the new manifest.
 */
function replaceManifest(record: ComponentRecord, manifest: Manifest, context: LoadContext) {
  unregister(record, context);
  record.replaceManifest(manifest);
  register(record, context);
  log.warn(
    `${record.name}: its manifest changed since the last start: routes now ${
      record.routes.join(", ") || "none"
    }`,
  );
}
