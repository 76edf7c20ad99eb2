/**
 * Per-component permission manifests: `components/<name>.permissions.json`.
 * A missing manifest grants nothing; a malformed one keeps the component
 * from loading, with an error naming the file and the key.
 *
 * @module
 */
import { FileRefused, PERMISSIONS_FILE, readRegularFile } from "./files.ts";

import { pierEntry, pierPathProblem } from "./data_dir.ts";

/** A host a component may call: exact, or every subdomain with `*.`. */
export interface NetRule {
  host: string;
  /** Undefined: any port. */
  port?: number;
  /** `*.example.org`: subdomains of `host`, never `host` itself. */
  wildcard: boolean;
}

/** Resource limits of one component. */
export interface Limits {
  /** Cap on a guest instance's linear memory. */
  memoryMb: number;
  /** Wall-clock limit of one request or job run. */
  timeoutMs: number;
  /** Requests in flight at once; beyond it 503. */
  concurrency: number;
  /** Workers (threads) the component may have while busy. */
  workers: number;
  /** Outbound HTTP requests in flight at once, over all workers; more wait for a slot. */
  outbound: number;
}

/** Workers a component may have unless its manifest says: one per CPU core, at most 4. */
const DEFAULT_WORKERS = Math.max(1, Math.min(4, navigator.hardwareConcurrency ?? 1));

/** What a component may do. */
export interface Permissions {
  net: NetRule[];
  /** Directories relative to the data dir, visible read-only to the guest. */
  read: string[];
  env: string[];
  db: "none" | "read" | "write";
  kv: string[];
  limits: Limits;
}

/** Limits of a component whose manifest sets none. */
export const DEFAULT_LIMITS: Limits = {
  memoryMb: 64,
  timeoutMs: 30_000,
  concurrency: 64,
  workers: DEFAULT_WORKERS,
  outbound: 16,
};

/** The permissions of a component without a manifest. */
export const DENY_ALL: Permissions = {
  net: [],
  read: [],
  env: [],
  db: "none",
  kv: [],
  limits: DEFAULT_LIMITS,
};

/** A manifest that cannot be used; the message names the file and key. */
export class PermissionsError extends Error {}

const HOST = /^(\*\.)?([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:(\d{1,5}))?$/i;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses a `net` entry such as `api.example.com`, `localhost:9000` or `*.example.org:443`. */
export function parseNetRule(entry: string): NetRule | undefined {
  const match = HOST.exec(entry);
  if (!match) return undefined;
  const port = match[5] === undefined ? undefined : Number(match[5]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host: match[2].toLowerCase(), port, wildcard: match[1] !== undefined };
}

/** Validates a parsed manifest object; `file` names it in errors. */
export function parsePermissions(raw: unknown, file: string): Permissions {
  const fail = (key: string, problem: string): never => {
    throw new PermissionsError(`${file}: "${key}" ${problem}`);
  };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    fail("(top level)", "must be a JSON object");
  }
  const object = raw as Record<string, unknown>;
  const known = ["$schema", "net", "read", "env", "db", "kv", "limits"];
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) fail(key, `is not a known key (known: ${known.slice(1).join(", ")})`);
  }
  const strings = (key: string): string[] => {
    const value = object[key] ?? [];
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
      fail(key, "must be a list of strings");
    }
    return value as string[];
  };
  const net = strings("net").map((entry) =>
    parseNetRule(entry) ?? fail("net", `entry "${entry}" is not a host, host:port or *.domain`)
  );
  const read = strings("read").map((dir) => {
    const parts = dir.split("/");
    if (dir.startsWith("/") || parts.includes("..") || dir === "") {
      fail("read", `entry "${dir}" must be a relative path inside the data dir, without ".."`);
    }
    const normal = parts.filter((p) => p !== "." && p !== "").join("/");
    if (normal === "") {
      fail("read", `entry "${dir}" is the data dir itself, which holds Pier's database`);
    }
    const owner = pierEntry(normal.split("/")[0]);
    if (owner) fail("read", `entry "${dir}" is ${owner}, Pier's own`);
    return normal;
  });
  const env = strings("env").map((name) => {
    if (!ENV_NAME.test(name)) fail("env", `entry "${name}" is not a variable name`);
    // Pier's own settings (the admin token among them) are never a component's.
    if (name.toUpperCase().startsWith("PIER_")) {
      fail("env", `entry "${name}": PIER_* variables are Pier's own`);
    }
    return name;
  });
  const db = object.db ?? "none";
  if (db !== "none" && db !== "read" && db !== "write") {
    fail("db", 'must be "none", "read" or "write"');
  }
  const kv = strings("kv");
  const limitsRaw = object.limits ?? {};
  if (typeof limitsRaw !== "object" || limitsRaw === null || Array.isArray(limitsRaw)) {
    fail("limits", "must be an object");
  }
  const limits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(limitsRaw as Record<string, unknown>)) {
    if (!(key in DEFAULT_LIMITS)) {
      fail(`limits.${key}`, `is not a known limit (${Object.keys(DEFAULT_LIMITS).join(", ")})`);
    }
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      fail(`limits.${key}`, "must be a positive integer");
    }
    limits[key as keyof Limits] = value as number;
  }
  return { net, read, env, db: db as Permissions["db"], kv, limits };
}

