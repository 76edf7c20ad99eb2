/**
 * What the routes of Pier's route tables lead to.
 *
 * @module
 */
import type { ComponentRecord } from "../component.ts";

/** One of Pier's own endpoints: gets the request and the route's decoded path parameters. */
export type PierHandler = (
  request: Request,
  params: [string, string][],
) => Response | Promise<Response>;

/** What a route leads to: a component or one of Pier's own endpoints. */
export type RouteTarget =
  | { kind: "component"; component: ComponentRecord }
  | { kind: "pier"; handler: PierHandler };

/** Names a route's owner in conflict messages. */
export function describeTarget(target: RouteTarget): string {
  return target.kind === "pier" ? "Pier" : `component "${target.component.name}"`;
}
