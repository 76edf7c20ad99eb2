/**
 * The database capability: `trailbase:database/sqlite`, the in-band
 * `__sqlite` and `__prefs` calls (through outbound HTTP) and SQL functions,
 * granted by the manifest's `"db"`. Statements run in database processes of
 * their own (`store.ts`, `process.ts`, `child.ts`).
 *
 * @module
 */
import type { Capability } from "../capability.ts";
import type { WitValue } from "../values.ts";

/** The database's calls from the guest side to the server side. */
export interface DatabaseCalls {
  /** Begins transaction `id` (the guest instance's own number). */
  "db.begin": { args: [id: number]; result: void };
  "db.commit": { args: [id: number]; result: void };
  "db.rollback": { args: [id: number]; result: void };
  /** A statement in transaction `id`, or on its own (`null`): the rows changed. */
  "db.execute": { args: [id: number | null, sql: string, params: WitValue[]]; result: bigint };
  /** A query in transaction `id`, or on its own (`null`): its rows. */
  "db.query": { args: [id: number | null, sql: string, params: WitValue[]]; result: WitValue[][] };
  /** An in-band `__sqlite` or `__prefs` request: its URL and body; the JSON answer. */
  "db.inband": { args: [url: string, body: string]; result: string };
}

/** The database capability. */
export const database = {
  name: "database",
  grantKey: "db",
  grants: (permissions) => permissions.db === "none" ? [] : [permissions.db],
  interfaces: ["trailbase:database/sqlite"],
  logUngranted: true,
  suspending: [
    "[method]transaction.execute",
    "[method]transaction.query",
    "[method]transaction.commit",
    "[method]transaction.rollback",
    "tx-commit",
    "tx-rollback",
    "tx-execute",
    "tx-query",
  ].map((f) => `trailbase:database/sqlite@0.1.1#${f}`),
} as const satisfies Capability;
