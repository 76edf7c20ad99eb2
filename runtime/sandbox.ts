/**
 * The outer sandbox: the exact Deno permissions of the server process,
 * derived from its config. Nothing is granted that Pier does not use.
 *
 * @module
 */
import { dirname, fromFileUrl } from "./paths.ts";
import type { Config } from "./config.ts";
import { discover } from "./discovery.ts";
import { loadPermissions, type Permissions } from "./permissions.ts";

/** Deno flags the server process needs beyond permissions. */
export const UNSTABLE_FLAGS = ["--unstable-worker-options"];

/** Where jco's generator keeps the core modules it loads at run time. */
function transpilerDir(): string {
  return dirname(fromFileUrl(import.meta.resolve("@bytecodealliance/jco-transpile/component")));
}

/** Pier's own modules: worker entry points are loaded from here. */
const RUNTIME_DIR = dirname(fromFileUrl(import.meta.url));

/**
 * The `deno run` permission flags for serving `config` with components
 * holding `grants`: read the components, the data dir, Pier's and jco's own
 * modules; write only the data dir; listen on the configured address and
 * reach the hosts the manifests name; read the env vars they name; run
 * only Deno itself (the database processes, see
 * `capabilities/database/process.ts`); no ffi or sys. A `*.domain` grant cannot be expressed to Deno, so it opens
 * outbound net to the server process (each worker and Pier's host check still
 * apply).
 */
export function serverPermissionFlags(config: Config, grants: Permissions[]): string[] {
  const rules = grants.flatMap((g) => g.net);
  const hosts = rules.map(({ host, port }) => port === undefined ? host : `${host}:${port}`);
  const net = rules.some((rule) => rule.wildcard)
    ? "--allow-net"
    : `--allow-net=${[`${config.hostname}:${config.port}`, ...new Set(hosts)].join(",")}`;
  // PIER_ADMIN_TOKEN enables the jobs API's write endpoints (runtime/scheduling/api.ts).
  const env = [...new Set(["PIER_ADMIN_TOKEN", ...grants.flatMap((g) => g.env)])];
  return [
    `--allow-read=${
      [RUNTIME_DIR, config.componentsDir, config.dataDir, transpilerDir()].join(",")
    }`,
    `--allow-write=${config.dataDir}`,
    net,
    `--allow-env=${env.join(",")}`,
    `--allow-run=${Deno.execPath()}`,
  ];
}

/** The grants of every component in `componentsDir` that has a valid manifest. */
export async function componentGrants(componentsDir: string): Promise<Permissions[]> {
  const { found } = await discover(componentsDir);
  const grants = await Promise.all(
    found.map(({ name }) => loadPermissions(componentsDir, name).catch(() => undefined)),
  );
  return grants.filter((g): g is Permissions => g !== undefined);
}
