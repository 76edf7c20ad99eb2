/**
 * Fills the image's compile cache: starts Pier as `deno task start` does on
 * the image's components and data dir, waits until every component has
 * started (compiled, and its manifest cached), stops it and removes the
 * database it created. A container started on an empty volume then finds
 * every example compiled and listens at once.
 *
 * ```sh
 * deno run -A docker/warm_cache.ts /app/components /app/data
 * ```
 *
 * @module
 */
import { startPier } from "../tools/pier_process.ts";

const [componentsDir, dataDir] = Deno.args;
const pier = await startPier({ componentsDir, dataDir });
try {
  for (let started = false; !started;) {
    const health = await (await pier.fetch("/_/health")).json();
    const components: { name: string; state: string; running?: boolean }[] = health.components;
    const failed = components.filter((c) => c.state === "failed");
    if (failed.length) throw new Error(`failed to load: ${failed.map((c) => c.name).join(", ")}`);
    started = components.every((c) => c.running);
    if (!started) await new Promise((resolve) => setTimeout(resolve, 200));
  }
} finally {
  await pier.stop();
  console.log(pier.log());
}
// The cache stays; the database is the user's, created on their volume.
for (const name of ["main.db", "main.db-wal", "main.db-shm"]) {
  await Deno.remove(`${dataDir}/${name}`).catch(() => {});
}