/** The manifest path of a component. */
export function permissionsPath(componentsDir: string, name: string): string {
  return `${componentsDir}/${name}.permissions.json`;
}

/**
 * Reads a component's manifest; `undefined` when there is none (deny all).
 * Throws {@link PermissionsError} for invalid JSON or an invalid manifest.
 */
export async function loadPermissions(
  componentsDir: string,
  name: string,
): Promise<Permissions | undefined> {
  const file = permissionsPath(componentsDir, name);
  let text: string;
  try {
    text = new TextDecoder().decode((await readRegularFile(file, PERMISSIONS_FILE)).bytes);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    if (error instanceof FileRefused) throw new PermissionsError(error.message);
    throw new PermissionsError(`${file}: cannot be read: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new PermissionsError(`${file}: invalid JSON: ${(error as Error).message}`);
  }
  return parsePermissions(raw, file);
}

/**
 * The host directories of `read` grants (of the manifest `file`): each one's
 * real path, or while it does not exist its path under the data dir's real
 * path. A grant that reaches, through links, the data dir, a directory
 * holding it, or Pier's own files throws {@link PermissionsError}.
 */
export async function readRoots(read: string[], dataDir: string, file: string): Promise<string[]> {
  const data = await Deno.realPath(dataDir);
  return await Promise.all(read.map(async (dir) => {
    const path = `${data}/${dir}`;
    const real = await Deno.realPath(path).catch(() => path);
    const problem = pierPathProblem(real, data);
    if (problem) {
      throw new PermissionsError(`${file}: "read" entry "${dir}" ${problem} (it leads to ${real})`);
    }
    return real;
  }));
}

/** Does `rule` allow a request to `host:port`? Private addresses never match a wildcard. */
export function allowsHost(rules: NetRule[], host: string, port: number): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, "");
  return rules.some((rule) => {
    if (rule.port !== undefined && rule.port !== port) return false;
    const ruleHost = rule.host.replace(/^\[|\]$/g, "");
    if (!rule.wildcard) return ruleHost === name;
    return name.endsWith(`.${ruleHost}`) && !isPrivateAddress(name);
  });
}

/**
 * Loopback, private and link-local addresses (and `localhost`): reachable only
 * when a manifest lists them exactly.
 */
export function isPrivateAddress(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  const v4 = name.match(/^(\d+)\.(\d+)\.(\d+)\.(\d+)$/)?.slice(1).map(Number);
  if (v4) {
    const [a, b] = v4;
    return a === 127 || a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) || (a === 169 && b === 254);
  }
  if (name.includes(":")) {
    return name === "::1" || name === "::" || name.startsWith("fe80:") ||
      name.startsWith("fc") || name.startsWith("fd") || name.startsWith("::ffff:");
  }
  return false;
}
