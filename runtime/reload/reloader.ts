/**
 * Hot reload: keeps the served components in step with the components
 * directory while Pier serves. A component whose file or permission manifest
 * changed is loaded again through the loader's own steps
 * (`registry.ts`'s {@link prepareComponent}: permit, compile through the
 * cache, start) beside the running version; once the new version has
 * returned its manifest, its routes, SQL functions and jobs take the old
 * ones' place in one synchronous step, so that no request sees half of
 * either. Requests already in flight finish on the old version, whose
 * workers are then stopped. A new version that cannot load, or cannot
 * register every route and SQL function it declares, replaces nothing: the
 * old one serves on, and the refusal is in the log and in `/_/health`.
 *
 * @module
 */
import type { ComponentRecord } from "../component.ts";
import { pruneCache } from "../compile/cache.ts";
import { CACHE_DIR } from "../data_dir.ts";
import { discover, type Discovered } from "../discovery.ts";
import { drain } from "../isolation/engine.ts";
import { log } from "../log.ts";
import { permissionsPath } from "../permissions.ts";
import { type LoadContext, prepareComponent, register, restore, unregister } from "../registry.ts";
import type { ComponentJobs } from "../scheduling/jobs.ts";
import { oneAtATime } from "./watch.ts";

/** A component file as last seen: a change of its fingerprint means a new version. */
interface Seen extends Discovered {
  fingerprint: string;
}

/** What a file is now: size, modification time and inode, through links; `-` when missing. */
async function stamp(path: string): Promise<string> {
  const info = await Deno.stat(path).catch(() => undefined);
  return info ? `${info.size}:${info.mtime?.getTime()}:${info.dev}:${info.ino}` : "-";
}

/**
 * The components the directory holds now, by name, with the fingerprints of
 * their file and permission manifest.
 */
export async function snapshot(componentsDir: string): Promise<Map<string, Seen>> {
  const { found } = await discover(componentsDir);
  const seen = new Map<string, Seen>();
  for (const component of found) {
    const { name, path } = component;
    const permissions = permissionsPath(componentsDir, name);
    const fingerprint = `${await stamp(path)} ${await stamp(permissions)}`;
    seen.set(name, { ...component, fingerprint });
  }
  return seen;
}

/** Loads the changes of the components directory into the running server. */
export class Reloader {
  #seen: Map<string, Seen>;

  /**
   * @param components the records `/_/health` and `/_/metrics` show: kept up to date in place.
   * @param baseline the {@link snapshot} taken before the components were loaded.
   */
  constructor(
    readonly context: LoadContext,
    readonly components: ComponentRecord[],
    readonly jobs: ComponentJobs,
    baseline: Map<string, Seen>,
  ) {
    this.#seen = baseline;
  }

  /**
   * Looks at the directory and loads what changed, one component after the
   * other; resolves when done. A call while a pass runs makes it look once
   * more afterwards.
   */
  readonly reconcile: () => Promise<void> = oneAtATime("reload", () => this.#reconcileOnce());

  async #reconcileOnce() {
    const now = await snapshot(this.context.componentsDir);
    let changed = false;
    for (const [name, file] of now) {
      if (this.#seen.get(name)?.fingerprint === file.fingerprint) continue;
      // Seen even if it fails: a broken version is tried again only once it changes.
      this.#seen.set(name, file);
      await this.#load(file);
      changed = true;
    }
    for (const name of [...this.#seen.keys()]) {
      if (now.has(name)) continue;
      this.#seen.delete(name);
      this.#remove(name);
      changed = true;
    }
    if (changed) await this.prune();
  }

  /** Removes the compile cache's entries that no component needs any more (see `pruneCache`). */
  async prune(): Promise<void> {
    const files = this.components.filter((record) => record.state !== "retired").map((r) => r.file);
    const removed = await pruneCache(`${this.context.dataDir}/${CACHE_DIR}`, files).catch(() => 0);
    if (removed > 0) log.info(`compile cache: removed ${removed} entries no component needs`);
  }

  #current(name: string): ComponentRecord | undefined {
    return this.components.find((record) => record.name === name && record.state !== "retired");
  }

  /** Loads a new or changed component and swaps it in, unless it is broken. */
  async #load(file: Discovered) {
    const { name, path } = file;
    const old = this.#current(name);
    const started = performance.now();
    log.info(`${name}: ${old ? "changed" : "new"}: loading ${path}`);
    const next = await prepareComponent(file, this.context);
    const problem = next.state === "loaded" ? this.#swap(old, next) : next.error!;
    if (problem !== undefined) return this.#refuse(old, next, path, problem);
    log.info(
      `${name}: ${old ? "reloaded" : "loaded"} in ${
        (performance.now() - started).toFixed(0)
      } ms, ` +
        `routes: ${next.routes.join(", ") || "none"}`,
    );
    if (old?.host) void drain(old.host, "replaced by a new version");
  }

  /**
   * Puts `next` in the place of `old`, in one synchronous step: routes, SQL
   * functions, jobs and the record `/_/health` shows. Returns why it cannot,
   * having changed nothing: a route or SQL function refused that `old` did
   * not have refused (one taken by another component, say), as the new
   * version would serve less than the running one meant to. Without a
   * running version, it loads as at a start, its refusals in its warnings.
   */
  #swap(old: ComponentRecord | undefined, next: ComponentRecord): string | undefined {
    if (old) unregister(old, this.context);
    register(next, this.context);
    const running = old?.state === "loaded" ? old : undefined;
    const refused = next.warnings.filter((warning) =>
      running && !running.warnings.includes(warning)
    );
    if (refused.length > 0) {
      unregister(next, this.context);
      if (old) restore(old, this.context);
      return refused.join("; ");
    }
    this.jobs.register(next);
    this.#replace(old, next);
    return undefined;
  }

  /** Puts record `next` where `old` was among the components (or adds it); `old` retires. */
  #replace(old: ComponentRecord | undefined, next: ComponentRecord) {
    const index = old ? this.components.indexOf(old) : -1;
    if (index >= 0) this.components[index] = next;
    else this.components.push(next);
    old?.retire();
  }

  /**
   * A new version could not load: a working old one serves on; without one,
   * the failed version takes its place, so `/_/health` shows why.
   */
  #refuse(old: ComponentRecord | undefined, next: ComponentRecord, path: string, error: string) {
    next.host?.stop("refused");
    if (old?.state === "loaded") return old.reject(path, error);
    next.fail(error);
    if (old) {
      unregister(old, this.context);
      this.jobs.unregister(old.name);
      old.host?.stop("replaced by a new version");
    }
    this.#replace(old, next);
    next.reject(path, error);
  }

  /** Unloads a component whose file is gone: its routes answer 404, its jobs stop. */
  #remove(name: string) {
    const old = this.#current(name);
    if (!old) return;
    unregister(old, this.context);
    this.jobs.unregister(name);
    this.components.splice(this.components.indexOf(old), 1);
    old.retire();
    log.info(`${name}: removed: its file is gone`);
    if (old.host) void drain(old.host, "removed");
  }
}
