/**
 * The HTTP front: routes each request to a component (or to Pier's own
 * endpoints under `/_/`), adds the `__context` header, and turns guest
 * failures into short error responses.
 *
 * @module
 */
import { bodySize, GuestError } from "./isolation/component_host.ts";
import { log } from "./log.ts";
import type { ComponentRecord } from "./component.ts";
import type { ComponentTarget, PierTarget, RouteTarget } from "./routing/targets.ts";
import { isPierPath } from "./routing/pier_paths.ts";
import { isLoopback } from "./admin/auth.ts";
import { type Match, PathError, type Router } from "./routing/router.ts";

/** Largest request body Pier passes to a component. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

const CONTEXT_HEADER = "__context";
const REQUEST_ID_HEADER = "x-request-id";

/** A client's request id is kept if it is 1-128 of these characters; else Pier makes one. */
const VALID_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The request's id: the client's `x-request-id` when valid, a new UUID otherwise. */
function requestId(request: Request): string {
  const given = request.headers.get(REQUEST_ID_HEADER);
  return given !== null && VALID_REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

function errorResponse(status: number, message: string, headers: HeadersInit = {}): Response {
  return new Response(`${message}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
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
 * Counts a request to a component, whose `response` is on its way, in the
 * component's metrics: in flight until its head, then by route, status class
 * and latency.
 */
async function counted(
  component: ComponentRecord,
  method: string,
  registeredPath: string,
  response: Promise<Response>,
): Promise<Response> {
  const { metrics } = component;
  const started = performance.now();
  metrics.inFlight++;
  let status = 500;
  try {
    const head = await response;
    status = head.status;
    return head;
  } finally {
    metrics.inFlight--;
    metrics.request(method, registeredPath, status, performance.now() - started);
  }
}

/** Sends a request through its component, with its id in `x-request-id`. */
async function dispatch(
  request: Request,
  id: string,
  method: string,
  component: ComponentRecord,
  registeredPath: string,
  params: [string, string][],
): Promise<Response> {
  if (component.state === "failed") {
    // It failed to start from its cached manifest: until Pier restarts, it stays down.
    return errorResponse(503, `${component.name}: ${component.error}`);
  }
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
  try {
    // The body is read once the component admits the request (see `limits.concurrency`).
    const body = request.body ? () => readBody(request) : null;
    return await component.host!.fetch({ method, url: request.url, headers, body });
  } catch (error) {
    if (error instanceof GuestError) {
      component.metrics.guestError(error.status);
      const headers: HeadersInit = error.status === 503 ? { "retry-after": "1" } : {};
      return errorResponse(error.status, `${component.name}: ${error.message}`, headers);
    }
    log.error(`${component.name}: ${(error as Error).stack ?? error}`);
    return errorResponse(500, `${component.name}: internal error`);
  }
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
 * head is ready.
 */
export function createHandler(
  tables: RouteTables,
  { requestLog }: { requestLog: boolean },
): (request: Request, info: Deno.ServeHandlerInfo) => Promise<Response> {
  const handle = route(tables);
  return async (request, info) => {
    const started = performance.now();
    const id = requestId(request);
    const served: Served = { component: "-", route: "-" };
    const response = await handle(request, id, served, info.remoteAddr);
    response.headers.set(REQUEST_ID_HEADER, id);
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

/** Routes a request to Pier's endpoints or a component, noting in `served` which. */
function route(
  tables: RouteTables,
): (request: Request, id: string, served: Served, remote: Deno.Addr) => Promise<Response> {
  return async (request, id, served, remote) => {
    const { pathname } = new URL(request.url);
    let found;
    try {
      found = lookup(tables, request.method, pathname);
    } catch (error) {
      if (error instanceof PathError) return errorResponse(400, error.message);
      throw error;
    }
    const { match, headFallback } = found;
    if (match.kind === "not-found") return errorResponse(404, "not found");
    if (match.kind === "method-not-allowed") {
      const allow = match.allow.includes("GET") && !match.allow.includes("HEAD")
        ? [...match.allow, "HEAD"]
        : match.allow;
      return errorResponse(405, "method not allowed", { allow: allow.join(", ") });
    }
    const { route, params } = match;
    served.route = route.path;
    served.component = route.target.kind === "pier" ? "pier" : route.target.component.name;
    const response = route.target.kind === "pier"
      ? await route.target.handler(request, params, { loopback: isLoopback(remote) })
      : await counted(
        route.target.component,
        route.method,
        route.path,
        dispatch(request, id, route.method, route.target.component, route.path, params),
      );
    if (!headFallback) return response;
    await response.body?.cancel();
    return new Response(null, { status: response.status, headers: response.headers });
  };
}
