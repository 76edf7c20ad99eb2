/**
 * Compiles many components in parallel on a pool of workers, one per core.
 * Components whose cache entry is found from its fingerprint need no worker.
 *
 * @module
 */
import { type CacheEntry, findCached } from "./cache.ts";
import type { CompileJob, CompileReply } from "./compile_worker.ts";

/** The outcome of compiling one component. */
export type CompileResult =
  | { ok: true; entry: CacheEntry; size: number; ms: number }
  | { ok: false; error: string };

const COMPILE_WORKER = new URL("./compile_worker.ts", import.meta.url);

function compileOn(worker: Worker, job: CompileJob): Promise<CompileResult> {
  return new Promise((resolve) => {
    worker.onmessage = (event: MessageEvent<CompileReply>) => {
      const reply = event.data;
      resolve("error" in reply ? { ok: false, error: reply.error } : { ok: true, ...reply });
    };
    worker.onerror = (event) => {
      event.preventDefault();
      resolve({ ok: false, error: `compiler crashed: ${event.message}` });
    };
    worker.postMessage(job);
  });
}

/** Options of {@link compileAll}. */
export interface CompileOptions {
  /** Read and hash every `.wasm` and check its entry's hashes, whatever the fingerprints say. */
  fresh?: boolean;
}

/**
 * Compiles `wasmPaths` into `cacheDir` on up to one worker per core, calling
 * `onDone` as each finishes.
 */
export async function compileAll(
  wasmPaths: string[],
  cacheDir: string,
  onDone: (path: string, result: CompileResult) => void,
  options: CompileOptions = {},
): Promise<Map<string, CompileResult>> {
  const results = new Map<string, CompileResult>();
  const queue: string[] = [];
  for (const path of wasmPaths) {
    const started = performance.now();
    const found = options.fresh ? undefined : await findCached(path, cacheDir);
    if (!found) {
      queue.push(path);
      continue;
    }
    const result: CompileResult = { ok: true, ...found, ms: performance.now() - started };
    results.set(path, result);
    onDone(path, result);
  }
  const drain = async () => {
    let worker = new Worker(COMPILE_WORKER, { type: "module", name: "compiler" });
    for (let path = queue.shift(); path; path = queue.shift()) {
      const result = await compileOn(worker, { wasmPath: path, cacheDir });
      if (!result.ok && result.error.startsWith("compiler crashed")) {
        worker.terminate();
        worker = new Worker(COMPILE_WORKER, { type: "module", name: "compiler" });
      }
      results.set(path, result);
      onDone(path, result);
    }
    worker.terminate();
  };
  const workerCount = Math.min(navigator.hardwareConcurrency || 1, queue.length);
  await Promise.all(Array.from({ length: workerCount }, drain));
  return results;
}
