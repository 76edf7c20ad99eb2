/**
 * Every capability Pier grants, described once (see `capability.ts`); the
 * compiler's list of suspending imports and the "not granted" report loop
 * over these.
 *
 * @module
 */
import type { Capability } from "./capability.ts";
import { database } from "./database/mod.ts";
import { environment } from "./environment/mod.ts";
import { filesystem } from "./filesystem/mod.ts";
import { keyValue } from "./keyvalue/mod.ts";
import { outbound } from "./outbound/mod.ts";
import type { Permissions } from "../permissions.ts";

/** The capabilities, each a folder of its own. */
export const CAPABILITIES = [
  database,
  keyValue,
  filesystem,
  outbound,
  environment,
] as const satisfies readonly Capability[];

/** The names of the capabilities. */
export type CapabilityName = typeof CAPABILITIES[number]["name"];

/** Imports that wait for a capability: the guest's stack suspends on them. */
export const SUSPENDING_IMPORTS: string[] = CAPABILITIES.flatMap((c) => c.suspending);

/** Capabilities a component imports but was not granted, for a log line. */
export function ungranted(imports: string[], permissions: Permissions): string[] {
  return CAPABILITIES.filter((c) =>
    c.logUngranted && !c.granted(permissions) && imports.includes(c.interfaces[0])
  ).map((c) => `${c.interfaces[0]} (grant "${c.grantKey}")`);
}
