/**
 * page: server-side rendering. An HTML page lists the todos from the
 * database (the `todos` component's table); every value is escaped by
 * `markup`, so a title like `<script>` shows as text.
 *
 *   GET /page?q=milk     the todos whose title contains "milk"
 */
import { defineComponent, html, markup } from "@pier/guest";
import { db, DbError } from "@pier/guest/db";

async function todos(search: string) {
  try {
    return await db.query(
      "SELECT title, done FROM todos WHERE instr(lower(title), lower(?)) > 0 ORDER BY id",
      [search],
    );
  } catch (error) {
    // Nothing has been added yet: the todos component creates its table on first use.
    if (error instanceof DbError && error.message.includes("no such table")) return [];
    throw error;
  }
}

export default defineComponent({
  metadata: { displayName: "Page", description: "Server-side rendered todo list." },
  routes: {
    "GET /page": async (_req, { query }) => {
      const search = query.get("q") ?? "";
      const rows = await todos(search);
      const items = rows.map(([title, done]) =>
        markup`<li class="${done === 1 ? "done" : "open"}">${title}</li>`
      );
      return html(markup`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Todos</title></head>
<body>
<h1>Todos${search && markup` matching “${search}”`}</h1>
<form><input name="q" value="${search}" placeholder="search"><button>Search</button></form>
${items.length ? markup`<ul>${items}</ul>` : markup`<p>Nothing to do.</p>`}
</body>
</html>`);
    },
  },
});
