/**
 * Pier's admin page under `/_/admin`: one HTML page with a small inline
 * script (no CDN, no build step) that reads `/_/health`, `/_/jobs` and the
 * admin's JSON below, and posts "run now" to the jobs API with the login
 * cookie.
 *
 * - `GET /_/admin`: the page, for a holder of the admin token (cookie or
 *   bearer), or with no token set for a loopback client; others are sent to
 *   the login form.
 * - `GET /_/admin/load`: the components' recent load (see `load.ts`), and
 *   `GET /_/admin/components`: their files, failures, restarts, last errors
 *   and grants against imports (see `components.ts`), for the same clients.
 * - `GET /_/admin/login`, `POST /_/admin/login`: the form; the right token
 *   sets the HttpOnly, SameSite=Strict cookie.
 * - `POST /_/admin/logout`: expires the cookie.
 *
 * @module
 */
import type { PierRoute } from "../scheduling/api.ts";
import type { Remote } from "../routing/targets.ts";
import type { ComponentRecord } from "../component.ts";
import type { RecentLoad } from "./load.ts";
import { adminComponents } from "./components.ts";
import { crossSite, loginCookie, logoutCookie, refusal, sameSecret } from "./auth.ts";

const HTML = { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" };
const LOGIN = "/_/admin/login";
const LOGOUT = "/_/admin/logout";

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
 * The routes of the admin page over `components`, whose charts show `load`;
 * `adminToken` unset or empty opens the page to loopback clients only.
 */
export function adminRoutes(
  adminToken: string | undefined,
  load: RecentLoad,
  components: readonly ComponentRecord[],
): PierRoute[] {
  const allowed = (request: Request, remote: Remote) =>
    adminToken ? refusal(request, adminToken, false) === undefined : remote.loopback;
  /** A JSON route of the page's data, for the clients the page is for. */
  const data = (path: string, body: () => unknown): PierRoute => ({
    method: "GET",
    path,
    handler: (request, _params, remote) =>
      allowed(request, remote)
        ? Response.json(body())
        : Response.json({ error: `log in at ${LOGIN}` }, { status: 401 }),
  });
  return [
    {
      method: "GET",
      path: "/_/admin",
      handler: (request, _params, remote) => {
        if (allowed(request, remote)) return new Response(PAGE, { headers: HTML });
        return new Response(null, { status: 303, headers: { location: LOGIN } });
      },
    },
    data("/_/admin/load", () => load),
    data("/_/admin/components", () => adminComponents(components)),
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
    {
      method: "POST",
      path: LOGOUT,
      handler: (request) => {
        if (crossSite(request)) return loginPage(403, "A cross-site log-out is refused.");
        return new Response(null, {
          status: 303,
          headers: { location: LOGIN, "set-cookie": logoutCookie() },
        });
      },
    },
  ];
}

const STYLE = `body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top;white-space:pre-line}th{background:#e8eef7}.error{color:#b00020;font-weight:600}
.failed{background:#fde8ea}.warn{color:#8a5a00}button{cursor:pointer}td.long{max-width:32em;overflow-wrap:anywhere}
header{display:flex;justify-content:space-between;align-items:baseline}
.failed-box{border:2px solid #b00020;background:#fde8ea;padding:.2em 1em;margin-bottom:1em}
.failed-box pre,.rejected-box pre{white-space:pre-wrap;overflow-wrap:anywhere}
.rejected-box{border:2px solid #8a5a00;background:#fff6e0;padding:.2em 1em;margin-bottom:1em}
.grant-granted{background:#e3f4e1}.grant-denied{background:#fde8ea;color:#b00020}
.grant-unused{background:#fff4d6}.grant-quiet,.grant-none{color:#777}`;

/**
 * Builds the page from `/_/health`, `/_/admin/components`, `/_/admin/load`
 * and `/_/jobs` with DOM calls (never innerHTML: names and errors are data).
 */
const SCRIPT = `
const $ = (tag, text, cls) => { const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const cell = (c) => { const td = $("td"); typeof c === "object" ? td.append(c) : td.textContent = c;
  return td; };
const row = (cells, cls) => { const tr = $("tr", undefined, cls);
  for (const c of cells) tr.append(c instanceof HTMLTableCellElement ? c : cell(c)); return tr; };
const table = (id, head, rows) => { const t = document.getElementById(id); t.replaceChildren();
  const tr = $("tr"); for (const h of head) tr.append($("th", h)); t.append(tr); t.append(...rows); };
const path = (c, j) => "/_/jobs/" + encodeURIComponent(c) + "/" + encodeURIComponent(j);
const when = (ms) => new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
/** GETs JSON; a refusal (logged out meanwhile) goes back to the login form. */
async function get(url) {
  const r = await fetch(url);
  if (r.status === 401) { location.href = "/_/admin/login"; throw new Error("logged out"); }
  return await r.json();
}
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
/** One capability of a component: its grant against its import, as a coloured cell. */
function grantCell(g) {
  const granted = g.granted.length > 0;
  const [status, note] = granted
    ? (g.imported ? ["granted", "imported"] : ["unused", "not imported: the grant is unused"])
    : !g.imported ? ["none", "not imported"]
    : g.importMeansUse ? ["denied", "imported: its calls are denied"]
    : ["quiet", "imported (its toolchain always does)"];
  const td = $("td", (granted ? g.granted.join(", ") : "not granted") + "\\n" + note, "grant-" + status);
  td.dataset.capability = g.capability; td.dataset.status = status;
  return td;
}
/** An error's time and first line; the rest (a stack) folded. */
function lastError({ at, message }) {
  const [first, ...rest] = message.split("\\n"); const box = $("div", when(at) + "\\n" + first);
  if (rest.length) { const more = $("details"); more.append($("summary", "more"), $("pre", rest.join("\\n")));
    box.append(more); }
  return box;
}
/** A box per failed component: what failed, when, in which file, and why. */
function failedBoxes(admin) {
  const failed = admin.filter((c) => c.state === "failed");
  if (failed.length === 0) return [];
  return [$("h2", "Failed components", "error"), ...failed.map((c) => {
    const box = $("section", undefined, "failed-box"); box.dataset.component = c.name;
    box.append($("h3", c.name + ": " + c.state + (c.failedAt ? " since " + when(c.failedAt) : "")),
      $("p", "file: " + c.file), $("pre", c.error ?? ""));
    return box;
  })];
}
/** A box per component whose new version a reload refused, while the running one serves on. */
function rejectedBoxes(admin) {
  const rejected = admin.filter((c) => c.rejected);
  if (rejected.length === 0) return [];
  return [$("h2", "New versions refused", "warn"), ...rejected.map((c) => {
    const box = $("section", undefined, "rejected-box"); box.dataset.component = c.name;
    box.append($("h3", c.name + ": new version refused at " + when(Date.parse(c.rejected.at)) +
      (c.state === "failed" ? "" : "; the running version serves")),
      $("p", "file: " + c.rejected.file), $("pre", c.rejected.error));
    return box;
  })];
}
async function refresh() {
  const [health, admin, load] = await Promise.all(
    ["/_/health", "/_/admin/components", "/_/admin/load"].map(get));
  const byName = new Map(admin.map((c) => [c.name, c]));
  document.getElementById("failed").replaceChildren(...failedBoxes(admin), ...rejectedBoxes(admin));
  table("components", ["component", "state", "workers", "restarts", "routes", "req/s (5 min)",
    "p99 (5 min)", "last error", "warnings"],
    health.components.map((c) => { const a = byName.get(c.name) ?? {};
      const last = cell(a.lastError ? lastError(a.lastError) : ""); last.className = "long";
      return row([c.name, c.state + (c.running ? " (running)" : ""), String(c.workers),
      String(a.restarts ?? 0), (c.routes ?? []).join("\\n"),
      chart((load[c.name] ?? []).map((s) => s.rps), "req/s"),
      chart((load[c.name] ?? []).map((s) => s.p99Ms), "ms"),
      last, (c.warnings ?? []).join("\\n")], c.state === "failed" ? "failed" : ""); }));
  const granting = admin.filter((c) => c.grants);
  table("grants", ["component", ...(granting[0]?.grants ?? []).map((g) => g.capability + " (" + g.grantKey + ")")],
    granting.map((c) => row([c.name, ...c.grants.map(grantCell)])));
  const jobs = await get("/_/jobs");
  const rows = await Promise.all(jobs.jobs.map(async (job) => {
    const detail = await get(path(job.component, job.name) + "?limit=5");
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
<style>${STYLE}</style></head><body><header><h1>Pier admin</h1>
<form method="post" action="${LOGOUT}"><button type="submit" id="logout">Log out</button></form></header>
<p>Updated <span id="updated">-</span>. <span id="message" class="warn"></span></p>
<div id="failed"></div>
<h2>Components</h2><table id="components"></table>
<h2>Grants against imports</h2>
<p>What each component's permission manifest grants, against what its code imports: an import
without its grant has its calls denied; a grant without its import is unused.</p>
<table id="grants"></table>
<h2>Jobs</h2><table id="jobs"></table><ul id="refused" class="warn"></ul>
<script>${SCRIPT}</script></body></html>`;
