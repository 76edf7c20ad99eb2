/**
 * `wasi:filesystem` for guests: read-only preopens of the directories the
 * component's manifest grants (`read`). Paths are resolved inside the
 * preopen: absolute paths, `..` out of it and symlinks pointing outside are
 * refused with `not-permitted`; every kind of write fails with `read-only`.
 *
 * @module
 */
import { ByteQueue, InputStream } from "./io.ts";

/** A filesystem `error-code`, thrown as the result error. */
type ErrorCode =
  | "access"
  | "not-permitted"
  | "no-entry"
  | "not-directory"
  | "read-only"
  | "invalid";

function fail(code: ErrorCode): never {
  throw code;
}

function fsError(error: unknown): never {
  if (typeof error === "string") throw error;
  if (error instanceof Deno.errors.NotFound) fail("no-entry");
  if (error instanceof Deno.errors.NotADirectory) fail("not-directory");
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    fail("access");
  }
  fail("invalid");
}

function datetime(date: Date | null) {
  if (!date) return undefined;
  const ms = date.getTime();
  return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1_000_000 };
}

function entryType(info: Deno.FileInfo): string {
  return info.isDirectory ? "directory" : info.isFile ? "regular-file" : "unknown";
}

/** `wasi:filesystem/types.descriptor`: a file or directory inside a preopen. */
export class Descriptor {
  constructor(readonly root: string, readonly path: string) {}

  /** The host path of `relative` under this descriptor, if it stays inside the preopen. */
  #resolve(relative: string): string {
    if (relative.startsWith("/")) fail("not-permitted");
    const parts = this.path === this.root ? [] : this.path.slice(this.root.length + 1).split("/");
    for (const part of relative.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") {
        if (parts.length === 0) fail("not-permitted");
        parts.pop();
      } else parts.push(part);
    }
    const full = [this.root, ...parts].join("/");
    let real: string;
    try {
      real = Deno.realPathSync(full);
    } catch (error) {
      fsError(error);
    }
    if (real !== this.root && !real.startsWith(`${this.root}/`)) fail("not-permitted");
    return real;
  }

  #stat(path: string) {
    try {
      return Deno.statSync(path);
    } catch (error) {
      fsError(error);
    }
  }

  openAt(
    _pathFlags: unknown,
    path: string,
    openFlags: Record<string, boolean>,
    flags: Record<string, boolean>,
  ) {
    if (openFlags?.create || openFlags?.truncate || flags?.write || flags?.mutateDirectory) {
      fail("read-only");
    }
    const target = this.#resolve(path);
    if (openFlags?.directory && !this.#stat(target).isDirectory) fail("not-directory");
    return new Descriptor(this.root, target);
  }
  readViaStream(offset: bigint): InputStream {
    let file: Deno.FsFile | undefined;
    let position = Number(offset);
    return new InputStream(
      new ByteQueue(async (queue) => {
        file ??= await Deno.open(this.path, { read: true });
        const buffer = new Uint8Array(65536);
        await file.seek(position, Deno.SeekMode.Start);
        const read = await file.read(buffer);
        if (read === null) {
          file.close();
          queue.close();
        } else {
          position += read;
          queue.push(buffer.subarray(0, read));
        }
      }),
    );
  }
  read(length: bigint, offset: bigint): [Uint8Array, boolean] {
    try {
      using file = Deno.openSync(this.path, { read: true });
      file.seekSync(Number(offset), Deno.SeekMode.Start);
      const buffer = new Uint8Array(Number(length));
      const read = file.readSync(buffer) ?? 0;
      const size = file.statSync().size;
      return [buffer.subarray(0, read), Number(offset) + read >= size];
    } catch (error) {
      fsError(error);
    }
  }
  stat() {
    const info = this.#stat(this.path);
    return {
      type: entryType(info),
      linkCount: 1n,
      size: BigInt(info.size),
      dataAccessTimestamp: datetime(info.atime),
      dataModificationTimestamp: datetime(info.mtime),
      statusChangeTimestamp: datetime(info.ctime ?? null),
    };
  }
  statAt(pathFlags: unknown, path: string) {
    return this.openAt(pathFlags, path, {}, {}).stat();
  }
  getType(): string {
    return entryType(this.#stat(this.path));
  }
  getFlags() {
    return { read: true };
  }
  readDirectory(): DirectoryEntryStream {
    try {
      return new DirectoryEntryStream([...Deno.readDirSync(this.path)]);
    } catch (error) {
      fsError(error);
    }
  }
  metadataHash() {
    const info = this.#stat(this.path);
    return { lower: BigInt(info.ino ?? 0), upper: BigInt(info.dev ?? 0) };
  }
  metadataHashAt(pathFlags: unknown, path: string) {
    return this.openAt(pathFlags, path, {}, {}).metadataHash();
  }
  isSameObject(other: Descriptor): boolean {
    return other.path === this.path;
  }
  writeViaStream(): never {
    fail("read-only");
  }
  appendViaStream(): never {
    fail("read-only");
  }
  write(): never {
    fail("read-only");
  }
  createDirectoryAt(): never {
    fail("read-only");
  }
  removeDirectoryAt(): never {
    fail("read-only");
  }
  unlinkFileAt(): never {
    fail("read-only");
  }
  renameAt(): never {
    fail("read-only");
  }
  symlinkAt(): never {
    fail("read-only");
  }
  linkAt(): never {
    fail("read-only");
  }
  setSize(): never {
    fail("read-only");
  }
  setTimes(): never {
    fail("read-only");
  }
  setTimesAt(): never {
    fail("read-only");
  }
  syncData(): void {}
  sync(): void {}
  advise(): void {}
  readlinkAt(): never {
    fail("not-permitted");
  }
}

/** `wasi:filesystem/types.directory-entry-stream`. */
export class DirectoryEntryStream {
  constructor(readonly entries: Deno.DirEntry[]) {}
  readDirectoryEntry() {
    const entry = this.entries.shift();
    if (!entry) return undefined;
    const type = entry.isDirectory
      ? "directory"
      : entry.isFile
      ? "regular-file"
      : entry.isSymlink
      ? "symbolic-link"
      : "unknown";
    return { type, name: entry.name };
  }
}

/** A granted directory: its host path and the name the guest sees. */
export interface Preopen {
  hostPath: string;
  guestPath: string;
}

/** The `wasi:filesystem/*` import objects for the given preopens. */
export function filesystemImports(preopens: Preopen[]): Record<string, Record<string, unknown>> {
  const descriptors = preopens.flatMap(({ hostPath, guestPath }) => {
    try {
      const root = Deno.realPathSync(hostPath);
      return [[new Descriptor(root, root), guestPath] as [Descriptor, string]];
    } catch {
      return []; // a granted directory that does not exist is simply not there
    }
  });
  return {
    "wasi:filesystem/preopens": { getDirectories: () => descriptors },
    "wasi:filesystem/types": {
      Descriptor,
      DirectoryEntryStream,
      filesystemErrorCode: () => undefined,
    },
  };
}
