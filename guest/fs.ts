/**
 * Read-only files (`wasi:filesystem`). The directories a component sees are
 * the ones its permission manifest lists under `"read"`; paths are relative to
 * the guest's root, `/` or no leading slash alike.
 *
 * ```ts
 * import { fs } from "@pier/guest/fs";
 *
 * const config = JSON.parse(await fs.readTextFile("settings/app.json"));
 * const logo = await fs.readFile("/assets/logo.png");
 * ```
 *
 * @module
 */
import { backend } from "./backend.ts";
import { ReadFailure } from "./backend_types.ts";

/** A file that cannot be read; `code` is the host's reason (`no-entry`, `access`, `is-directory`, ...). */
export class FsError extends Error {
  /** `code`: WASI's error code; `path`: the path asked for. */
  constructor(readonly code: string, readonly path: string) {
    super(`cannot read ${path}: ${code}`);
    this.name = "FsError";
  }
}

/** A path's segments, refusing `..`. */
function segments(path: string): string[] {
  const parts = path.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) throw new FsError("not-permitted", path);
  return parts;
}

/** The read-only filesystem. */
export const fs = {
  /** The bytes of the file at `path`; rejects with an {@link FsError}. */
  async readFile(path: string): Promise<Uint8Array> {
    try {
      return await backend.readFile(segments(path), path);
    } catch (error) {
      if (error instanceof ReadFailure) throw new FsError(error.code, path);
      throw error;
    }
  },
  /** The file at `path` decoded as UTF-8; rejects with an {@link FsError}. */
  async readTextFile(path: string): Promise<string> {
    return new TextDecoder().decode(await fs.readFile(path));
  },
};
