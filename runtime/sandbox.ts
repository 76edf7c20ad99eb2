/**
 * The outer sandbox: the exact Deno permissions of the server process,
 * derived from its config. Nothing is granted that Pier does not use.
 *
 * @module
 */
import { dirname, fromFileUrl } from "./paths.ts";
import type { Config } from "./config.ts";

/** Deno flags the server process needs beyond permissions. */
export const UNSTABLE_FLAGS = ["--unstable-worker-options"];

/** Where jco's generator keeps the core modules it loads at run time. */
function transpilerDir(): string {
  return dirname(fromFileUrl(import.meta.resolve("@bytecodealliance/jco-transpile/component")));
}

/** Pier's own modules: worker entry points are loaded from here. */
const RUNTIME_DIR = dirname(fromFileUrl(import.meta.url));

/**
 * The `deno run` permission flags for serving `config`: read the components,
 * the data dir, Pier's and jco's own modules; write only the data dir; listen on the
 * configured address; no env, run, ffi or sys.
 */
export function serverPermissionFlags(config: Config): string[] {
  return [
    `--allow-read=${
      [RUNTIME_DIR, config.componentsDir, config.dataDir, transpilerDir()].join(",")
    }`,
    `--allow-write=${config.dataDir}`,
    `--allow-net=${config.hostname}:${config.port}`,
  ];
}
