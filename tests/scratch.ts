/**
 * Temporary directories for tests, removed when the test process ends: a
 * run makes dozens (components, databases, compile caches: gigabytes), and
 * one left behind per run fills a disk.
 *
 * @module
 */

const made: string[] = [];
addEventListener("unload", () => {
  for (const dir of made) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // already gone
    }
  }
});

/** A new temporary directory named `<prefix>…`, removed when the test process ends. */
export async function scratchDir(prefix = "pier-test-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  made.push(dir);
  return dir;
}
