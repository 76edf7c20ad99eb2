/**
 * The guest side of every capability, for the worker: each capability's
 * imports for one guest instance.
 *
 * @module
 */
import type { GuestContext, GuestSide, ImportObject } from "./sides.ts";
import { databaseImports } from "./database/worker.ts";
import { environmentImports } from "./environment/worker.ts";
import { filesystemImports } from "./filesystem/worker.ts";
import { keyValueImports } from "./keyvalue/worker.ts";
import { CAPABILITIES, type CapabilityName } from "./mod.ts";
import { outboundImports } from "./outbound/worker.ts";

/** Each capability's guest side. */
const GUEST_SIDES: Record<CapabilityName, GuestSide> = {
  database: databaseImports,
  keyvalue: keyValueImports,
  filesystem: filesystemImports,
  outbound: outboundImports,
  environment: environmentImports,
};

/** Every capability's imports for one guest instance. */
export function capabilityImports(context: GuestContext): ImportObject {
  return Object.assign({}, ...CAPABILITIES.map(({ name }) => GUEST_SIDES[name](context)));
}
