/**
 * Atomic file writes, shared by the compile cache and the build tools
 * (`tools/`), which import it from here: the server process may read only
 * `runtime/`.
 *
 * @module
 */

/**
 * Writes `data` to `path` through a file of its own and a rename, so that a
 * reader (another Pier process on the same data dir, a server reading a
 * `.wasm` the build replaces) never sees half of it.
 */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const staging = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeFile(
      staging,
      typeof data === "string" ? new TextEncoder().encode(data) : data,
    );
    await Deno.rename(staging, path);
  } catch (error) {
    await Deno.remove(staging).catch(() => {});
    throw error;
  }
}
