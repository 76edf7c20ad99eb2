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
import { ByteQueue, InputStream } from "../../wasi/io.ts";
import type { GuestSide } from "../sides.ts";
import type { GuestCounts } from "../../metrics.ts";

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
  | "invalid";

/**
 * The component's counts (see `metrics.ts`): a worker serves one component,
 * so its filesystem calls all count there. Calls counted: opens (`open-at`,
 * `stat-at`, `metadata-hash-at`), directory listings and write attempts;
 * denials: whatever is refused as outside the preopen or as a write.
 */
let counts: GuestCounts | undefined;

const DENIALS = new Set<ErrorCode>(["not-permitted", "access", "read-only"]);

function fail(code: ErrorCode): never {
  if (code === "read-only") counts?.count("fs");
  if (DENIALS.has(code)) counts?.count("fs", true);
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

/**
 * `wasi:filesystem/types.descriptor`: a file or directory inside a preopen,
 * known by its real path and by the file (device, inode) that path was when
 * the guest opened it. Every use checks again: a file is opened (not following
 * a link as its last component) and read only if it is still that file; a
 * directory is listed only if its path leads, through no link, to that
 * directory before and after. So a directory swapped for a link after the
 * check (by another process with write access) reaches nothing outside the
 * preopen. No descriptor keeps a file open: a guest cannot use up the
 * process's open files.
 */
export class Descriptor {
  readonly #identity: Identity;
  readonly #directory: boolean;

  /** `path` is a real path inside `root`; `info` what it was when checked. */
  constructor(readonly root: string, readonly path: string, info: fs.Stats) {
    this.#identity = { dev: info.dev, ino: info.ino };
    this.#directory = info.isDirectory();
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

  /** Metadata of this descriptor's path, if it is still the same file. */
  #stat(): fs.Stats {
    let info: fs.Stats;
    try {
      info = fs.lstatSync(this.path);
    } catch (error) {
      fsError(error);
    }
    if (!sameFile(info, this.#identity)) fail("not-permitted");
    return info;
  }

  /** Fails unless this descriptor's path still leads, through no link, to the same file. */
  #check(): void {
    if (realPath(this.path) !== this.path) fail("not-permitted");
    this.#stat();
  }

  /** The descriptor of `relative`, checked to be the file its real path names. */
  #open(relative: string): Descriptor {
    counts?.count("fs");
    this.#check();
    const real = this.#resolve(relative);
    let info: fs.Stats;
    try {
      info = fs.lstatSync(real);
    } catch (error) {
      fsError(error);
    }
    const opened = new Descriptor(this.root, real, info);
    opened.#check();
    return opened;
  }

  /** Runs `use` on this file, opened for it and checked to be the same file. */
  #withFile<T>(use: (fd: number) => T): T {
    if (this.#directory) fail("is-directory");
    let fd: number;
    try {
      fd = fs.openSync(this.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      if ((error as { code?: string }).code === "ELOOP") fail("not-permitted");
      fsError(error);
    }
    try {
      if (!sameFile(fs.fstatSync(fd), this.#identity)) fail("not-permitted");
      return use(fd);
    } catch (error) {
      fsError(error);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Up to `length` bytes at `offset`, and whether they end the file. */
  #read(length: number, offset: number): [Uint8Array, boolean] {
    return this.#withFile((fd) => {
      const buffer = new Uint8Array(length);
      const read = fs.readSync(fd, buffer, 0, length, offset);
      return [buffer.subarray(0, read), offset + read >= fs.fstatSync(fd).size];
    });
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
    if (openFlags?.directory && !opened.#directory) fail("not-directory");
    return opened;
  }
  readViaStream(offset: bigint): InputStream {
    if (this.#directory) fail("is-directory");
    let position = Number(offset);
    return new InputStream(
      new ByteQueue((queue) =>
        Promise.resolve().then(() => {
          const [bytes, end] = this.#read(65536, position);
          position += bytes.byteLength;
          queue.push(bytes);
          if (end) queue.close();
        })
      ),
    );
  }
  read(length: bigint, offset: bigint): [Uint8Array, boolean] {
    return this.#read(Number(length), Number(offset));
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
    return this.#open(path).stat();
  }
  getType(): string {
    return entryType(this.#stat());
  }
  getFlags() {
    return { read: true };
  }
  readDirectory(): DirectoryEntryStream {
    counts?.count("fs");
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
    return this.#open(path).metadataHash();
  }
  isSameObject(other: Descriptor): boolean {
    return sameFile(other.#identity, this.#identity);
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

/** The `wasi:filesystem/*` import objects for the component's preopens. */
export const filesystemImports: GuestSide = ({ preopens, counts: componentCounts }) => {
  counts = componentCounts;
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
};
