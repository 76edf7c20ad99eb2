/**
 * Pier's admin page under `/_/admin`: one HTML page with a small inline
 * script (no CDN, no build step) that reads `/_/health` and `/_/jobs` and
 * posts "run now" to the jobs API with the login cookie.
 *
 * - `GET /_/admin`: the page, for a holder of the admin token (cookie or
 *   bearer), or with no token set for a loopback client; others are sent to
 *   the login form.
 * - `GET /_/admin/load`: the components' recent load (see `load.ts`), for
 *   the same clients.
 * - `GET /_/admin/login`, `POST /_/admin/login`: the form; the right token
 *   sets the HttpOnly, SameSite=Strict cookie.
 *
 * @module
 */
import type { PierRoute } from "../scheduling/api.ts";
import type { Remote } from "../routing/targets.ts";
import type { RecentLoad } from "./load.ts";
import { crossSite, loginCookie, refusal, sameSecret } from "./auth.ts";

const HTML = { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" };
const LOGIN = "/_/admin/login";

function loginPage(status: number, note: string): Response {
  return new Response(
    `<!doctype html><html><head><meta charset="utf-8"><title>Pier admin: log in</title>` +
      `<style>${STYLE}</style></head><body><h1>Pier admin</h1>` +
      (note ? `<p class="error">${note}</p>` : "") +
      `<form method="post" action="${LOGIN}"><label>Admin token ` +
      `<input type="password" name="token" autofocus required></label> ` +
      `<button type="submit">Log in</button></form></body></html>`,
    { status, headers: HTML },
  );
}

/**
 * The routes of the admin page, whose charts show `load`; `adminToken`
 * unset or empty opens the page to loopback clients only.
 */
export function adminRoutes(adminToken: string | undefined, load: RecentLoad): PierRoute[] {
  const allowed = (request: Request, remote: Remote) =>
    adminToken ? refusal(request, adminToken, false) === undefined : remote.loopback;
  return [
    {
      method: "GET",
      path: "/_/admin",
      handler: (request, _params, remote) => {
        if (allowed(request, remote)) return new Response(PAGE, { headers: HTML });
        return new Response(null, { status: 303, headers: { location: LOGIN } });
      },
    },
    {
      method: "GET",
      path: "/_/admin/load",
      handler: (request, _params, remote) =>
        allowed(request, remote)
          ? Response.json(load)
          : Response.json({ error: "log in at /_/admin/login" }, { status: 401 }),
    },
    {
      method: "GET",
      path: LOGIN,
      handler: () =>
        loginPage(
          200,
          adminToken ? "" : "PIER_ADMIN_TOKEN is not set: the page answers loopback clients only.",
        ),
    },
    {
      method: "POST",
      path: LOGIN,
      handler: async (request) => {
        if (crossSite(request)) return loginPage(403, "A cross-site login is refused.");
        if (!adminToken) return loginPage(403, "PIER_ADMIN_TOKEN is not set: log-in is disabled.");
        const form = await request.formData().catch(() => undefined);
        const token = form?.get("token");
        if (typeof token !== "string" || !sameSecret(token, adminToken)) {
          return loginPage(401, "Wrong token.");
        }
        return new Response(null, {
          status: 303,
          headers: { location: "/_/admin", "set-cookie": loginCookie(token) },
        });
      },
    },
  ];
}

const STYLE = `body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top;white-space:pre-line}th{background:#e8eef7}.error{color:#b00020;font-weight:600}
.failed{background:#fde8ea}.warn{color:#8a5a00}button{cursor:pointer}`;

/** Builds the tables from `/_/health` and `/_/jobs` with DOM calls (never innerHTML: names are data). */
const SCRIPT = `
const $ = (tag, text, cls) => { const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const row = (cells, cls) => { const tr = $("tr", undefined, cls);
  for (const c of cells) { const td = $("td"); typeof c === "object" ? td.append(c) : td.textContent = c;
    tr.append(td); } return tr; };
const table = (id, head, rows) => { const t = document.getElementById(id); t.replaceChildren();
  const tr = $("tr"); for (const h of head) tr.append($("th", h)); t.append(tr); t.append(...rows); };
const path = (c, j) => "/_/jobs/" + encodeURIComponent(c) + "/" + encodeURIComponent(j);
async function runNow(job, button) {
  button.disabled = true;
  const r = await fetch(path(job.component, job.name) + "/run", { method: "POST" });
  const body = await r.json().catch(() => ({}));
  document.getElementById("message").textContent = r.ok
    ? "ran " + job.component + "/" + job.name + ": " + body.outcome
    : "run now refused: " + (body.error ?? r.status);
  await refresh();
}
const SVG = "http://www.w3.org/2000/svg";
/** A small line chart of \`values\` (nulls skipped) with its last value as text. */
function chart(values, unit) {
  const box = $("div"); const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", "120"); svg.setAttribute("height", "28");
  const max = Math.max(1e-9, ...values.filter((v) => v !== null));
  const points = values.map((v, i) => v === null ? null : (i * 4) + "," + (26 - 24 * v / max))
    .filter(Boolean).join(" ");
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points); line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#2a6ebb"); line.setAttribute("stroke-width", "1.5");
  svg.append(line); const last = values.at(-1);
  box.append(svg, $("span", last === undefined || last === null ? " -" : " " + +last.toFixed(2) + " " + unit));
  return box;
}
async function refresh() {
  const health = await (await fetch("/_/health")).json();
  const load = await (await fetch("/_/admin/load")).json();
  table("components", ["component", "state", "workers", "routes", "req/s (5 min)", "p99 (5 min)",
    "last error", "warnings"],
    health.components.map((c) => row([c.name, c.state + (c.running ? " (running)" : ""),
      String(c.workers), (c.routes ?? []).join("\\n"),
      chart((load[c.name] ?? []).map((s) => s.rps), "req/s"),
      chart((load[c.name] ?? []).map((s) => s.p99Ms), "ms"),
      c.error ?? "", (c.warnings ?? []).join("\\n")], c.state === "failed" ? "failed" : "")));
  const jobs = await (await fetch("/_/jobs")).json();
  const rows = await Promise.all(jobs.jobs.map(async (job) => {
    const detail = await (await fetch(path(job.component, job.name) + "?limit=5")).json();
    const runs = (detail.runs ?? []).map((r) => new Date(r.started_at).toISOString() + " " + r.trigger + " " + r.outcome)
      .join("\\n");
    const button = $("button", "run now"); button.onclick = () => runNow(job, button);
    return row([job.component + "/" + job.name, job.spec, job.next_run ?? "", runs, button]);
  }));
  table("jobs", ["job", "schedule", "next run", "recent runs", ""], rows);
  document.getElementById("refused").replaceChildren(...(jobs.refused ?? []).map((r) =>
    $("li", "refused: " + r.component + "/" + r.name + " (" + r.spec + "): " + r.error)));
  document.getElementById("updated").textContent = new Date().toISOString();
}
refresh().catch((e) => { document.getElementById("message").textContent = String(e); });
setInterval(() => refresh().catch(() => {}), 5000);
`;

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>Pier admin</title>
<style>${STYLE}</style></head><body><h1>Pier admin</h1>
<p>Updated <span id="updated">-</span>. <span id="message" class="warn"></span></p>
<h2>Components</h2><table id="components"></table>
<h2>Jobs</h2><table id="jobs"></table><ul id="refused" class="warn"></ul>
<script>${SCRIPT}</script></body></html>`;
