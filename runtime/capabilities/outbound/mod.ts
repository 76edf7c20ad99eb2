/**
 * The outbound HTTP capability: `wasi:http/outgoing-handler`, granted per
 * host by the manifest's `"net"`. Requests leave from the component's worker
 * (`worker.ts`, `checked_fetch.ts`); in-band `__sqlite`/`__prefs` requests
 * are the database's.
 *
 * @module
 */
import type { Capability } from "../capability.ts";

/** The outbound HTTP capability. */
export const outbound = {
  name: "outbound",
  grantKey: "net",
  granted: (permissions) => permissions.net.length > 0,
  interfaces: ["wasi:http/outgoing-handler"],
  logUngranted: true,
  // Waiting on a response suspends through `wasi:io/poll`, which every guest waits on.
  suspending: [],
} as const satisfies Capability;
