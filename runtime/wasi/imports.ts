/**
 * Assembles the import object a guest instance is instantiated with: what
 * every guest gets (io, clocks, random, cli, http types) and the
 * capabilities' imports.
 *
 * @module
 */
import type { HostCall } from "../capabilities/calls.ts";
import type { GuestContext, ImportObject } from "../capabilities/sides.ts";
import { capabilityImports } from "../capabilities/worker.ts";
import { cliImports, type CliOptions } from "./cli.ts";
import { clockImports } from "./clocks.ts";
import { httpImports } from "./http.ts";
import { ioImports } from "./io.ts";
import { randomImports } from "./random.ts";

export type { ImportObject };

/** What the host decides per component. */
export type HostOptions = CliOptions & Omit<GuestContext, "call">;

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
    ...httpImports(),
    ...capabilityImports({ ...options, call }),
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
