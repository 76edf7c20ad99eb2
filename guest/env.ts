/**
 * Environment variables: the ones the component's permission manifest lists
 * under `"env"`, with the values Pier's process has for them. Any other name
 * reads as `undefined`.
 *
 * ```ts
 * import { env } from "@pier/guest/env";
 *
 * const apiKey = env("WEATHER_API_KEY");
 * if (!apiKey) throw new Error("WEATHER_API_KEY is not set");
 * ```
 *
 * @module
 */
import { backend } from "./backend.ts";

/** The value of granted environment variable `name`, or `undefined`. */
export function env(name: string): string | undefined {
  return backend.env(name);
}
