/**
 * What the routes of Pier's route tables lead to.
 *
 * @module
 */
import type { ComponentRecord } from "../component.ts";

/** Who sent a request to one of Pier's endpoints. */
export interface Remote {
  /** Whether the client is on this machine (a loopback address). */
  loopback: boolean;
}

/** One of Pier's own endpoints: gets the request, the route's decoded path parameters and its sender. */
export type PierHandler = (
  request: Request,
  params: [string, string][],
  remote: Remote,
) => Response | Promise<Response>;

/** What a component's route leads to: the only kind of target in the components' route table. */
export type ComponentTarget = { kind: "component"; component: ComponentRecord };

/** What one of Pier's own routes leads to (Pier's table, see `pier_paths.ts`). */
export type PierTarget = { kind: "pier"; handler: PierHandler };

/** What a route leads to: a component or one of Pier's own endpoints. */
export type RouteTarget = ComponentTarget | PierTarget;

/** Names a component route's owner in conflict messages (Pier's routes have their own table). */
export function describeTarget(target: ComponentTarget): string {
  return `component "${target.component.name}"`;
}
