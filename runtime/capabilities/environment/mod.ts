/**
 * The environment capability: `wasi:cli/environment`, the variables the
 * manifest's `"env"` grants, with their values (`worker.ts`).
 *
 * @module
 */
import type { Capability } from "../capability.ts";

/** The environment capability. */
export const environment = {
  name: "environment",
  grantKey: "env",
  // The variables' names only: their values are never shown.
  grants: (permissions) => permissions.env,
  interfaces: ["wasi:cli/environment"],
  // Most toolchains import `wasi:cli/environment` whether the guest reads it or not.
  logUngranted: false,
  suspending: [],
} as const satisfies Capability;
