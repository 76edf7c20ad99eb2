/**
 * Pier's Deno sandboxes, derived in one place: the exact permissions of the
 * server process (from its config and every component's grants), of each
 * database process, and of each component's worker (from its grants).
 * Nothing is granted that Pier does not use.
 *
 * @module
 */
import { dirname, fromFileUrl } from "./paths.ts";
import type { Config } from "./config.ts";
import { discover } from "./discovery.ts";
import { loadPermissions, type NetRule, type Permissions } from "./permissions.ts";

/**
 * Deno flags the server process needs beyond permissions: narrower workers,
 * and `Deno.serve`'s `reusePort` (several server processes on one port).
 */
export const UNSTABLE_FLAGS = ["--unstable-worker-options", "--unstable-net"];

/** Where jco's generator keeps the core modules it loads at run time. */
function transpilerDir(): string {
  return dirname(fromFileUrl(import.meta.resolve("@bytecodealliance/jco-transpile/component")));
}

/**
 * Runs a native component's process under a data limit (`RLIMIT_DATA`): V8's
 * heap cap does not count array buffers, this does (see `nativeProcessCommand`).
 */
const PRLIMIT = "/usr/bin/prlimit";

/**
 * What a Deno process maps writable before any guest code runs (measured on
 * Deno 2.9.6: it does not start under 560 MB), on top of which a native
 * component gets twice its `limits.memoryMb`: its V8 heap, its array buffers.
 */
const NATIVE_BASE_MB = 600;

/** Pier's own modules: worker entry points are loaded from here. */
const RUNTIME_DIR = dirname(fromFileUrl(import.meta.url));

/**
 * What Deno may reach of the hosts `rules` grant, with `also` besides: a
 * `*.domain` rule cannot be expressed to Deno, so with one the net is open
 * (Pier's own host check still applies).
 */
function netAccess(rules: NetRule[], also: string[] = []): true | string[] {
  if (rules.some((rule) => rule.wildcard)) return true;
  const hosts = rules.map(({ host, port }) => port === undefined ? host : `${host}:${port}`);
  return [...also, ...new Set(hosts)];
}

/** The `deno run` flags of `permissions`: a permission that is absent or false is not granted. */
function permissionFlags(permissions: Deno.PermissionOptionsObject): string[] {
  return Object.entries(permissions).flatMap(([name, value]) =>
    value === true
      ? [`--allow-${name}`]
      : Array.isArray(value)
      ? [`--allow-${name}=${value.join(",")}`]
      : []
  );
}

/**
 * The `deno run` permission flags for serving `config` with components
 * holding `grants`: read the components, the data dir, Pier's and jco's own
 * modules; write only the data dir; listen on the configured address and
 * reach the hosts the permission manifests name; read the env vars they name;
 * run only Deno itself (the database processes, see
 * `capabilities/database/process.ts`) and `prlimit` (native components, see
 * {@link nativeProcessCommand}); no ffi or sys.
 */
export function serverPermissionFlags(config: Config, grants: Permissions[]): string[] {
  const listen = `${config.hostname}:${config.port}`;
  // PIER_ADMIN_TOKEN enables the jobs API's write endpoints (runtime/scheduling/api.ts);
  // DENO_DIR is passed on to native components' processes (their Deno's module cache).
  const env = [...new Set(["PIER_ADMIN_TOKEN", "DENO_DIR", ...grants.flatMap((g) => g.env)])];
  return permissionFlags({
    read: [RUNTIME_DIR, config.componentsDir, config.dataDir, transpilerDir()],
    write: [config.dataDir],
    net: netAccess(grants.flatMap((g) => g.net), [listen]),
    env,
    run: [Deno.execPath(), PRLIMIT],
  });
}

/**
 * What `permissions` grant beyond this process's own Deno permissions (hosts,
 * environment variables), as `net: host` or `env: NAME`: a server process
 * launched before such a grant cannot serve it; only one launched with new
 * flags can.
 */
export function grantsBeyondProcess(permissions: Permissions): string[] {
  const granted = (descriptor: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(descriptor).state === "granted";
  const access = netAccess(permissions.net);
  const net = access === true
    ? (granted({ name: "net" }) ? [] : ["net: every host (a *.domain grant)"])
    : access.filter((host) => !granted({ name: "net", host })).map((host) => `net: ${host}`);
  const env = permissions.env.filter((variable) => !granted({ name: "env", variable }));
  return [...net, ...env.map((variable) => `env: ${variable}`)];
}

/** The `deno run` permission flags of a database process: its database's directory, nothing else. */
export function databaseProcessFlags(dir: string): string[] {
  return permissionFlags({ read: [dir], write: [dir] });
}

/**
 * The Deno permissions of a component's worker: read its compiled files
 * (`entry.dir`) and its granted directories, reach its granted hosts; never
 * write, env, run, ffi or sys.
 */
export function workerPermissions(
  entry: { dir: string },
  readDirs: string[],
  permissions: Permissions,
): Deno.PermissionOptionsObject {
  return {
    read: [entry.dir, ...readDirs],
    net: netAccess(permissions.net),
    write: false,
    env: false,
    run: false,
    ffi: false,
    sys: false,
    import: false,
  };
}

/**
 * The command that runs native component `module` (a `.js` file) in a process
 * of its own with `entry` as the runner: it may read its module and its
 * granted directories and its granted env vars (the only ones it is given),
 * nothing else: no network (its outbound requests go through the server
 * process, which applies Pier's host rules, and no socket can listen), no
 * write, run, ffi or sys, no remote or npm modules. Its V8 heap is capped at
 * `limits.memoryMb`, and its writable memory (heap and array buffers) by
 * `RLIMIT_DATA`. Its garbage is collected on its own thread: V8's parallel
 * collector threads competed with the server for the same cores (a hello
 * request cost the process 39-47 µs of CPU with it, 44-64 µs without, in
 * alternating runs).
 */
export function nativeProcessCommand(
  entry: string,
  module: string,
  readDirs: string[],
  permissions: Permissions,
): { command: string; args: string[] } {
  const { memoryMb } = permissions.limits;
  const dataBytes = (NATIVE_BASE_MB + 2 * memoryMb) * 1024 * 1024;
  return {
    command: PRLIMIT,
    args: [
      `--data=${dataBytes}`,
      "--",
      Deno.execPath(),
      "run",
      "--no-config",
      "--no-remote",
      "--no-npm",
      "--no-prompt",
      `--v8-flags=--max-old-space-size=${memoryMb},--single-threaded-gc`,
      ...permissionFlags({
        read: [module, ...readDirs],
        env: permissions.env.length ? permissions.env : false,
      }),
      entry,
    ],
  };
}

/** The grants of every component in `componentsDir` that has a valid permission manifest. */
export async function componentGrants(componentsDir: string): Promise<Permissions[]> {
  const { found } = await discover(componentsDir);
  const grants = await Promise.all(
    found.map(({ name }) => loadPermissions(componentsDir, name).catch(() => undefined)),
  );
  return grants.filter((g): g is Permissions => g !== undefined);
}
