/**
 * What the admin page shows of each component beyond `/_/health` (which
 * anyone may read): its file, when it failed, its restarts and last error,
 * the last new version a reload refused, and its grants against what its
 * code imports. Served as
 * `GET /_/admin/components` to the admin only. It names environment
 * variables, never their values.
 *
 * @module
 */
import type { ComponentRecord } from "../component.ts";
import { grantsAgainstImports, type GrantView } from "../capabilities/mod.ts";

/** One component as the admin sees it; times in ms since the epoch. */
export interface AdminComponent {
  name: string;
  /** Its `.wasm` file. */
  file: string;
  state: ComponentRecord["state"];
  error?: string;
  failedAt?: number;
  /** Workers replaced after a crash or a time-out. */
  restarts: number;
  lastError?: { at: number; message: string };
  /** The last new version a reload refused (the running one kept serving). */
  rejected?: ComponentRecord["rejected"];
  /** Null until both its manifest is read and its code compiled. */
  grants: GrantView[] | null;
}

/** The admin's view of `components`. */
export function adminComponents(components: readonly ComponentRecord[]): AdminComponent[] {
  return components.map((c) => ({
    name: c.name,
    file: c.file,
    state: c.state,
    error: c.error,
    failedAt: c.failedAt,
    restarts: c.metrics.restarts,
    lastError: c.metrics.lastError,
    rejected: c.rejected,
    grants: c.permissions && c.imports ? grantsAgainstImports(c.imports, c.permissions) : null,
  }));
}
