/**
 * Pier's jobs API under `/_/jobs`:
 *
 * - `GET /_/jobs`: every job with its spec, next run, last run and outcome,
 *   plus the manifest jobs that were refused.
 * - `GET /_/jobs/{component}/{job}[?limit=N]`: the job and its newest runs.
 * - `POST /_/jobs/{component}/{job}/run`: runs the job now and answers with
 *   the recorded run. It needs `Authorization: Bearer <PIER_ADMIN_TOKEN>`
 *   or the admin page's login cookie from a same-site request (see
 *   `admin/auth.ts`); without a configured token it is refused.
 *
 * @module
 */
import type { PierHandler } from "../routing/targets.ts";
import type { Method } from "../routing/router.ts";
import type { ComponentJobs } from "./jobs.ts";
import { refusal } from "../admin/auth.ts";

/** One of Pier's own routes. */
export interface PierRoute {
  method: Method;
  path: string;
  handler: PierHandler;
}

/** How many runs `GET /_/jobs/{component}/{job}` shows unless `?limit=` says otherwise. */
const DEFAULT_RUNS = 20;

function problem(status: number, message: string, headers: HeadersInit = {}): Response {
  return Response.json({ error: message }, { status, headers });
}

/** The `{component}` and `{job}` parameters of a `/_/jobs/...` route (the router decoded them). */
function jobOf(params: [string, string][]): [string, string] {
  const { component, job } = Object.fromEntries(params);
  return [component, job];
}

/** Refuses a write unless it carries the admin token; undefined when it may go on. */
function authorize(request: Request, adminToken: string | undefined): Response | undefined {
  switch (refusal(request, adminToken, true)) {
    case "no-token-set":
      return problem(403, "write endpoints are disabled: set PIER_ADMIN_TOKEN to enable them");
    case "unauthenticated":
      return problem(401, "a valid admin token is required (Authorization: Bearer <token>)", {
        "www-authenticate": 'Bearer realm="pier"',
      });
    case "cross-site":
      return problem(403, "a cross-site request may not use the admin cookie");
  }
}

/** The routes of the jobs API over `jobs`; `adminToken` unset or empty refuses every write. */
export function jobRoutes(jobs: ComponentJobs, adminToken: string | undefined): PierRoute[] {
  return [
    {
      method: "GET",
      path: "/_/jobs",
      handler: () =>
        Response.json({
          timezone: jobs.scheduler.timezone,
          jobs: jobs.list(),
          refused: jobs.refused(),
        }),
    },
    {
      method: "GET",
      path: "/_/jobs/{component}/{job}",
      handler: (request, params) => {
        const [component, name] = jobOf(params);
        const status = jobs.get(component, name);
        if (!status) return problem(404, `no job "${name}" in component "${component}"`);
        const limitText = new URL(request.url).searchParams.get("limit");
        const limit = limitText === null ? DEFAULT_RUNS : Number(limitText);
        if (!Number.isInteger(limit) || limit < 1) {
          return problem(400, `limit must be a positive integer, not "${limitText}"`);
        }
        return Response.json({ ...status, runs: jobs.store.history(component, name, limit) });
      },
    },
    {
      method: "POST",
      path: "/_/jobs/{component}/{job}/run",
      handler: async (request, params) => {
        const refusal = authorize(request, adminToken);
        if (refusal) return refusal;
        const [component, name] = jobOf(params);
        const result = await jobs.runNow(component, name);
        switch (result.kind) {
          case "unknown":
            return problem(404, `no job "${name}" in component "${component}"`);
          case "busy":
            return problem(409, `job "${name}" of "${component}" is already running`);
          case "done":
            return Response.json(result.run);
        }
      },
    },
  ];
}
