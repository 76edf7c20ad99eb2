/**
 * Compiles a component's core modules. The server thread compiles them once
 * and hands the compiled modules to the component's worker (and to the
 * workers that replace it): V8 shares a compiled module between threads, so
 * the bytes are read, copied and compiled once per component, on the server
 * thread, whose allocator reuses that memory; a worker that read tens of MB
 * itself would keep them resident for its lifetime.
 *
 * @module
 */
import { limitMemory } from "../compile/memory_limit.ts";

/** The compiles in progress: one at a time, so each reuses the memory the previous one freed. */
let queue: Promise<unknown> = Promise.resolve();

/**
 * Compiles the core module at `path` with its memories capped to `memoryMb`.
 * An urgent compile (a request waits for it) runs at once, beside the queue.
 */
export function compileCore(
  path: string,
  memoryMb: number,
  urgent = false,
): Promise<WebAssembly.Module> {
  if (urgent) return compileNow(path, memoryMb);
  const compiled = queue.then(() => compileNow(path, memoryMb));
  queue = compiled.catch(() => {});
  return compiled;
}

/** Reads a whole file into a buffer of its size (`Deno.readFile` grows one as it reads). */
async function readWhole(path: string): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const bytes = new Uint8Array((await file.stat()).size);
  for (let at = 0; at < bytes.length;) {
    const read = await file.read(bytes.subarray(at));
    if (read === null) throw new Error(`${path} was truncated while being read`);
    at += read;
  }
  return bytes;
}

async function compileNow(path: string, memoryMb: number): Promise<WebAssembly.Module> {
  const bytes = await readWhole(path);
  // The cache stores core modules with room for the cap: this sets it in place, not in a copy.
  const limited = limitMemory(bytes, memoryMb * 2 ** 20);
  try {
    return await WebAssembly.compile(limited as BufferSource);
  } finally {
    // Compiling copied the bytes: free both buffers now rather than at the next full GC.
    for (const buffer of new Set([bytes.buffer, limited.buffer])) {
      (buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer }).transfer?.(0);
    }
  }
}

/** Compiles every core module (`*.wasm`) of a compiled component's directory, by file name. */
export async function compileCoreModules(
  dir: string,
  memoryMb: number,
  urgent = false,
): Promise<Record<string, WebAssembly.Module>> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".wasm")) names.push(entry.name);
  }
  const modules = await Promise.all(
    names.map((name) => compileCore(`${dir}/${name}`, memoryMb, urgent)),
  );
  return Object.fromEntries(names.map((name, i) => [name, modules[i]]));
}
