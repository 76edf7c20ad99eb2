/**
 * Worker of the build tool: componentizes one bundle at a time. The engines
 * block their thread while pre-initializing (componentize-js runs Wizer with
 * `spawnSync`), so parallel builds need a thread each.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { EngineName } from "./componentize.ts";

/** A job for this worker. */
export interface BuildJob {
  source: string;
  engine: EngineName;
}

/** The worker's answer to a {@link BuildJob}. */
export type BuildAnswer = { wasm: Uint8Array } | { error: string };

self.onmessage = async ({ data: job }: MessageEvent<BuildJob>) => {
  try {
    // Imported here, not statically: evaluating the engines' modules while the worker itself
    // is still loading never finishes (jco's WASI shim starts a worker of its own).
    const { componentize } = await import("./componentize.ts");
    const wasm = await componentize(job.source, { engine: job.engine });
    self.postMessage({ wasm } satisfies BuildAnswer);
  } catch (error) {
    self.postMessage({ error: (error as Error).message } satisfies BuildAnswer);
  }
};
