/**
 * Loads the components of a directory: discover, compile (cached, in
 * parallel), start each in its worker, read its manifest and register its
 * routes. A component that fails any step is recorded with the reason and
 * skipped; the others load.
 *
 * @module
 */
import { pathToFileURL } from "node:url";
import { compileAll } from "./compile/compiler.ts";
import { discover } from "./discovery.ts";
import { ComponentHost } from "./isolation/component_host.ts";
import { log } from "./log.ts";
import { type Manifest, manifestArgs, parseManifest } from "./manifest.ts";
import { type Method, parseMethod, RouteError, type Router } from "./routing/router.ts";

/** Pier's version, sent to components in `get-manifest`. */
export const PIER_VERSION = "0.1.0";

/** Limits applied to every component. */
export const DEFAULT_LIMITS = { timeoutMs: 30_000, maxIdleInstances: 8 };

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

function registerRoutes(
  record: ComponentRecord,
  manifest: Manifest,
  router: Router<RouteTarget>,
) {
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

/** Loads every component in `componentsDir` and registers its routes. */
export async function loadComponents(
  componentsDir: string,
  cacheDir: string,
  router: Router<RouteTarget>,
): Promise<ComponentRecord[]> {
  const { found, refused } = await discover(componentsDir);
  const records: ComponentRecord[] = refused.map(({ file, reason }) => {
    log.error(`${file}: ${reason}`);
    return {
      name: file.split("/").pop()!,
      file,
      state: "failed",
      error: reason,
      warnings: [],
      routes: [],
    };
  });
  if (found.length === 0) {
    log.info(`no components in ${componentsDir}`);
    return records;
  }
  log.info(`compiling ${found.length} component(s) from ${componentsDir}`);
  const byPath = new Map(found.map((c) => [c.path, c]));
  const compiled = await compileAll([...byPath.keys()], cacheDir, (path, result) => {
    const name = byPath.get(path)!.name;
    if (result.ok) {
      const { entry, size, ms } = result;
      const cache = entry.hit
        ? "cache hit"
        : `cache miss${entry.rebuilt ? ` (rebuilt: ${entry.rebuilt})` : ""}`;
      log.info(`${name}: ${(size / 1e6).toFixed(1)} MB, ${cache}, ${ms.toFixed(0)} ms`);
    } else log.error(`${name}: ${path} is not a loadable component: ${result.error}`);
  });

  // Start in discovery order so that a route conflict always refuses the later component.
  const started = found.map(async ({ name, path }) => {
    const result = compiled.get(path)!;
    const record: ComponentRecord = { name, file: path, state: "failed", warnings: [], routes: [] };
    if (!result.ok) {
      record.error = `not a loadable component: ${result.error}`;
      return { record, logged: true };
    }
    record.size = result.size;
    record.cache = result.entry.hit ? "hit" : "miss";
    const dir = result.entry.dir;
    const host = new ComponentHost({
      init: {
        name,
        glueUrl: pathToFileURL(`${dir}/component.js`).href,
        coreDir: dir,
        env: [],
        maxIdleInstances: DEFAULT_LIMITS.maxIdleInstances,
        manifestArgs: manifestArgs(PIER_VERSION),
      },
      permissions: {
        read: [dir],
        write: false,
        net: false,
        env: false,
        run: false,
        ffi: false,
        sys: false,
        import: false,
      },
      timeoutMs: DEFAULT_LIMITS.timeoutMs,
    });
    try {
      return { record, host, manifest: parseManifest(await host.start()), logged: false };
    } catch (error) {
      host.stop();
      record.error = `init failed: ${(error as Error).message}`;
      return { record, logged: false };
    }
  });
  for (const { record, host, manifest, logged } of await Promise.all(started)) {
    records.push(record);
    if (!host || !manifest) {
      if (!logged) log.error(`${record.name}: ${record.error}`);
      continue;
    }
    Object.assign(record, { state: "loaded", host, manifest });
    registerRoutes(record, manifest, router);
    log.info(`${record.name}: loaded, routes: ${record.routes.join(", ") || "none"}`);
  }
  return records;
}
