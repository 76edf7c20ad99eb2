/**
 * The filesystem capability: `wasi:filesystem`, read-only preopens of the
 * directories the manifest's `"read"` grants (`worker.ts`).
 *
 * @module
 */
import type { Capability } from "../capability.ts";

/** The filesystem capability. */
export const filesystem = {
  name: "filesystem",
  grantKey: "read",
  grants: (permissions) => permissions.read,
  interfaces: ["wasi:filesystem/preopens", "wasi:filesystem/types"],
  logUngranted: true,
  suspending: [],
} as const satisfies Capability;

/** A granted directory: its host path and the name the guest sees. */
export interface Preopen {
  hostPath: string;
  guestPath: string;
}
