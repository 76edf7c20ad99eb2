/**
 * The bench's reference: plain `Deno.serve` answering the bench guest's
 * routes (`/hello`, `/fib/{n}`, `/db/{id}`) with the same answers, the DB
 * route through `node:sqlite` on the same database file.
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-read --allow-write reference.ts PORT DB
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

const HELLO = "Hello, world!\n";

function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

const [port, dbPath] = Deno.args;
const db = new DatabaseSync(dbPath, { readOnly: true });
const byId = db.prepare("SELECT id, name, score FROM items WHERE id = ?");

const text = (body: string, status = 200) =>
  new Response(body, { status, headers: { "content-type": "text/plain" } });

Deno.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}/ (pid ${Deno.pid})`),
}, (request) => {
  const path = new URL(request.url).pathname;
  if (path === "/hello") return text(HELLO);
  if (path.startsWith("/fib/")) return text(`${fib(Number(path.slice(5)))}\n`);
  if (path.startsWith("/db/")) {
    const row = byId.get(Number(path.slice(4)));
    if (!row) return text("no such item\n", 404);
    return new Response(JSON.stringify({ id: row.id, name: row.name, score: row.score }), {
      headers: { "content-type": "application/json" },
    });
  }
  return text("not found\n", 404);
});
