/**
 * The HTTP front: routes each request to a component (or to Pier's own
 * endpoints under `/_/`), adds the `__context` header, and turns guest
 * failures into short error responses.
 *
 * @module
 */
import { bodySize, type ComponentRequest, GuestError } from "./isolation/component_host.ts";
import { REQUEST_ID_HEADER } from "./isolation/engine.ts";
import { log } from "./log.ts";
import type { ComponentRecord } from "./component.ts";
import type { ComponentTarget, PierTarget, RouteTarget } from "./routing/targets.ts";
import { isPierPath } from "./routing/pier_paths.ts";
import { isLoopback } from "./admin/auth.ts";
import { type Match, PathError, type Router } from "./routing/router.ts";

/** Largest request body Pier passes to a component. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

const CONTEXT_HEADER = "__context";

/** A client's request id is kept if it is 1-128 of these characters; else Pier makes one. */
const VALID_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * A path the URL parser would return as it is: no dot segments (no `.`), no
 * escapes (`%2e` is a dot), nothing it would encode or treat as a separator.
 */
const PLAIN_PATH = /^\/[\w\-~!$&'()*+,;=:@/]*$/;

/**
 * The last origin whose URL began with it as the parser writes it (a `Host`
 * is the same on nearly every request): a URL that begins with it and a `/`
 * has its path right after, as the parser would find it. Any other authority
 * (`a?b`, `a\b`, `u@a`, an uppercase host, one the parser refuses) goes to
 * the parser.
 */
let plainOrigin = "";

/** The path of a request's URL, as `new URL(url).pathname` gives it (without parsing a plain one). */
export function pathOf(url: string): string {
  const start = plainOrigin.length;
  if (start > 0 && url.startsWith(plainOrigin) && url.charCodeAt(start) === 0x2f) {
    let end = url.indexOf("?", start);
    if (end < 0) end = url.length;
    const fragment = url.indexOf("#", start);
    if (fragment >= 0 && fragment < end) end = fragment;
    const path = url.slice(start, end);
    if (PLAIN_PATH.test(path)) return path;
  }
  const parsed = new URL(url);
  if (url.startsWith(`${parsed.origin}/`)) plainOrigin = parsed.origin;
  return parsed.pathname;
}

/** The request's id: the client's `x-request-id` when valid, a new UUID otherwise. */
function requestId(request: Request): string {
  const given = request.headers.get(REQUEST_ID_HEADER);
  return given !== null && VALID_REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

/** A short plain-text error response; with the request's `id` when it is known here. */
function errorResponse(
  status: number,
  message: string,
  headers: Record<string, string> = {},
  id?: string,
): Response {
  const withId = id === undefined ? headers : { ...headers, [REQUEST_ID_HEADER]: id };
  return new Response(`${message}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...withId },
  });
}

const tooLarge = () => new GuestError(`request body larger than ${MAX_BODY_BYTES} bytes`, 413);

/** Reads a body up to {@link MAX_BODY_BYTES}; throws a 413 {@link GuestError} when it is larger. */
async function readBody(request: Request): Promise<Uint8Array | null> {
  if (!request.body) return null;
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  // The body's buffer is transferred to the worker: never hand over a view of a buffer that
  // Deno's HTTP stack may share.
  const only = chunks[0];
  if (chunks.length === 1 && only.byteOffset === 0 && only.byteLength === only.buffer.byteLength) {
    return only;
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/**
 * The request as its component gets it: as `method` (a `HEAD` request is
 * its route's `GET`), with `x-request-id` and `__context` among its headers.
 */
function componentRequest(
  request: Request,
  id: string,
  method: string,
  registeredPath: string,
  params: [string, string][],
): ComponentRequest {
  const headers: [string, string][] = [];
  request.headers.forEach((value, name) => {
    if (name !== CONTEXT_HEADER && name !== REQUEST_ID_HEADER) headers.push([name, value]);
  });
  headers.push([REQUEST_ID_HEADER, id]);
  headers.push([
    CONTEXT_HEADER,
    JSON.stringify({
      kind: "Http",
      registered_path: registeredPath,
      path_params: params,
      user: null,
    }),
  ]);
  // The body is read once the component admits the request (see `limits.concurrency`).
  const body = request.body ? () => readBody(request) : null;
  return { method, url: request.url, headers, body, requestId: id };
}

/** The response to a request its component could not answer. */
function failure(component: ComponentRecord, error: unknown, id: string): Response {
  if (error instanceof GuestError) {
    component.metrics.guestError(error.status);
    const headers: Record<string, string> = error.status === 503 ? { "retry-after": "1" } : {};
    return errorResponse(error.status, `${component.name}: ${error.message}`, headers, id);
  }
  log.error(`${component.name}: ${(error as Error).stack ?? error}`);
  return errorResponse(500, `${component.name}: internal error`, {}, id);
}

/**
 * Sends a request through its component, with its id in `x-request-id`,
 * and counts it in the component's metrics: in flight until its response
 * head, then by route, status class and latency. One `async` frame: each
 * costs the server thread a promise and microtasks per request.
 */
async function dispatch(
  request: Request,
  id: string,
  component: ComponentRecord,
  method: string,
  registeredPath: string,
  params: [string, string][],
): Promise<Response> {
  const { metrics } = component;
  const started = performance.now();
  metrics.inFlight++;
  let response;
  try {
    response = component.state === "failed"
      // It failed to start from its cached manifest: until Pier restarts, it stays down.
      ? errorResponse(503, `${component.name}: ${component.error}`, {}, id)
      : await component.host!.fetch(componentRequest(request, id, method, registeredPath, params));
  } catch (error) {
    response = failure(component, error, id);
  } finally {
    metrics.inFlight--;
  }
  metrics.request(method, registeredPath, response.status, performance.now() - started);
  return response;
}

/**
 * Finds the route of a request: in Pier's table for Pier's own paths (see
 * `routing/pier_paths.ts`), in the components' table otherwise. `HEAD` falls
 * back to the `GET` route.
 */
function lookup(
  tables: RouteTables,
  method: string,
  pathname: string,
): { match: Match<RouteTarget>; headFallback: boolean } {
  const routes = isPierPath(pathname) ? tables.pier : tables.components;
  const match = routes.match(method, pathname);
  if (method !== "HEAD" || match.kind === "found") return { match, headFallback: false };
  return { match: routes.match("GET", pathname), headFallback: true };
}

/** The route tables a request is matched in. */
export interface RouteTables {
  /** Pier's own endpoints: the only table consulted for Pier's paths. */
  pier: Router<PierTarget>;
  components: Router<ComponentTarget>;
}

/**
 * Builds the request handler over the route tables: every request gets an
 * id (see {@link requestId}), returned in its response's `x-request-id`,
 * and, unless `requestLog` is false, a line in the log once its response
 * head is ready. While `closing()` says so (Pier is shutting down), each
 * response closes its connection.
 */
export function createHandler(
  tables: RouteTables,
  { requestLog, closing }: { requestLog: boolean; closing: () => boolean },
): (request: Request, info: Deno.ServeHandlerInfo) => Promise<Response> {
  return async (request, info) => {
    const started = performance.now();
    const id = requestId(request);
    const served: Served = { component: "-", route: "-" };
    const response = await route(tables, request, id, served, info.remoteAddr);
    if (closing()) response.headers.set("connection", "close");
    if (!requestLog) return response;
    log.request({
      id,
      component: served.component,
      method: request.method,
      route: served.route,
      status: response.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      bytes: bodySize(response) ?? response.headers.get("content-length") ?? "-",
    });
    return response;
  };
}

/** What served a request, for its log line: a component (or `pier`) and its route. */
interface Served {
  component: string;
  route: string;
}

/**
 * Routes a request to Pier's endpoints or a component, noting in `served`
 * which; the response carries the request's id. Not `async`: a component's
 * request awaits only its answer (in {@link dispatch}).
 */
function route(
  tables: RouteTables,
  request: Request,
  id: string,
  served: Served,
  remote: Deno.Addr,
): Response | Promise<Response> {
  const pathname = pathOf(request.url);
  let found;
  try {
    found = lookup(tables, request.method, pathname);
  } catch (error) {
    if (error instanceof PathError) return errorResponse(400, error.message, {}, id);
    throw error;
  }
  const { match, headFallback } = found;
  if (match.kind === "not-found") return errorResponse(404, "not found", {}, id);
  if (match.kind === "method-not-allowed") {
    const allow = match.allow.includes("GET") && !match.allow.includes("HEAD")
      ? [...match.allow, "HEAD"]
      : match.allow;
    return errorResponse(405, "method not allowed", { allow: allow.join(", ") }, id);
  }
  const { route, params } = match;
  served.route = route.path;
  const { target } = route;
  let response;
  if (target.kind === "pier") {
    served.component = "pier";
    response = withId(target.handler(request, params, { loopback: isLoopback(remote) }), id);
  } else {
    const { component } = target;
    served.component = component.name;
    response = dispatch(request, id, component, route.method, route.path, params);
    if (!component.host?.answersWithId) response = withId(response, id);
  }
  return headFallback ? withoutBody(response) : response;
}

/**
 * `response` with `x-request-id`, for a response that does not have it yet:
 * reading a response's headers drops Deno's fast path for it, so responses
 * made on the request's path carry the id from the start.
 */
async function withId(response: Response | Promise<Response>, id: string): Promise<Response> {
  const made = await response;
  made.headers.set(REQUEST_ID_HEADER, id);
  return made;
}

/** A `HEAD` request's answer from its `GET` route's response: its head alone. */
async function withoutBody(response: Response | Promise<Response>): Promise<Response> {
  const whole = await response;
  await whole.body?.cancel();
  return new Response(null, { status: whole.status, headers: whole.headers });
}
