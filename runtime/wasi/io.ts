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
  /**
   * Bytes the sink takes now. A sink without it consumes each write at once;
   * one that buffers bounds what it holds, so the guest waits for room.
   */
  readonly room?: number;
  /** Resolves once the sink has room again (or failed). */
  whenRoom?(): Promise<void>;
}

/**
 * A bound on bytes buffered by the host on a guest's behalf: `take` counts
 * bytes in, `give` counts them out once consumed, and writers wait for room.
 */
export class Window {
  #used = 0;
  #waiters: (() => void)[] = [];
  constructor(readonly capacity: number) {}
  get room(): number {
    return Math.max(0, this.capacity - this.#used);
  }
  /** Bytes taken and not given back. */
  get used(): number {
    return this.#used;
  }
  take(bytes: number): void {
    this.#used += bytes;
  }
  give(bytes: number): void {
    this.#used -= bytes;
    if (this.room > 0) this.wake();
  }
  whenRoom(): Promise<void> {
    if (this.room > 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  /** Wakes every writer waiting for room (also when the sink failed: they see the failure). */
  wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/**
 * The most a guest may write per `check-write` permit, and what a buffering
 * sink holds per stream: the host copies a write out of guest memory at once.
 */
export const WRITE_BUDGET = 1 << 20;

/**
 * Set when a blocking write answered at once. V8 suspends a guest on every
 * call of a JSPI import, even one that returns no Promise, and resumes it in
 * the next microtask: whoever batches the guest's output per turn (the
 * worker's `flush`) waits for that resume instead of sending half a response.
 */
export const resuming = { soon: false };

/** `wasi:io/streams.output-stream` into a {@link ByteSink}. */
export class OutputStream {
  constructor(readonly sink: ByteSink) {}
  checkWrite(): bigint {
    this.#check();
    return BigInt(this.#permit());
  }
  write(contents: Uint8Array): void {
    this.#check();
    this.#permitted(contents.byteLength);
    // jco lifts a guest's bytes into a copy of their own (`memory.buffer.slice`): no copy here.
    this.sink.write(contents);
  }
  blockingWriteAndFlush(contents: Uint8Array): void | Promise<void> {
    // A part is copied: a view would carry the whole buffer wherever it is posted.
    return this.#blockingWrite(
      contents.byteLength,
      (at, n) => n === contents.byteLength ? contents : contents.slice(at, at + n),
    );
  }
  flush(): void {
    this.#check();
  }
  blockingFlush(): void {
    this.#check();
  }
  writeZeroes(len: bigint): void {
    this.#check();
    // Checked before anything is allocated: a huge length must not reach the host's heap.
    this.#permitted(Number(len));
    this.sink.write(new Uint8Array(Number(len)));
  }
  blockingWriteZeroesAndFlush(len: bigint): void | Promise<void> {
    return this.#blockingWrite(Number(len), (_, n) => new Uint8Array(n));
  }
  splice(src: InputStream, len: bigint): bigint {
    this.#check();
    const bytes = src.read(BigInt(Math.min(Number(len), this.#permit())));
    this.sink.write(bytes);
    return BigInt(bytes.byteLength);
  }
  async blockingSplice(src: InputStream, len: bigint): Promise<bigint> {
    await this.#room();
    const bytes = await src.blockingRead(BigInt(Math.min(Number(len), this.#permit())));
    this.write(bytes);
    return BigInt(bytes.byteLength);
  }
  subscribe(): Pollable {
    return new Pollable(
      () => this.sink.failure !== undefined || this.#permit() > 0,
      () => this.#room(),
    );
  }
  /** Bytes the guest may write now. */
  #permit(): number {
    return Math.min(this.sink.room ?? WRITE_BUDGET, WRITE_BUDGET);
  }
  #room(): Promise<void> {
    return this.sink.whenRoom?.() ?? Promise.resolve();
  }
  /** A write beyond what `check-write` permits traps, as WASI says it must. */
  #permitted(length: number) {
    const permit = this.#permit();
    if (length > permit) {
      throw new Error(`output-stream: a write of ${length} bytes, beyond the ${permit} permitted`);
    }
  }
  /**
   * Writes `length` bytes, made piece by piece by `piece(at, n)`, as room
   * comes: the guest waits (suspended) while the sink is full.
   */
  #blockingWrite(
    length: number,
    piece: (at: number, n: number) => Uint8Array,
  ): void | Promise<void> {
    resuming.soon = true;
    for (let at = 0; at < length;) {
      this.#check();
      const n = Math.min(this.#permit(), length - at);
      if (n === 0) {
        resuming.soon = false;
        const from = at;
        return this.#room().then(() =>
          this.#blockingWrite(length - from, (a, k) => piece(from + a, k))
        );
      }
      this.sink.write(piece(at, n));
      at += n;
    }
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
