/**
 * Pier's own paths: `/_/health`, `/_/jobs`, and `/_/metrics` and `/_/admin`
 * (set aside for endpoints to come), each with every path under it, a
 * trailing slash included, whatever the method. A request for one is
 * looked up in Pier's own route table alone, so no component route (not even
 * a catch-all such as `/{*rest}`) ever sees it, and a component route inside
 * them is refused at load. Other paths under `/_/` are free for components:
 * TrailBase's auth UI serves `/_/auth/...`.
 *
 * @module
 */
import { decodeSegment, type Method, parsePath, RouteError } from "./router.ts";

/** The second segment of each of Pier's paths (the first is `_`). */
const PIER_SPACES = ["health", "jobs", "metrics", "admin"];

/** Pier's paths as the messages name them. */
const NAMED = PIER_SPACES.map((space) => `/_/${space}`);

/**
 * Whether a request path (undecoded, as in a URL) is one of Pier's; decoded
 * as the router decodes it, so `/%5F/health` is Pier's too. Throws the
 * router's `PathError` for a malformed escape.
 */
export function isPierPath(pathname: string): boolean {
  // On the path of every request: only `_` or an escape of it can begin one of Pier's.
  if (pathname[1] !== "_" && pathname[1] !== "%") return false;
  const [first, second] = pathname.slice(1).split("/", 2);
  return second !== undefined && decodeSegment(first) === "_" &&
    PIER_SPACES.includes(decodeSegment(second));
}

/**
 * Throws {@link RouteError} when a component's route lies inside Pier's
 * paths. A route that only overlaps them (`/_/{*rest}`, `/{x}/health`) may
 * stay: it never receives a request for Pier's paths.
 */
export function assertComponentRoute(method: Method, path: string): void {
  const [first, second] = parsePath(path);
  if (
    first.kind === "literal" && first.text === "_" && second?.kind === "literal" &&
    PIER_SPACES.includes(second.text)
  ) {
    throw new RouteError(
      `${method} ${path} is inside Pier's own paths (${NAMED.join(", ")} and everything ` +
        `under them); other paths under /_/ are free`,
    );
  }
}
