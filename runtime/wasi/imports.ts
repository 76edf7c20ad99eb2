/**
 * Assembles the import object a guest instance is instantiated with.
 *
 * @module
 */
import type { NetRule } from "../permissions.ts";
import { cliImports, type CliOptions } from "./cli.ts";
import { clockImports } from "./clocks.ts";
import { databaseImports } from "../capabilities/database/worker.ts";
import { filesystemImports, type Preopen } from "../capabilities/filesystem/worker.ts";
import { httpImports } from "./http.ts";
import { ioImports } from "./io.ts";
import { keyValueImports } from "../capabilities/keyvalue/worker.ts";
import { createOutbound } from "../capabilities/outbound/worker.ts";
import { randomImports } from "./random.ts";

/** Import objects keyed by interface name without version, as jco asks. */
export type ImportObject = Record<string, Record<string, unknown>>;

/**
 * A call to the server thread's capabilities (database, key-value,
 * in-band HTTP); rejects with the ABI's error value for the guest.
 */
export type HostCall = (op: string, args: unknown[]) => Promise<unknown>;

/** What the host decides per component. */
export interface HostOptions extends CliOptions {
  /** The component's name, for log lines. */
  name: string;
  net: NetRule[];
  preopens: Preopen[];
  /** Waits for a slot for one outbound request (`limits.outbound`); resolves with its release. */
  outboundSlot: () => Promise<() => void>;
}

/**
 * The imports of one guest instance; `call` reaches the server thread on
 * behalf of whatever request this instance serves. An interface Pier does
 * not provide still resolves, so a component that merely imports it loads;
 * calling it traps with a message naming it.
 */
export function hostImports(options: HostOptions, call: HostCall): ImportObject {
  const known: ImportObject = {
    ...ioImports(),
    ...clockImports(),
    ...randomImports(),
    ...cliImports(options),
    ...httpImports(createOutbound(options.name, options.net, call, options.outboundSlot)),
    ...filesystemImports(options.preopens),
    ...databaseImports(call),
    ...keyValueImports(call),
  };
  return new Proxy(known, {
    get: (target, name: string) => target[name] ?? unsupported(name),
  });
}

function unsupported(iface: string): Record<string, unknown> {
  return new Proxy({}, {
    get: (_, member: string) =>
      function unsupportedImport() {
        throw new Error(`${iface}#${member} is not provided by Pier`);
      },
  });
}
