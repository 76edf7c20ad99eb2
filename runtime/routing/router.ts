/**
 * Routes with TrailBase's brace syntax: `/users/{id}` binds one segment and
 * `/{*rest}` binds the rest of the path. A more specific route wins: a
 * literal segment over a parameter, a parameter over a wildcard.
 *
 * @module
 */

/** The nine HTTP methods a route may claim. */
export const METHODS = [
  "GET",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "CONNECT",
] as const;

/** An HTTP method a route may claim. */
export type Method = typeof METHODS[number];

/** A route's path or method that cannot be registered. */
export class RouteError extends Error {}

/** A request path that cannot be decoded: a malformed `%` escape (the client's error, a 400). */
export class PathError extends Error {}

/** A route registered in a {@link Router}. */
export interface Route<T> {
  method: Method;
  path: string;
  target: T;
  /** Parameter names in path order; a wildcard's name comes last. */
  paramNames: string[];
}

/** The outcome of matching a request. */
export type Match<T> =
  | { kind: "found"; route: Route<T>; params: [string, string][] }
  | { kind: "method-not-allowed"; allow: Method[] }
  | { kind: "not-found" };

interface Node<T> {
  literals: Map<string, Node<T>>;
  param?: Node<T>;
  wildcard?: Map<Method, Route<T>>;
  routes: Map<Method, Route<T>>;
}

const newNode = <T>(): Node<T> => ({ literals: new Map(), routes: new Map() });
const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const WILDCARD = /^\{\*([A-Za-z_][A-Za-z0-9_]*)\}$/;

type Segment =
  | { kind: "literal"; text: string }
  | { kind: "param" | "wildcard"; name: string };

/** Parses a route path; throws {@link RouteError} saying what is wrong. */
export function parsePath(path: string): Segment[] {
  if (!path.startsWith("/")) {
    throw new RouteError(`route path "${path}" must start with "/"`);
  }
  const parts = path.slice(1).split("/");
  return parts.map((part, i) => {
    const wildcard = WILDCARD.exec(part);
    if (wildcard) {
      if (i !== parts.length - 1) {
        throw new RouteError(`route path "${path}": {*${wildcard[1]}} must be the last segment`);
      }
      return { kind: "wildcard", name: wildcard[1] };
    }
    const param = PARAM.exec(part);
    if (param) return { kind: "param", name: param[1] };
    if (part.includes("{") || part.includes("}")) {
      throw new RouteError(`route path "${path}": bad segment "${part}" (use {name} or {*name})`);
    }
    return { kind: "literal", text: part };
  });
}

/** Parses a method name as a manifest spells it ("get", "POST"). */
export function parseMethod(method: string): Method {
  const upper = method.toUpperCase() as Method;
  if (!METHODS.includes(upper)) throw new RouteError(`unknown HTTP method "${method}"`);
  return upper;
}

/** Decodes one segment of a request path; throws {@link PathError} for a malformed escape. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new PathError(`malformed %-escape in the path segment "${segment}"`);
  }
}

/** A route table; `T` is what a route leads to. */
export class Router<T> {
  #root: Node<T> = newNode();

  /**
   * Registers a route. Throws {@link RouteError} when the path does not parse
   * or the same method and path shape is already taken (naming its owner
   * through `describe`).
   */
  add(method: Method, path: string, target: T, describe: (t: T) => string = String): void {
    const segments = parsePath(path);
    let node = this.#root;
    const paramNames: string[] = [];
    let table = node.routes;
    for (const segment of segments) {
      if (segment.kind === "literal") {
        let next = node.literals.get(segment.text);
        if (!next) node.literals.set(segment.text, next = newNode());
        node = next;
        table = node.routes;
      } else if (segment.kind === "param") {
        node = node.param ??= newNode();
        table = node.routes;
        paramNames.push(segment.name);
      } else {
        table = node.wildcard ??= new Map();
        paramNames.push(segment.name);
      }
    }
    const existing = table.get(method);
    if (existing) {
      throw new RouteError(
        `${method} ${path} is already registered by ${
          describe(existing.target)
        } (as ${existing.path})`,
      );
    }
    table.set(method, { method, path, target, paramNames });
  }

  /** Removes the route for `method` and `path` if `owned` says its target is the caller's. */
  remove(method: Method, path: string, owned: (target: T) => boolean): void {
    let node: Node<T> | undefined = this.#root;
    let table = node.routes;
    for (const segment of parsePath(path)) {
      if (segment.kind === "literal") node = node?.literals.get(segment.text);
      else if (segment.kind === "param") node = node?.param;
      else {
        table = node?.wildcard ?? new Map();
        node = undefined;
        continue;
      }
      table = node?.routes ?? new Map();
    }
    const route = table.get(method);
    if (route && route.path === path && owned(route.target)) table.delete(method);
  }

  /**
   * Finds the route for a request path (undecoded, as in a URL). Throws
   * {@link PathError} when any segment has a malformed escape, whether or not
   * a route would look at it.
   */
  match(method: string, pathname: string): Match<T> {
    const candidates: { routes: Map<Method, Route<T>>; values: string[] }[] = [];
    const parts = pathname.slice(1).split("/").map(decodeSegment);
    this.#collect(this.#root, parts, 0, [], candidates);
    const allow = new Set<Method>();
    for (const { routes, values } of candidates) {
      const route = routes.get(method as Method);
      if (route) {
        return {
          kind: "found",
          route,
          params: route.paramNames.map((name, i) => [name, values[i]]),
        };
      }
      for (const m of routes.keys()) allow.add(m);
    }
    return allow.size > 0
      ? { kind: "method-not-allowed", allow: [...allow] }
      : { kind: "not-found" };
  }

  /** Gathers every route table matching `parts` (decoded), most specific first. */
  #collect(
    node: Node<T>,
    parts: string[],
    index: number,
    values: string[],
    out: { routes: Map<Method, Route<T>>; values: string[] }[],
  ) {
    if (index === parts.length) {
      if (node.routes.size > 0) out.push({ routes: node.routes, values });
      return;
    }
    const part = parts[index];
    const literal = node.literals.get(part);
    if (literal) this.#collect(literal, parts, index + 1, values, out);
    if (node.param && part !== "") {
      this.#collect(node.param, parts, index + 1, [...values, part], out);
    }
    if (node.wildcard) {
      out.push({ routes: node.wildcard, values: [...values, parts.slice(index).join("/")] });
    }
  }
}
