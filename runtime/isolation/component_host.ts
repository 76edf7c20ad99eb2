/**
 * A component's pool of workers: one to start with, more (up to its
 * `limits.workers`) while every worker it has is busy, and back to one once
 * the extra ones idle. Each worker is a {@link WorkerLink}; a worker that
 * crashes or overruns its time limit takes only its own requests with it.
 *
 * @module
 */
import type { ComponentCapabilities } from "../capabilities/host.ts";
import type { WitValue } from "../capabilities/values.ts";
import type { CacheEntry } from "../compile/cache.ts";
import { GLUE } from "../compile/transpile.ts";
import { log, logFormat } from "../log.ts";
import { componentMetrics } from "../metrics.ts";
import { manifestArgs } from "../manifest.ts";
import { resolve, toFileUrl } from "../paths.ts";
import type { Permissions } from "../permissions.ts";
import { workerPermissions } from "../sandbox.ts";
import { PIER_VERSION } from "../version.ts";
import { compileCoreModules } from "./core_modules.ts";
import { admit } from "./engine.ts";
import { outboundShare } from "./outbound_slots.ts";
import type { WorkerInit } from "./protocol.ts";
import { GuestError, type RequestHead, WorkerLink } from "./worker_link.ts";

export { bodySize, GuestError } from "./worker_link.ts";

/**
 * A request for a component. Its body may be a function that reads it: it is
 * called only once the request is admitted, so a refused request's body is
 * never read.
 */
export type ComponentRequest = Omit<RequestHead, "body"> & {
  body: Uint8Array | null | (() => Promise<Uint8Array | null>);
  /** The request's id (`x-request-id`), for an engine that puts it in its responses (see `answersWithId`). */
  requestId?: string;
};

/** A component to run: its compiled entry and its grants. */
export interface ComponentHostOptions {
  name: string;
  /** Its compiled files. */
  entry: CacheEntry;
  /** Its permission manifest. */
  permissions: Permissions;
  /** The directories its `read` grants name, resolved (see `permissions.ts`'s `readRoots`). */
  readDirs: string[];
  /** Reads an environment variable granted to the component. */
  env: (name: string) => string | undefined;
  /** How long an extra worker may idle before it is stopped. */
  idleMs: number;
  /** Answers the guest's database, key-value and in-band calls. */
  capabilities: ComponentCapabilities;
}

/** What every worker of a component is given; each adds its own id, rings and outbound part. */
export type ComponentInit = Omit<WorkerInit, "type" | "ownRequestId" | "rings" | "outboundHeld">;

/** Idle guest instances a worker keeps for reuse. */
const MAX_IDLE_INSTANCES = 8;

/** The init of `options`' workers: its grants, as the worker applies them. */
function componentInit(options: ComponentHostOptions): ComponentInit {
  const { name, entry, permissions, readDirs } = options;
  return {
    name,
    glueUrl: toFileUrl(`${resolve(entry.dir)}/${GLUE}`).href,
    coreDir: entry.dir,
    env: permissions.env.flatMap((key) => {
      const value = options.env(key);
      return value === undefined ? [] : [[key, value] as [string, string]];
    }),
    net: permissions.net,
    preopens: permissions.read.map((dir, i) => ({ hostPath: readDirs[i], guestPath: `/${dir}` })),
    memoryMb: permissions.limits.memoryMb,
    maxIdleInstances: MAX_IDLE_INSTANCES,
    manifestArgs: manifestArgs(PIER_VERSION),
    outbound: outboundShare(permissions.limits.outbound),
    guestCounts: componentMetrics(name).guestShared,
    logFormat: logFormat(),
  };
}

/**
 * A busy worker silent this long is taken to be stuck in a long computation
 * (or a loop): requests wait for a new worker rather than queue behind it.
 */
const STALLED_MS = 100;

/**
 * A worker whose oldest request in flight was sent longer ago than this has
 * fallen behind: the next request goes to another one. One that keeps up
 * takes every request: for a cheap guest one worker is cheaper than two (each
 * wakes for fewer requests at a time, and the two contend with the server
 * thread for the cores), while a guest slower than this per queue still
 * spreads over the pool.
 */
