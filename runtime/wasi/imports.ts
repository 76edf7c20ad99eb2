/**
 * Assembles the import object a guest instance is instantiated with.
 *
 * @module
 */
import { cliImports, type CliOptions } from "./cli.ts";
import { clockImports } from "./clocks.ts";
import { filesystemImports } from "./filesystem.ts";
import { httpImports, type OutboundHandler } from "./http.ts";
import { ioImports } from "./io.ts";
import { randomImports } from "./random.ts";

/** Import objects keyed by interface name without version, as jco asks. */
export type ImportObject = Record<string, Record<string, unknown>>;

/** What the host decides per component. */
export interface HostOptions extends CliOptions {
  outbound: OutboundHandler;
}

/**
 * The WASI imports; `capabilities` adds the database, key-value and
 * filesystem interfaces. An interface Pier does not provide still resolves,
 * so a component that merely imports it loads; calling it traps with a
 * message naming it.
 */
export function hostImports(
  options: HostOptions,
  capabilities: ImportObject = {},
): ImportObject {
  const known: ImportObject = {
    ...ioImports(),
    ...clockImports(),
    ...randomImports(),
    ...cliImports(options),
    ...httpImports(options.outbound),
    ...filesystemImports(),
    ...capabilities,
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
