/**
 * Worker entry: compiles components off the server thread, one at a time,
 * so several workers use all cores.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import "./empty_env.ts";
import { type CacheEntry, compileCached } from "./cache.ts";

/** A compile job. */
export interface CompileJob {
  wasmPath: string;
  cacheDir: string;
}

/** A compile job's outcome. */
export type CompileReply =
  | { entry: CacheEntry; size: number; ms: number }
  | { error: string };

self.onmessage = async (event: MessageEvent<CompileJob>) => {
  const { wasmPath, cacheDir } = event.data;
  const started = performance.now();
  let reply: CompileReply;
  try {
    const { entry, size } = await compileCached(wasmPath, cacheDir);
    reply = { entry, size, ms: performance.now() - started };
  } catch (error) {
    reply = { error: error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(reply);
};
