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
  grants: (permissions) =>
    permissions.net.map(({ host, port, wildcard }) =>
      `${wildcard ? "*." : ""}${host}${port === undefined ? "" : `:${port}`}`
    ),
  interfaces: ["wasi:http/outgoing-handler"],
  logUngranted: true,
  // Waiting on a response suspends through `wasi:io/poll`, which every guest waits on.
  suspending: [],
} as const satisfies Capability;
