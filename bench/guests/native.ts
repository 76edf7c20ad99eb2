// @pier-engine native
// The bench guest for Pier's native engine, written with the SDK as a user
// would: `/hello`, `/fib/{n}` and `/db/{id}` with the reference's answers.
// A component granted `BENCH_PREFIX_<n>` serves them under that variable's
// value, so ten copies load side by side.
import { defineComponent, type RouteHandler } from "@pier/guest";
import { db } from "@pier/guest/db";
import { env } from "@pier/guest/env";

const TEXT = { "content-type": "text/plain" };

function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

let prefix = "";
for (let i = 0; i < 10 && !prefix; i++) prefix = env(`BENCH_PREFIX_${i}`) ?? "";

const routes: Record<string, RouteHandler> = {
  [`GET ${prefix}/hello`]: () => new Response("Hello, world!\n", { headers: TEXT }),
  [`GET ${prefix}/fib/{n}`]: (_req, { params }) =>
    new Response(`${fib(Number(params.n))}\n`, { headers: TEXT }),
  [`GET ${prefix}/db/{id}`]: async (_req, { params }) => {
    const rows = await db.query("SELECT id, name, score FROM items WHERE id = ?", [
      Number(params.id),
    ]);
    if (rows.length === 0) return new Response("no such item\n", { status: 404, headers: TEXT });
    const [id, name, score] = rows[0];
    return Response.json({ id, name, score });
  },
};

export default defineComponent({ routes: routes as never });
