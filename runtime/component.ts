/**
 * The record of one component: what the loader (`registry.ts`) made of it,
 * what its routes lead to, and what `/_/health` shows. Its state changes
 * only through the transitions below:
 *
 * ```
 * loading --load--> loaded --fail--> failed   (a start from the cached manifest failed)
 *    \----------------fail--------->/
 * loaded or failed --retire--> retired        (a reload replaced or removed it)
 * ```
 *
 * @module
 */
import type { ComponentEngine } from "./isolation/engine.ts";
import { log } from "./log.ts";
import { type ComponentMetrics, componentMetrics } from "./metrics.ts";
import type { Manifest } from "./manifest.ts";
import type { Permissions } from "./permissions.ts";

/**
 * `loading` while the loader works on it; `loaded` once its routes are
 * registered and its host serves them (started, or started by the first
 * request); `failed` with the reason, answered with 503; `retired` once a
 * reload put another version in its place or removed it (its host drains).
 */
export type ComponentState = "loading" | "loaded" | "failed" | "retired";

/** A new version of a component that a reload could not put in place. */
export interface Rejected {
  /** When (ISO 8601). */
  at: string;
  /** The component file the new version came from. */
  file: string;
  error: string;
}

/** A component and what became of it. */
export class ComponentRecord {
  #state: ComponentState = "loading";
  #error: string | undefined;
  #manifest: Manifest | undefined;
  #host: ComponentEngine | undefined;
  /** Problems that kept parts of a loaded component out (e.g. a route conflict). */
  warnings: string[] = [];
  /** Its registered routes, as `METHOD /path`. */
  routes: string[] = [];
  /** Size of its `.wasm` in bytes, once compiled. */
  size?: number;
  /** Whether its compiled entry came from the cache. */
  cache?: "hit" | "miss";
  /** What its permission manifest grants, once read. */
  permissions?: Permissions;
  /** The interfaces its code imports, once compiled. */
  imports?: string[];
  /** When it failed (ms since the epoch). */
  failedAt?: number;
  /** The last new version a reload refused; this one kept serving. */
  rejected?: Rejected;

  /** Its counters, for `/_/metrics`. */
  readonly metrics: ComponentMetrics;

  constructor(readonly name: string, readonly file: string) {
    this.metrics = componentMetrics(name);
  }

  get state(): ComponentState {
    return this.#state;
  }
  /** Why it failed. */
  get error(): string | undefined {
    return this.#error;
  }
  /** The component's own manifest (from `get-manifest`): routes, jobs, SQL functions. */
  get manifest(): Manifest | undefined {
    return this.#manifest;
  }
  /** Its workers, once it is loaded (kept when a start from the cached manifest failed). */
  get host(): ComponentEngine | undefined {
    return this.#host;
  }

  /** Compiled: `size` bytes of `.wasm`, from the cache or not, importing `imports`. */
  compiled(size: number, hit: boolean, imports: string[]): void {
    this.size = size;
    this.cache = hit ? "hit" : "miss";
    this.imports = imports;
  }

  /** loading → loaded: `host` serves the routes of `manifest`. */
  load(host: ComponentEngine, manifest: Manifest): void {
    this.#expect("loading");
    this.#state = "loaded";
    this.#host = host;
    this.#manifest = manifest;
  }

  /**
   * A loaded component serves another manifest (its start returned one that
   * differs from the cached one): its routes and warnings are registered anew.
   */
  replaceManifest(manifest: Manifest): void {
    this.#expect("loaded");
    this.#manifest = manifest;
    this.routes = [];
    this.warnings = [];
  }

  /** → failed: a step failed, or the component could not start. Logged. */
  fail(error: string): void {
    // A retired version's late start failure concerns nobody.
    if (this.#state === "retired") return;
    this.#state = "failed";
    this.#error = error;
    this.failedAt = Date.now();
    this.metrics.noteError(error, this.failedAt);
    log.error(`${this.name}: ${error}`);
  }

  /** → retired: a reload replaced or removed it; its routes are no longer registered. */
  retire(): void {
    this.#state = "retired";
  }

  /**
   * A new version from `file` could not replace this one, which keeps
   * serving (if it did): logged and kept in {@link rejected}.
   */
  reject(file: string, error: string): void {
    this.rejected = { at: new Date().toISOString(), file, error };
    // A failed record logged its error when it failed.
    if (this.#state === "failed") return;
    log.error(`${this.name}: new version refused (the running version keeps serving): ${error}`);
  }

  /** A part of the component was kept out (a route, a SQL function): logged and kept in `warnings`. */
  refuse(message: string): void {
    this.warnings.push(message);
    log.error(`${this.name}: ${message}`);
  }

  #expect(state: ComponentState) {
    if (this.#state !== state) {
      throw new Error(`${this.name}: is ${this.#state}, not ${state}`);
    }
  }
}
