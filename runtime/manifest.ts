/**
 * The manifest a component returns from `init-endpoint.get-manifest`.
 *
 * @module
 */

/** What Pier asks a component for. */
const SUBSYSTEMS = ["metadata", "http", "jobs", "sqlite_functions"];

/** The JSON argument of `get-manifest`. */
export function manifestArgs(version: string): string {
  return JSON.stringify({ version, subsystems: SUBSYSTEMS });
}

/** An HTTP route a component serves. */
export interface HttpHandler {
  method: string;
  path: string;
}

/** A scheduled job a component runs. */
export interface JobHandler {
  name: string;
  spec: string;
}

/** A scalar SQL function a component implements. */
export interface SqliteFunction {
  name: string;
  numArgs: number;
  flags: string[];
}

/** A component's parsed manifest. */
export interface Manifest {
  metadata: Record<string, unknown>;
  httpHandlers: HttpHandler[];
  jobHandlers: JobHandler[];
  sqliteFunctions: SqliteFunction[];
}

/** A manifest that does not have the documented shape. */
export class ManifestError extends Error {}

function list<T>(value: unknown, field: string, item: (v: Record<string, unknown>) => T): T[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new ManifestError(`"${field}" must be a list`);
  return value.map((v, i) => {
    if (typeof v !== "object" || v === null) {
      throw new ManifestError(`"${field}[${i}]" must be an object`);
    }
    return item(v as Record<string, unknown>);
  });
}

function text(value: unknown, field: string): string {
  if (typeof value !== "string") throw new ManifestError(`"${field}" must be a string`);
  return value;
}

/** Parses the manifest JSON; throws {@link ManifestError} naming the bad field. */
export function parseManifest(json: string): Manifest {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(json) ?? {};
  } catch (error) {
    throw new ManifestError(`manifest is not JSON: ${(error as Error).message}`);
  }
  return {
    metadata: (raw.metadata as Record<string, unknown>) ?? {},
    httpHandlers: list(raw.http_handlers, "http_handlers", (h) => ({
      method: text(h.method, "http_handlers[].method"),
      path: text(h.path, "http_handlers[].path"),
    })),
    jobHandlers: list(raw.job_handlers, "job_handlers", (j) => ({
      name: text(j.name, "job_handlers[].name"),
      spec: text(j.spec, "job_handlers[].spec"),
    })),
    sqliteFunctions: list(raw.sqlite_functions, "sqlite_functions", (f) => {
      const scalar = f.Scalar as Record<string, unknown> | undefined;
      if (!scalar) throw new ManifestError(`"sqlite_functions[]" must be {"Scalar": {...}}`);
      return {
        name: text(scalar.name, "sqlite_functions[].Scalar.name"),
        numArgs: Number(scalar.num_args),
        flags: Array.isArray(scalar.flags) ? scalar.flags.map(String) : [],
      };
    }),
  };
}
