/**
 * What Pier itself keeps in the data dir. Components may be granted other
 * directories there (`read`), never these.
 *
 * @module
 */

/** The SQLite database; SQLite keeps its `-wal`, `-shm` and `-journal` files beside it. */
export const DB_FILE = "main.db";

/** The compile cache: compiled components, their fingerprints and cached manifests. */
export const CACHE_DIR = "cache";

/** What Pier keeps under `name`, an entry directly in the data dir, if it is Pier's. */
export function pierEntry(name: string): string | undefined {
  if (name === CACHE_DIR) return "the compile cache";
  if (name === DB_FILE || name.startsWith(`${DB_FILE}-`)) return "the database";
  return undefined;
}

/**
 * Why a directory whose real path is `real` must not be granted, given the
 * data dir's real path `dataDir`; undefined when it may be.
 */
export function pierPathProblem(real: string, dataDir: string): string | undefined {
  if (real === dataDir || dataDir.startsWith(`${real}/`)) return "holds the data dir itself";
  if (!real.startsWith(`${dataDir}/`)) return undefined;
  const owner = pierEntry(real.slice(dataDir.length + 1).split("/")[0]);
  return owner && `is ${owner}, Pier's own`;
}