const BEHIND_MS = 1;

/** Runs one component in a pool of workers and answers requests with it. */
export class ComponentHost {
  #links: WorkerLink[] = [];
  /** The first worker's start: the component's manifest. */
  #ready: Promise<string> | undefined;
  #nextId = 1;
  #linksMade = 0;
  #modules: Promise<Record<string, WebAssembly.Module>> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** The start of the extra worker being added, if one is. */
  #growing: Promise<unknown> | undefined;
  /** Requests admitted but not yet handed to a worker (reading their body, waiting for a worker). */
  #entering = 0;
  /** What each worker is given. */
  readonly init: ComponentInit;
  /** The Deno permissions of each worker. */
  readonly #workerPermissions: Deno.PermissionOptionsObject;

  constructor(readonly options: ComponentHostOptions) {
    this.init = componentInit(options);
    this.#workerPermissions = workerPermissions(
      options.entry,
      options.readDirs,
      options.permissions,
    );
  }

  get name(): string {
    return this.options.name;
  }

  /** Wall-clock limit for one request or job run, in milliseconds (`limits.timeoutMs`). */
  get timeoutMs(): number {
    return this.options.permissions.limits.timeoutMs;
  }

  /** True while at least one worker of the component is up. */
  get running(): boolean {
    return this.#links.some((link) => link.running);
  }

  /** Workers up now. */
  get workers(): number {
    return this.#links.filter((link) => link.running).length;
  }

  /** Requests (and job runs) admitted and not finished, streamed bodies included. */
  get inFlight(): number {
    return this.#links.reduce((sum, link) => sum + link.load, this.#entering);
  }

  /** Guest instances alive in its workers now. */
  get instances(): number {
    return this.#links.reduce((sum, link) => sum + link.instances, 0);
  }

  /**
   * Starts the first worker; resolves with the component's manifest JSON. An
   * urgent start (a request waits for it) compiles ahead of the others.
   */
  start(urgent = false): Promise<string> {
    return this.#ready ??= this.#addLink().start(urgent);
  }

  #addLink(): WorkerLink {
    // Each worker's own calls get an id no request has.
    const ownRequestId = -++this.#linksMade;
    const link = new WorkerLink({
      init: { ...this.init, ownRequestId },
      permissions: this.#workerPermissions,
      timeoutMs: this.timeoutMs,
      capabilities: this.options.capabilities,
      coreModules: (urgent) => this.#coreModules(urgent),
      onGone: (gone) => this.#remove(gone),
    });
    this.#links.push(link);
    return link;
  }

  #remove(link: WorkerLink) {
    this.#links = this.#links.filter((each) => each !== link);
    // With no worker left, the next request starts one.
    if (this.#links.length === 0) this.#ready = undefined;
  }

  /** The component's core modules, compiled once for every worker it will have. */
  #coreModules(urgent: boolean): Promise<Record<string, WebAssembly.Module>> {
    const { coreDir, memoryMb } = this.init;
    // A failed compile is not kept: the modules may be compiled again once repaired.
    return this.#modules ??= compileCoreModules(coreDir, memoryMb, urgent).catch((error) => {
      this.#modules = undefined;
      throw error;
    });
  }

  /** The first running worker that keeps up (see {@link BEHIND_MS}), if one does. */
  #keepingUp(): WorkerLink | undefined {
    const since = performance.now() - BEHIND_MS;
    for (const link of this.#links) {
      if (link.running && !link.busySince(since)) return link;
    }
    return undefined;
  }

  /** The running worker with the fewest requests in flight. */
  #best(): WorkerLink | undefined {
    let best: WorkerLink | undefined;
    for (const link of this.#links) {
      if (link.running && (!best || link.load < best.load)) best = link;
    }
    return best;
  }

  /**
   * Adds a worker when every one is up and behind and the pool may grow. The
   * request at hand goes to `busy` unless it seems stalled while a worker is
   * being added (undefined: wait for that one): a worker takes far longer to
   * start than a request usually runs.
   */
  #relieve(busy: WorkerLink): WorkerLink | undefined {
    const { workers } = this.options.permissions.limits;
    if (this.#links.length < workers && this.#links.every((link) => link.running)) {
      this.#grow();
    }
    if (!this.#growing || performance.now() - busy.lastHeard <= STALLED_MS) return busy;
    return undefined;
  }

  #grow() {
    const link = this.#addLink();
    const growing = this.#growing = link.start().then(
      () => {
        log.info(`${this.name}: busy: now ${this.workers} workers`);
        this.#watchIdle();
      },
      (error) => {
        // Stopped with the whole component (a reload replaced it, a shutdown): nothing went wrong.
        if (!this.#links.includes(link)) return;
        log.error(`${this.name}: an extra worker could not start: ${error.message}`);
        link.stop("could not start");
      },
    ).finally(() => {
      if (this.#growing === growing) this.#growing = undefined;
    });
  }

  /**
   * Stops workers that idled `options.idleMs`, keeping one idle worker (the
   * others may be busy for long: a stalled one among them).
   */
  #watchIdle() {
    if (this.#idleTimer !== undefined) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      const now = performance.now();
      const idle = this.#links.filter((link) => link.running && link.load === 0);
      for (const link of idle.slice(1)) {
        if (now - link.idleSince >= this.options.idleMs) {
          link.stop("idle");
          log.info(`${this.name}: idle: now ${this.workers} workers`);
        }
      }
      if (this.#links.length > 1) this.#watchIdle();
    }, this.options.idleMs / 2);
  }

  /**
   * Its responses carry the request's `x-request-id` (see `WorkerLink`): the
   * server need not read their headers.
   */
  readonly answersWithId = true;

  /**
   * Sends a request through the component; rejects with {@link GuestError}.
   * A request beyond `limits.concurrency` is refused before anything else: a
   * body given as a function is read only once the request holds its place.
   */
  fetch(request: ComponentRequest): Promise<Response> {
    try {
      admit(this.inFlight, this.options.permissions.limits.concurrency);
    } catch (error) {
      return Promise.reject(error);
    }
    // The common case goes straight to its worker: no body to read, a worker up and not stalled
    // (each `await` on the way costs the server thread promises and microtasks per request).
    const link = typeof request.body === "function" ? undefined : this.#pickNow();
    if (link) return link.fetch(this.#nextId++, request as RequestHead);
    return this.#enter(request);
  }

  /** {@link fetch} when the request must wait: for its body, or for a worker to start. */
  async #enter(request: ComponentRequest): Promise<Response> {
    this.#entering++;
    let link: WorkerLink | undefined;
    let head: RequestHead;
    try {
      const { body } = request;
      head = { ...request, body: typeof body === "function" ? await body() : body };
      link = await this.#pick();
    } finally {
      this.#entering--;
    }
    return link.fetch(this.#nextId++, head);
  }

  /**
   * The worker a request goes to if one can take it now, without waiting: the
   * first that keeps up, else the least busy (relieved if the pool may grow).
   */
  #pickNow(): WorkerLink | undefined {
    const keeping = this.#keepingUp();
    if (keeping) return keeping;
    // Every running worker is behind.
    const link = this.#best();
    return link && this.#relieve(link);
  }

  /** The worker a request goes to, started or added if need be. */
  async #pick(): Promise<WorkerLink> {
    if (!this.#best()) {
      try {
        await this.start(true);
      } catch (error) {
        throw new GuestError(`could not start: ${(error as Error).message}`, 503);
      }
    }
    let link = this.#pickNow();
    if (!link && this.#growing) {
      await this.#growing;
      link = this.#best();
    }
    if (!link) throw new GuestError("could not start: the worker is gone", 503);
    return link;
  }

  /**
   * Calls SQL function `name` of the component on its first running worker
   * (see {@link WorkerLink.callSqlFunction}).
   */
  callSqlFunction(name: string, args: WitValue[]): Promise<WitValue> {
    const link = this.#links.find((each) => each.running);
    if (!link) return Promise.reject(new Error(`component "${this.name}" is not running`));
    return link.callSqlFunction(name, args);
  }

  /** Stops every worker; its requests in flight fail (503) with `reason`. */
  stop(reason?: string): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    for (const link of this.#links) link.stop(reason);
    this.#links = [];
    this.#ready = undefined;
  }
}
