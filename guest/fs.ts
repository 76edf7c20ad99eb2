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
/// <reference path="./wit.d.ts" />
import { getDirectories } from "wasi:filesystem/preopens@0.2.12";
import type { Descriptor } from "wasi:filesystem/types@0.2.12";
import { payloadOf } from "./wasi.ts";

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

const CHUNK = 65536n;

/** Reads all of `file`. */
function readAll(file: Descriptor): Uint8Array {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let eof = false; !eof;) {
    const [bytes, end] = file.read(CHUNK, BigInt(size));
    chunks.push(bytes);
    size += bytes.length;
    eof = end || bytes.length === 0;
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

/** Reads the whole file at `path` from the preopened directory that holds it. */
function read(path: string): Uint8Array {
  const wanted = segments(path);
  const preopens = getDirectories();
  let file: Descriptor | undefined;
  try {
    // The preopen whose name is the longest prefix of the path holds the file.
    let best: { dir: Descriptor; rest: string[] } | undefined;
    for (const [dir, name] of preopens) {
      const prefix = segments(name);
      const matches = prefix.length <= wanted.length &&
        prefix.every((part, i) => wanted[i] === part);
      if (matches && (!best || wanted.length - prefix.length < best.rest.length)) {
        best = { dir, rest: wanted.slice(prefix.length) };
      }
    }
    if (!best) throw new FsError("no-entry", path);
    if (best.rest.length === 0) throw new FsError("is-directory", path);
    file = best.dir.openAt({}, best.rest.join("/"), {}, { read: true });
    return readAll(file);
  } catch (error) {
    if (error instanceof FsError) throw error;
    throw new FsError(String(payloadOf(error)), path);
  } finally {
    file?.[Symbol.dispose]();
    for (const [dir] of preopens) dir[Symbol.dispose]();
  }
}

/** The read-only filesystem. */
export const fs = {
  /** The bytes of the file at `path`; rejects with an {@link FsError}. */
  // deno-lint-ignore require-await
  async readFile(path: string): Promise<Uint8Array> {
    return read(path);
  },
  /** The file at `path` decoded as UTF-8; rejects with an {@link FsError}. */
  async readTextFile(path: string): Promise<string> {
    return new TextDecoder().decode(await fs.readFile(path));
  },
};
