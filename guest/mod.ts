/**
 * Pier's guest SDK: write a WebAssembly component as edge-style TypeScript
 * with Web-standard `Request` and `Response`.
 *
 * ```ts
 * import { defineComponent, json } from "@pier/guest";
 *
 * export default defineComponent({
 *   routes: {
 *     "GET /hello/{name}": (_req, { params }) => json({ hello: params.name }),
 *   },
 * });
 * ```
 *
 * `deno task build` turns such a file into `components/<name>.wasm`, or with
 * a `// @pier-engine native` line into `components/<name>.js` (V8 in a
 * process of its own). The capabilities live in their own modules:
 * `@pier/guest/db`, `@pier/guest/kv`, `@pier/guest/fetch`, `@pier/guest/fs`
 * and `@pier/guest/env`.
 *
 * @module
 */
import { backend } from "./backend.ts";
import type { ComponentCore, RawContext } from "./backend_types.ts";
import { HttpError, text } from "./response.ts";
import { fromWit, type Param, toWit, type Value, type WitValue } from "./values.ts";

export type { Param, Value } from "./values.ts";
export { escapeHtml, html, HttpError, json, Markup, markup, redirect, text } from "./response.ts";

/** HTTP methods a route may answer (`HEAD` requests reach the `GET` route). */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" | "TRACE" | "CONNECT";

/** A route key: a method, one space, and a path such as `/users/{id}` or `/files/{*rest}`. */
export type RouteKey = `${Method} /${string}`;

/** The parameter names in a route path: `{id}` binds `id`, `{*rest}` binds `rest`. */
export type ParamNames<Path extends string> = Path extends `${string}{${infer Name}}${infer Rest}`
  ? (Name extends `*${infer Wild}` ? Wild : Name) | ParamNames<Rest>
  : never;

/** The path parameters of route key `Key`, decoded. */
export type Params<Key extends string> = { [Name in ParamNames<Key>]: string };

/** The signed-in user, as the host passes it; `null` for anonymous requests. */
export interface User {
  id: string;
  email: string;
  username: string | null;
  csrfToken: string | null;
}

/** What a route handler gets besides the request. */
export interface RequestContext<P = Record<string, string>> {
  kind: "http";
  /** Path parameters of the matched route. */
  params: P;
  /** The request URL, parsed. */
  url: URL;
  /** The query parameters (`url.searchParams`). */
  query: URLSearchParams;
  /** The route path as registered, e.g. `/users/{id}`. */
  route: string;
  user: User | null;
}

/** Handles one route. Throw an {@link HttpError} to answer with an error status. */
export type RouteHandler<P = Record<string, string>> = (
  request: Request,
  context: RequestContext<P>,
) => Response | Promise<Response>;

/** What a job's `run` gets. */
export interface JobContext {
  kind: "job";
  /** The job's name. */
  name: string;
}

/** A scheduled job. */
export interface Job {
  /**
   * When to run: a cron expression with a seconds field (`sec min hour
   * day-of-month month day-of-week`, optionally a year), the five-field Unix
   * form, or one of `@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`.
   * The host checks it; a bad spec is refused with the reason in its log.
   */
  schedule: string;
  /** The job's work; throwing fails this run (the error goes to the log). */
  run: (context: JobContext) => void | Promise<void>;
}

/** A scalar SQL function the component adds to the database. */
export interface SqlFunction {
  /** The number of arguments SQL calls it with. */
  args: number;
  /** Same arguments, same result: lets SQLite use it in indexes. */
  deterministic?: boolean;
  /** Harmless if called from a schema (views, triggers, indexes). */
  innocuous?: boolean;
  /** Only callable from top-level SQL, never from a schema. */
  directOnly?: boolean;
  /** The function; it runs synchronously inside a SQL statement. */
  fn: (...args: Value[]) => Param;
}

/** What the host shows about the component. */
export interface Metadata {
  displayName?: string;
  description?: string;
  icon?: string;
  version?: string;
}

/** Everything a component declares. */
export interface ComponentDefinition<R> {
  metadata?: Metadata;
  /** Route key (`"GET /users/{id}"`) to handler; the handler's `params` are typed from the key. */
  routes?: {
    [Key in keyof R]: Key extends RouteKey ? RouteHandler<Params<Key>>
      : `route keys look like "GET /path/{param}"`;
  };
  /** Job name to job. */
  jobs?: Record<string, Job>;
  /** SQL function name to function. */
  sqlFunctions?: Record<string, SqlFunction>;
}

/**
 * A built component, as its engine runs it (the exports of Pier's world for
 * WebAssembly). Make it the default export of the component's entry file.
 */
