/**
 * `wasi:filesystem` for guests: read-only preopens of the directories the
 * component's manifest grants (`read`). Paths are resolved inside the
 * preopen: absolute paths, `..` out of it and symlinks pointing outside are
 * refused with `not-permitted`; every kind of write fails with `read-only`.
 * A directory swapped for a link while a guest holds descriptors into it
 * (see {@link Descriptor}) leads nowhere outside either.
 *
 * @module
 */
import fs from "node:fs";
import { ByteQueue, InputStream } from "./io.ts";

// Deno has no openat nor O_NOFOLLOW; node:fs passes open flags through. O_NONBLOCK: opening a
// FIFO must not wait for a writer.
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** A filesystem `error-code`, thrown as the result error. */
type ErrorCode =
  | "access"
  | "not-permitted"
  | "no-entry"
  | "not-directory"
  | "read-only"
  | "is-directory"
  | "bad-descriptor"
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

function realPath(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch (error) {
    fsError(error);
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

function datetime(date: Date) {
  const ms = date.getTime();
  return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1_000_000 };
}

function entryType(info: fs.Stats): string {
  return info.isDirectory() ? "directory" : info.isFile() ? "regular-file" : "unknown";
}

/** Which file an open descriptor is: equal identities are the same file. */
interface Identity {
  dev: number;
  ino: number;
}

const sameFile = (a: Identity, b: Identity) => a.dev === b.dev && a.ino === b.ino;

/** Closes the file of a descriptor the guest never dropped (its instance was discarded). */
const unclosed = new FinalizationRegistry<number>((fd) => fs.close(fd, () => {}));

/**
 * `wasi:filesystem/types.descriptor`: a file or directory inside a preopen.
 * A file is opened once, when the descriptor is made, and read through that
 * open file; a directory is re-checked to be the same directory, reached
 * without links, before and after every use of its path. So swapping a
 * directory for a link after the check (by another process with write access)
 * reaches nothing outside the preopen.
 */
export class Descriptor {
  readonly #identity: Identity;
  #fd: number | undefined;

  /** `path` is a real path inside `root` that was `identity` when checked; `fd` its open file. */
  constructor(readonly root: string, readonly path: string, identity: Identity, fd?: number) {
    this.#identity = identity;
    this.#fd = fd;
    if (fd !== undefined) unclosed.register(this, fd, this);
  }

  /** The descriptor of the directory `root` (a real path), or undefined if it is not one. */
  static root(root: string): Descriptor | undefined {
    const info = fs.lstatSync(root);
    return info.isDirectory() ? new Descriptor(root, root, info) : undefined;
  }

  /** The real path of `relative` under this descriptor, if it stays inside the preopen. */
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
    const real = realPath([this.root, ...parts].join("/"));
    if (real !== this.root && !real.startsWith(`${this.root}/`)) fail("not-permitted");
    return real;
  }

  /**
   * Fails unless this directory's path still leads, without links, to the
   * directory it was when opened.
   */
  #check(): void {
    if (this.#fd !== undefined) return;
    try {
      if (realPath(this.path) === this.path && sameFile(fs.lstatSync(this.path), this.#identity)) {
        return;
      }
    } catch {
      // gone: refused below like a moved one
    }
    fail("not-permitted");
  }

  /**
   * The file at `relative`: opened without following a link at its end, then
   * checked to be the file its real path names, with no link on that path.
   */
  #open(relative: string): Descriptor {
    this.#check();
    const real = this.#resolve(relative);
    let fd: number;
    try {
      fd = fs.openSync(real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      if ((error as { code?: string }).code === "ELOOP") fail("not-permitted");
      fsError(error);
    }
    let info: fs.Stats;
    try {
      info = fs.fstatSync(fd);
      if (realPath(real) !== real || !sameFile(info, fs.lstatSync(real))) fail("not-permitted");
    } catch (error) {
      closeQuietly(fd);
      fsError(error);
    }
    if (!info.isDirectory()) return new Descriptor(this.root, real, info, fd);
    closeQuietly(fd); // a directory is used by its checked path, so a guest holds no fd for one
    return new Descriptor(this.root, real, info);
  }

  /** The open file of a file descriptor; fails for a directory or a dropped descriptor. */
  #file(): number {
    if (this.#fd === undefined) fail("is-directory");
    return this.#fd;
  }

  #stat(): fs.Stats {
    try {
      if (this.#fd !== undefined) return fs.fstatSync(this.#fd);
      this.#check();
      return fs.lstatSync(this.path);
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
    const opened = this.#open(path);
    if (openFlags?.directory && opened.#fd !== undefined) {
      opened[Symbol.dispose]();
      fail("not-directory");
    }
    return opened;
  }
  readViaStream(offset: bigint): InputStream {
    const fd = this.#file();
    let position = Number(offset);
    return new InputStream(
      new ByteQueue((queue) =>
        Promise.resolve().then(() => {
          // Checked and read in one synchronous step: a dropped descriptor's fd may be reused.
          if (this.#fd !== fd) fail("bad-descriptor");
          const buffer = new Uint8Array(65536);
          const read = fs.readSync(fd, buffer, 0, buffer.byteLength, position);
          if (read === 0) queue.close();
          else {
            position += read;
            queue.push(buffer.subarray(0, read));
          }
        })
      ),
    );
  }
  read(length: bigint, offset: bigint): [Uint8Array, boolean] {
    const fd = this.#file();
    try {
      const buffer = new Uint8Array(Number(length));
      const read = fs.readSync(fd, buffer, 0, buffer.byteLength, Number(offset));
      return [buffer.subarray(0, read), Number(offset) + read >= fs.fstatSync(fd).size];
    } catch (error) {
      fsError(error);
    }
  }
  stat() {
    const info = this.#stat();
    return {
      type: entryType(info),
      linkCount: 1n,
      size: BigInt(info.size),
      dataAccessTimestamp: datetime(info.atime),
      dataModificationTimestamp: datetime(info.mtime),
      statusChangeTimestamp: datetime(info.ctime),
    };
  }
  statAt(_pathFlags: unknown, path: string) {
    using opened = this.#open(path);
    return opened.stat();
  }
  getType(): string {
    return entryType(this.#stat());
  }
  getFlags() {
    return { read: true };
  }
  readDirectory(): DirectoryEntryStream {
    this.#check();
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(this.path)];
    } catch (error) {
      fsError(error);
    }
    // Checked again: the listing is this directory's only if it was not swapped meanwhile.
    this.#check();
    return new DirectoryEntryStream(entries);
  }
  metadataHash() {
    const info = this.#stat();
    return { lower: BigInt(info.ino), upper: BigInt(info.dev) };
  }
  metadataHashAt(_pathFlags: unknown, path: string) {
    using opened = this.#open(path);
    return opened.metadataHash();
  }
  isSameObject(other: Descriptor): boolean {
    return sameFile(other.#identity, this.#identity);
  }
  /** Dropped by the guest: its open file is closed. */
  [Symbol.dispose](): void {
    if (this.#fd === undefined) return;
    unclosed.unregister(this);
    closeQuietly(this.#fd);
    this.#fd = undefined;
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
      // `hostPath` is the real path checked at load: if it leads elsewhere now, it is not there.
      const root = Deno.realPathSync(hostPath) === hostPath ? Descriptor.root(hostPath) : undefined;
      return root ? [[root, guestPath] as [Descriptor, string]] : [];
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
