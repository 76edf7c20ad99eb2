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

/** One capability of a component: what its manifest grants against what its code imports. */
export interface GrantView {
  capability: CapabilityName;
  /** The manifest's key. */
  grantKey: string;
  /** The interface whose import means the component may use it. */
  interface: string;
  /** What is granted (see `Capability.grants`); empty: not granted. */
  granted: readonly string[];
  imported: boolean;
  /** False when toolchains import it whether the guest uses it or not. */
  importMeansUse: boolean;
}

/** Every capability's grants against `imports`, in {@link CAPABILITIES} order. */
export function grantsAgainstImports(imports: string[], permissions: Permissions): GrantView[] {
  return CAPABILITIES.map((c) => ({
    capability: c.name,
    grantKey: c.grantKey,
    interface: c.interfaces[0],
    granted: c.grants(permissions),
    imported: imports.includes(c.interfaces[0]),
    importMeansUse: c.logUngranted,
  }));
}

/** Capabilities a component imports but was not granted, for a log line. */
export function ungranted(imports: string[], permissions: Permissions): string[] {
  return grantsAgainstImports(imports, permissions)
    .filter((g) => g.importMeansUse && g.imported && g.granted.length === 0)
    .map((g) => `${g.interface} (grant "${g.grantKey}")`);
}
