/**
 * The server side of a component's capabilities: every call from its worker
 * arrives here and goes to the handler of its capability's server side
 * (`<capability>/host.ts`), which checks it against the component's grants
 * and answers with the ABI's own result or error.
 *
 * @module
 */
import { IdTable } from "../id_table.ts";
import { log } from "../log.ts";
import { type ComponentMetrics, componentMetrics } from "../metrics.ts";
import type { Permissions } from "../permissions.ts";
import type { Args, Calls, Op, Result } from "./calls.ts";
import type { ComponentScope, Handlers, Hosts, HostSide } from "./sides.ts";
import { databaseHost } from "./database/host.ts";
import type { Deadline } from "./database/process.ts";
import { DatabaseHost } from "./database/store.ts";
import { keyValueHost } from "./keyvalue/host.ts";
import { KeyValueHost } from "./keyvalue/store.ts";

/** A capability call refused or failed; `error` is the ABI error value for the guest. */
export class CapabilityError extends Error {
  constructor(readonly error: unknown, message: string) {
    super(message);
  }
}

/**
 * Opens the stores behind every component's capabilities, in the SQLite database `dbPath`;
 * extra database read processes stop after `readerIdleMs` idle.
 */
export function openHosts(dbPath: string, readerIdleMs: number): Hosts {
  return {
    database: new DatabaseHost(dbPath, readerIdleMs),
    keyValue: new KeyValueHost(dbPath),
  };
}

/** Closes what {@link openHosts} opened; resolves when the database processes have exited. */
export async function closeHosts(hosts: Hosts): Promise<void> {
  await Promise.all(Object.values(hosts).map((host) => host.close()));
}

/** Handles the capability calls of one component. */
export class ComponentCapabilities {
  /**
   * The requests whose calls are answered, with their deadlines
   * (`performance.now()` time); `undefined` for a worker's own id (its
   * manifest and SQL function calls), whose calls each get the time limit.
   * Not a `Map`: one entry per request (see `id_table.ts`).
   */
  #live = new IdTable<number | undefined>();
  /** Every call's handler. */
  readonly #calls: Handlers<Calls>;
  /** Each call's server side (its ABI errors, its denials). */
  readonly #sides = new Map<string, Omit<HostSide<Calls>, "calls">>();
  readonly #metrics: ComponentMetrics;

  constructor(
    readonly name: string,
    readonly permissions: Permissions,
    readonly hosts: Hosts,
  ) {
    this.#metrics = componentMetrics(name);
    const scope: ComponentScope = {
      name,
      permissions,
      hosts,
      owner: (requestId) => this.#owner(requestId),
      deadline: (requestId) => this.#deadline(requestId),
      isLive: (requestId) => this.#live.has(requestId),
      settle: (requestId) => this.settle(requestId),
    };
    const database = databaseHost(scope);
    const keyValue = keyValueHost(scope);
    this.#calls = { ...database.calls, ...keyValue.calls };
    for (const side of [database, keyValue]) {
      for (const op of Object.keys(side.calls)) this.#sides.set(op, side);
    }
  }

  #owner(requestId: number) {
    return `${this.name}/${requestId}`;
  }

  /**
   * Request `requestId` runs until `deadline` (`performance.now()` time;
   * omitted for a worker's own id, live as long as its worker): its calls are
   * answered until {@link requestEnded}.
   */
  requestStarted(requestId: number, deadline?: number): void {
    this.#live.set(requestId, deadline);
  }

  #deadline(requestId: number): Deadline {
    const limitMs = this.permissions.limits.timeoutMs;
    return { at: this.#live.get(requestId) ?? performance.now() + limitMs, limitMs };
  }

  /** Answers one call; throws {@link CapabilityError}. */
  async handle<O extends Op>(op: O, args: Args<O>, requestId: number): Promise<Result<O>> {
    const side = this.#sides.get(op);
    const kind = op.startsWith("kv.") ? "kv" : "db";
    let denied = false;
    try {
      if (!side) throw new Error(`unknown capability call ${op}`);
      // A guest that runs on after its response (or its time limit) acts for no request.
      if (!this.#live.has(requestId)) {
        throw new CapabilityError(
          { tag: "other", val: "the request has ended" },
          "the request has ended",
        );
      }
      return await this.#calls[op](args, requestId);
    } catch (error) {
      if (error instanceof CapabilityError) throw error;
      const message = (error as Error).message;
      if (!side) log.error(`${this.name}: ${message}`);
      denied = side?.denied(error) ?? false;
      throw new CapabilityError(
        side?.abiError(error, op) ?? { tag: "other", val: message },
        message,
      );
    } finally {
      this.#metrics.capabilityCall(kind, denied);
    }
  }

  /** Request `requestId` ended: its calls are refused from now on, what it left open rolled back. */
  requestEnded(requestId: number): void {
    this.#live.delete(requestId);
    this.settle(requestId);
  }

  /** Rolls back what `requestId` left open (a worker's own id: after each of its calls). */
  settle(requestId: number): void {
    const count = this.hosts.database.abandon(this.#owner(requestId));
    if (count) log.warn(`${this.name}: rolled back ${count} transaction(s) left open by a request`);
  }
}
