// The bench's routes written with the SDK as a user would: `/hello`, `/fib/{n}` and `/db/{id}`
// with the reference's answers, under `prefix`. `native.ts` serves them on the native engine and
// `sdk.ts` on SpiderMonkey: the same code on both engines.
import type { RouteHandler } from "@pier/guest";
import { db } from "@pier/guest/db";

const TEXT = { "content-type": "text/plain" };

function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/** The bench's routes under `prefix` (`""` for none). */
export function benchRoutes(prefix: string): Record<string, RouteHandler> {
  return {
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
}
