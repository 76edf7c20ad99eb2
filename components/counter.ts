/**
 * counter: a visit counter in a key-value bucket, counted with atomic
 * increments so concurrent visits are never lost.
 *
 *   GET    /counter/{page}   counts a visit; {"page", "visits", "previousVisit"}
 *   GET    /counter          every counted page
 *   DELETE /counter/{page}   forgets a page's count
 */
import { defineComponent, json } from "@pier/guest";
import { kv } from "@pier/guest/kv";

const visits = kv.bucket("visits");

export default defineComponent({
  metadata: { displayName: "Counter", description: "Counts visits in a key-value bucket." },
  routes: {
    "GET /counter/{page}": async (_req, { params }) => {
      const count = await visits.increment(`count:${params.page}`);
      const previousVisit = await visits.getText(`last:${params.page}`) ?? null;
      await visits.set(`last:${params.page}`, new Date().toISOString());
      return json({ page: params.page, visits: count, previousVisit });
    },

    "GET /counter": async () => {
      const keys = await visits.list();
      const pages = keys.filter((k) => k.startsWith("count:")).map((k) => k.slice(6)).sort();
      return json({ pages });
    },

    "DELETE /counter/{page}": async (_req, { params }) => {
      await visits.delete(`count:${params.page}`);
      await visits.delete(`last:${params.page}`);
      return new Response(null, { status: 204 });
    },
  },
});
