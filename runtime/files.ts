/**
 * Reads of the files that anyone with access to the components directory
 * may put there (`.wasm` components, permission manifests): only regular
 * files (or links to them) of a bounded size. A FIFO would block the reader
 * forever and a device such as `/dev/zero` would fill memory, so anything
 * else is refused with a message naming the file and what to do.
 *
 * @module
 */

/** What a file may be: the largest size, and what it is called in messages. */
export interface FileLimit {
  maxBytes: number;
  what: string;
}

const MiB = 1024 * 1024;

/** A `.wasm` component: the example components weigh ~14 MiB (SpiderMonkey inside). */
export const COMPONENT_FILE: FileLimit = { maxBytes: 256 * MiB, what: "a component" };

/** A permission manifest: a few lines of JSON. */
export const PERMISSIONS_FILE: FileLimit = { maxBytes: 64 * 1024, what: "a permission manifest" };

/** A file that cannot be read under its {@link FileLimit}; the message says why and what to do. */
export class FileRefused extends Error {}

function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

const sizeText = (bytes: number) =>
  bytes >= MiB ? `${(bytes / MiB).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;

/**
 * Why a file whose (link-followed) stat is `info` cannot be read under
 * `limit`, or undefined when it can.
 */
export function refusal(path: string, info: Deno.FileInfo, limit: FileLimit): string | undefined {
  if (!info.isFile) {
    return `${path} is ${kindOf(info)}, not a regular file: ${limit.what} must be a regular ` +
      `file or a link to one; replace or remove it`;
  }
  if (info.size > limit.maxBytes) {
    return `${path} is ${sizeText(info.size)}, more than the ${
      sizeText(limit.maxBytes)
    } ${limit.what} may have; remove it`;
  }
}

/**
 * Reads the regular file at `path` (links followed) if it is within `limit`;
 * throws {@link FileRefused} otherwise, and `Deno.errors.NotFound` when there
 * is no such file. Also returns the file's stat, taken before reading (a file
 * changed meanwhile no longer matches it).
 */
export async function readRegularFile(
  path: string,
  limit: FileLimit,
): Promise<{ bytes: Uint8Array; info: Deno.FileInfo }> {
  // Checked before opening: opening a FIFO for reading blocks until a writer comes. (Not the open
  // file's own stat: Deno wants read permission on a link's target for that, which Pier may lack.)
  const info = await Deno.stat(path);
  const problem = refusal(path, info, limit);
  if (problem) throw new FileRefused(problem);
  using file = await Deno.open(path);
  // Never more than the checked size, even if the file was replaced or grew since.
  const bytes = new Uint8Array(info.size);
  let filled = 0;
  while (filled < bytes.length) {
    const read = await file.read(bytes.subarray(filled));
    if (read === null) break;
    filled += read;
  }
  return { bytes: bytes.subarray(0, filled), info };
}
