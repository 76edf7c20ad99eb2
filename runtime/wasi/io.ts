/**
 * `wasi:io` for guests: errors, pollables and byte streams.
 *
 * Waiting calls (`poll`, `pollable.block`, `blocking-*`) return a Promise only
 * when they really have to wait; jco's JSPI glue then suspends the guest's
 * stack so other requests on the same worker go on.
 *
 * @module
 */

/** `wasi:io/error.error`: an opaque error with a debug string. */
export class IoError {
  constructor(readonly message: string) {}
  toDebugString(): string {
    return this.message;
  }
}

/** `wasi:io/poll.pollable`: readiness plus a way to wait for it. */
export class Pollable {
  constructor(
    readonly isReady: () => boolean,
    readonly whenReady: () => Promise<unknown>,
  ) {}
  ready(): boolean {
    return this.isReady();
  }
  block(): void | Promise<void> {
    if (!this.isReady()) return this.whenReady().then(() => {});
  }
}

const alwaysReady = new Pollable(() => true, () => Promise.resolve());

/** A pollable that is ready at once. */
export function readyPollable(): Pollable {
  return alwaysReady;
}

/** `wasi:io/poll.poll`: indices of the ready pollables, waiting for one if none is. */
export function poll(list: Pollable[]): Uint32Array | Promise<Uint32Array> {
  if (list.length === 0) throw new Error("poll called with no pollables");
  const readyIndices = () => {
    const ready: number[] = [];
    list.forEach((p, i) => p.isReady() && ready.push(i));
    return new Uint32Array(ready);
  };
  const now = readyIndices();
  if (now.length > 0) return now;
  return Promise.race(list.map((p) => p.whenReady())).then(readyIndices);
}

/** The `stream-error` variant, thrown as a result error. */
export type StreamError = { tag: "closed" } | {
  tag: "last-operation-failed";
  val: IoError;
};

const CLOSED: StreamError = { tag: "closed" };

/**
 * A queue of bytes filled by the host (a request body, a fetch response) and
 * read by the guest. `pull` is asked for more when the guest waits on an empty
 * queue, so a large body is never read ahead of the guest.
 */
export class ByteQueue {
  #chunks: Uint8Array[] = [];
  #closed = false;
  #error: string | undefined;
  #waiters: (() => void)[] = [];
  #pulling = false;

  constructor(readonly pull?: (queue: ByteQueue) => Promise<void>) {}

  /** A queue holding `bytes` and then closed. */
  static of(bytes: Uint8Array | null): ByteQueue {
    const queue = new ByteQueue();
    if (bytes && bytes.byteLength > 0) queue.push(bytes);
    queue.close();
    return queue;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength > 0) this.#chunks.push(chunk);
    this.#wake();
  }
  close(): void {
    this.#closed = true;
    this.#wake();
  }
  fail(message: string): void {
    this.#error = message;
    this.close();
  }
  get ready(): boolean {
    return this.#chunks.length > 0 || this.#closed;
  }
  get closed(): boolean {
    return this.#closed;
  }

  /** Take up to `max` bytes now; empty when nothing is buffered yet. */
  take(max: number): Uint8Array {
    const first = this.#chunks[0];
    if (!first) {
      if (this.#error !== undefined) {
        const error = this.#error;
        this.#error = undefined;
        throw { tag: "last-operation-failed", val: new IoError(error) };
      }
      if (this.#closed) throw CLOSED;
      this.#startPull();
      return new Uint8Array(0);
    }
    if (first.byteLength <= max) {
      this.#chunks.shift();
      return first;
    }
    this.#chunks[0] = first.subarray(max);
    return first.subarray(0, max);
  }

  wait(): Promise<void> {
    if (this.ready) return Promise.resolve();
    this.#startPull();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #startPull() {
    if (!this.pull || this.#pulling || this.#closed) return;
    this.#pulling = true;
    this.pull(this).catch((e) => this.fail(String(e?.message ?? e)))
      .finally(() => this.#pulling = false);
  }

  #wake() {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** `wasi:io/streams.input-stream` over a {@link ByteQueue}. */
export class InputStream {
  constructor(readonly queue: ByteQueue) {}
  read(len: bigint): Uint8Array {
    return this.queue.take(Number(len));
  }
  blockingRead(len: bigint): Uint8Array | Promise<Uint8Array> {
    if (this.queue.ready) return this.read(len);
    return this.queue.wait().then(() => this.read(len));
  }
  skip(len: bigint): bigint {
    return BigInt(this.read(len).byteLength);
  }
  blockingSkip(len: bigint): bigint | Promise<bigint> {
    const bytes = this.blockingRead(len);
    return bytes instanceof Promise
      ? bytes.then((b) => BigInt(b.byteLength))
      : BigInt(bytes.byteLength);
  }
  subscribe(): Pollable {
    return new Pollable(() => this.queue.ready, () => this.queue.wait());
  }
}

/** Where an {@link OutputStream}'s bytes go. */
export interface ByteSink {
  write(bytes: Uint8Array): void;
  /** Set when the sink no longer accepts bytes (the client went away). */
  readonly failure?: string;
}

/** How many bytes a guest may write per call; the host copies them out at once. */
const WRITE_BUDGET = 1n << 20n;

/** `wasi:io/streams.output-stream` into a {@link ByteSink}. */
export class OutputStream {
  constructor(readonly sink: ByteSink) {}
  checkWrite(): bigint {
    this.#check();
    return WRITE_BUDGET;
  }
  write(contents: Uint8Array): void {
    this.#check();
    // The guest's memory is reused after the call returns: keep a copy.
    this.sink.write(contents.slice());
  }
  blockingWriteAndFlush(contents: Uint8Array): void {
    this.write(contents);
  }
  flush(): void {
    this.#check();
  }
  blockingFlush(): void {
    this.#check();
  }
  writeZeroes(len: bigint): void {
    this.write(new Uint8Array(Number(len)));
  }
  blockingWriteZeroesAndFlush(len: bigint): void {
    this.writeZeroes(len);
  }
  splice(src: InputStream, len: bigint): bigint {
    const bytes = src.read(len);
    this.write(bytes);
    return BigInt(bytes.byteLength);
  }
  async blockingSplice(src: InputStream, len: bigint): Promise<bigint> {
    const bytes = await src.blockingRead(len);
    this.write(bytes);
    return BigInt(bytes.byteLength);
  }
  subscribe(): Pollable {
    return readyPollable();
  }
  #check() {
    if (this.sink.failure !== undefined) {
      throw {
        tag: "last-operation-failed",
        val: new IoError(this.sink.failure),
      };
    }
  }
}

/** The `wasi:io/*` import objects. */
export function ioImports(): Record<string, Record<string, unknown>> {
  return {
    "wasi:io/error": { Error: IoError },
    "wasi:io/poll": { Pollable, poll },
    "wasi:io/streams": { InputStream, OutputStream },
  };
}
