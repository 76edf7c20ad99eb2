/**
 * hello: path parameters, query parameters, a JSON echo and an HTML page.
 *
 *   GET  /hello                  an HTML page with a form
 *   GET  /hello/{name}?excited   a greeting as text
 *   POST /hello/echo             the JSON body back, with what the request looked like
 */
import { defineComponent, html, HttpError, json, markup, text } from "@pier/guest";

export default defineComponent({
  metadata: { displayName: "Hello", description: "Greets, echoes and renders a page." },
  routes: {
    "GET /hello": (_req, { query }) => {
      const name = query.get("name") ?? "world";
      return html(markup`<!doctype html>
<title>Hello</title>
<h1>Hello, ${name}!</h1>
<form><input name="name" value="${name}"><button>Greet</button></form>`);
    },

    "GET /hello/{name}": (_req, { params, query }) => {
      const greeting = `Hello, ${params.name}${query.has("excited") ? "!" : "."}`;
      return text(greeting);
    },

    "POST /hello/echo": async (req, { url }) => {
      let body: unknown;
      try {
        body = await req.json();
      } catch {
        throw new HttpError(400, "the body must be JSON");
      }
      return json({
        method: req.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        contentType: req.headers.get("content-type"),
        body,
      });
    },
  },
});
