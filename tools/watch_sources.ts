/**
 * The launcher's watch mode (`deno task start --watch`): builds a component
 * source again when it, or a module it imports, changes. The build runs in a
 * process of its own with only what a build needs (`buildCommand`), prints
 * its progress and any error with file and line, and writes the `.wasm`
 * atomically; the server process then reloads the component (see
 * `runtime/reload/`). A failed build leaves the `.wasm`, and so the version
 * being served, as it was.
 *
 * @module
 */
import { buildCommand, componentSources, upToDate } from "./build.ts";
import { basename } from "../runtime/paths.ts";
import { oneAtATime, watchDirectory } from "../runtime/reload/watch.ts";

/** The component sources in `dir` whose `.wasm` is missing or older than what it is built from. */
export async function staleSources(dir: string): Promise<string[]> {
  const sources = await componentSources(dir);
  const fresh = await Promise.all(sources.map((source) => upToDate(source)));
  return sources.filter((_, i) => !fresh[i]);
}

/** Builds `sources` in a process of its own (output to this one's); true if every one built. */
export async function buildInProcess(sources: string[]): Promise<boolean> {
  const { success } = await new Deno.Command(Deno.execPath(), {
    args: buildCommand(sources),
    stdin: "null",
  }).spawn().status;
  return success;
}

/**
 * What the `.ts` files of `dir` are now (names, sizes, times), shared
 * modules (`_*.ts`) included: a failed build is tried again once this
 * changes, not at every look.
 */
async function sourcesState(dir: string): Promise<string> {
  const states: string[] = [];
  try {
    for await (const { name } of Deno.readDir(dir)) {
      if (!name.endsWith(".ts")) continue;
      const info = await Deno.stat(`${dir}/${name}`).catch(() => undefined);
      states.push(`${name}:${info?.size}:${info?.mtime?.getTime()}`);
    }
  } catch {
    // no directory: no sources
  }
  return states.sort().join("\n");
}

/**
 * Watches the sources in `dir` and builds each that goes stale, one build at
 * a time. Sources stale now (their build just failed) wait for a change.
 * Returns a function that stops the watching.
 */
export async function watchSources(dir: string): Promise<() => void> {
  /** Sources whose last build failed, with the state of the sources then. */
  const failed = new Map<string, string>();
  const initial = await sourcesState(dir);
  for (const source of await staleSources(dir)) failed.set(source, initial);
  const buildStale = async () => {
    const state = await sourcesState(dir);
    const stale = (await staleSources(dir)).filter((source) => failed.get(source) !== state);
    if (stale.length === 0) return;
    const names = stale.map((source) => basename(source)).join(", ");
    console.log(`watch: ${names} changed: building`);
    const built = await buildInProcess(stale);
    // The build tool says which failed: a source still stale after it is one.
    const after = await staleSources(dir);
    for (const source of stale) {
      if (after.includes(source)) failed.set(source, state);
      else failed.delete(source);
    }
    console.log(
      built
        ? `watch: built ${names}: the server reloads it`
        : "watch: the build failed (see above): the server keeps serving the previous version",
    );
  };
  console.log(`watch: building the components in ${dir} again as their sources change`);
  const onChange = oneAtATime("watch", buildStale);
  return watchDirectory(dir, () => void onChange());
}
