/**
 * The two sides of a capability: the guest side (`<capability>/worker.ts`)
 * gives a guest instance its imports, in the component's worker; the server
 * side (`<capability>/host.ts`) answers its calls (see `calls.ts`) on the
 * server thread.
 *
 * @module
 */
import type { NetRule, Permissions } from "../permissions.ts";
import type { CallSignature, HostCall } from "./calls.ts";
import type { Deadline } from "./database/process.ts";
import type { DatabaseHost } from "./database/store.ts";
import type { Preopen } from "./filesystem/mod.ts";
import type { KeyValueHost } from "./keyvalue/store.ts";
import type { GuestCounts } from "../metrics.ts";

/** Import objects keyed by interface name without version, as jco asks. */
export type ImportObject = Record<string, Record<string, unknown>>;

/** What a capability's guest side gets for one guest instance. */
export interface GuestContext {
  /** The component's name, for log lines. */
  name: string;
  /** Environment variables granted to the component, with their values. */
  env: [string, string][];
  /** Hosts the component may call. */
  net: NetRule[];
  /** Directories the guest sees read-only. */
  preopens: Preopen[];
  /** Waits for a slot for one outbound request (`limits.outbound`); resolves with its release. */
  outboundSlot: () => Promise<() => void>;
  /** Counts the component's fetch and filesystem calls for its metrics. */
  counts: GuestCounts;
  /** Reaches the server side on behalf of whatever request the instance serves. */
  call: HostCall;
}

/** A capability's guest side: its imports for one guest instance. */
export type GuestSide = (context: GuestContext) => ImportObject;

/** The shared hosts behind every component's capabilities. */
export interface Hosts {
  database: DatabaseHost;
  keyValue: KeyValueHost;
}

/** What a capability's server side knows of the component whose calls it answers. */
export interface ComponentScope {
  name: string;
  /** The component's grants. */
  permissions: Permissions;
  hosts: Hosts;
  /** Who owns what request `requestId` leaves open (transactions). */
  owner(requestId: number): string;
  /** When request `requestId`'s statements are stopped. */
  deadline(requestId: number): Deadline;
  /** Whether request `requestId`'s calls are still answered. */
  isLive(requestId: number): boolean;
  /** Rolls back what request `requestId` left open. */
  settle(requestId: number): void;
}

/** The handlers of calls `C`, each answering one call of request `requestId`. */
export type Handlers<C extends { [O in keyof C]: CallSignature }> = {
  [O in keyof C]: (
    args: C[O]["args"],
    requestId: number,
  ) => Promise<C[O]["result"]> | C[O]["result"];
};

/** A capability's server side, for one component. */
export interface HostSide<C extends { [O in keyof C]: CallSignature }> {
  calls: Handlers<C>;
  /** The ABI error value the guest gets for a call `op` that threw `error`. */
  abiError(error: unknown, op: string): unknown;
  /** Whether `error` refused a call that the component's grants do not allow (for the metrics). */
  denied(error: unknown): boolean;
}