export type Component = { readonly __pierComponent?: never };

const ROUTE_KEY = /^(GET|POST|PUT|PATCH|DELETE|OPTIONS|TRACE|CONNECT) (\/\S*)$/;
/** The answer to an error thrown by a handler or job. */
function errorResponse(error: unknown, where: string): Response {
  if (error instanceof HttpError) return error.toResponse();
  // SpiderMonkey's `stack` lists the frames only: log the error itself first.
  console.error(`${where} failed: ${error}${error instanceof Error ? `\n${error.stack}` : ""}`);
  return text("Internal Server Error", { status: 500 });
}

/**
 * Declares a component: its routes, jobs, SQL functions and metadata. The
 * result must be the entry file's default export.
 *
 * Route keys are checked here, so a malformed key fails the build.
 */
export function defineComponent<R>(definition: ComponentDefinition<R>): Component {
  const routes = new Map<string, RouteHandler>();
  const handlers: { method: string; path: string }[] = [];
  for (const [key, handler] of Object.entries(definition.routes ?? {})) {
    const match = ROUTE_KEY.exec(key);
    if (!match) {
      throw new Error(`route "${key}" must look like "GET /path/{param}" (method in capitals)`);
    }
    routes.set(key, handler as RouteHandler);
    handlers.push({ method: match[1].toLowerCase(), path: match[2] });
  }
  const jobs = definition.jobs ?? {};
  const functions = definition.sqlFunctions ?? {};

  const manifest = (subsystems: string[] | undefined) => {
    const wants = (name: string) => !subsystems || subsystems.includes(name);
    const meta = definition.metadata ?? {};
    return {
      metadata: wants("metadata")
        ? {
          display_name: meta.displayName ?? null,
          description: meta.description ?? null,
          icon: meta.icon ?? null,
          guest_runtime: "ecma_script",
          version: meta.version ?? null,
          admin_ui_path: null,
        }
        : null,
      http_handlers: wants("http") ? handlers : null,
      job_handlers: wants("jobs")
        ? Object.entries(jobs).map(([name, job]) => ({ name, spec: job.schedule }))
        : null,
      sqlite_functions: wants("sqlite_functions")
        ? Object.entries(functions).map(([name, f]) => ({
          Scalar: {
            name,
            num_args: f.args,
            flags: [
              "Utf8",
              ...(f.deterministic ? ["Deterministic"] : []),
              ...(f.innocuous ? ["Innocuous"] : []),
              ...(f.directOnly ? ["DirectOnly"] : []),
            ],
          },
        }))
        : null,
    };
  };

  const runJob = async (name: string): Promise<Response> => {
    const job = jobs[name];
    if (!job) return text(`no job named "${name}"`, { status: 404 });
    try {
      await job.run({ kind: "job", name });
      return text("ok");
    } catch (error) {
      return errorResponse(error, `job "${name}"`);
    }
  };

  const route = async (request: Request, raw: RawContext): Promise<Response> => {
    const key = `${request.method} ${raw.registered_path}`;
    const handler = routes.get(key);
    if (!handler) return text(`no route for ${key}`, { status: 404 });
    try {
      const user = raw.user && {
        id: raw.user.id,
        email: raw.user.email,
        username: raw.user.username ?? null,
        csrfToken: raw.user.csrf_token ?? null,
      };
      // Parsed when a handler first reads it: most never do, and a parse costs per request.
      let url: URL | undefined;
      const response = await handler(request, {
        kind: "http",
        params: Object.fromEntries(raw.path_params),
        get url() {
          return url ??= new URL(request.url);
        },
        get query() {
          return this.url.searchParams;
        },
        route: raw.registered_path,
        user,
      });
      if (!(response instanceof Response)) {
        throw new TypeError(`the handler of ${key} returned ${String(response)}, not a Response`);
      }
      return response;
    } catch (error) {
      return errorResponse(error, key);
    }
  };

  const core: ComponentCore = {
    handle: (request, raw) =>
      raw.kind === "Job" ? runJob(raw.registered_path) : route(request, raw),
    manifest(args) {
      const { subsystems } = JSON.parse(args || "{}") as { subsystems?: string[] };
      return JSON.stringify(manifest(subsystems));
    },
    sqlFunction(name, args: WitValue[]) {
      const f = functions[name];
      if (!f) throw { tag: "other", val: `no SQL function named "${name}"` };
      try {
        return toWit(f.fn(...args.map(fromWit)));
      } catch (error) {
        throw { tag: "other", val: `${name}: ${(error as Error)?.message ?? error}` };
      }
    },
  };
  return backend.exportComponent(core) as Component;
}
