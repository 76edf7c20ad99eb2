/**
 * `wasi:cli/environment` for guests: the granted variables with their values
 * (read by the server thread at load), no arguments, no working directory.
 *
 * @module
 */
import type { GuestSide } from "../sides.ts";

/** The `wasi:cli/environment` import object. */
export const environmentImports: GuestSide = ({ env }) => ({
  "wasi:cli/environment": {
    getEnvironment: () => env,
    getArguments: () => [],
    initialCwd: () => undefined,
  },
});
