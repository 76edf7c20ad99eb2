/**
 * Path helpers (JSR's `@std/path` is not reachable here; `node:path` and
 * `node:url` do the work).
 *
 * @module
 */
export { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** A `file:` URL's path. */
export function fromFileUrl(url: string | URL): string {
  return fileURLToPath(url);
}

/** A path's `file:` URL. */
export function toFileUrl(path: string): URL {
  return pathToFileURL(path);
}
