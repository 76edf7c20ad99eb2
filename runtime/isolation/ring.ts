/**
 * A one-way channel between two threads over a SharedArrayBuffer: one
 * thread writes records, the other reads them. A record is a JSON head and
 * a byte body; a tagged record's head goes through the ring's codec (for
 * values JSON has no form of), and tells its reader it is of the other kind
 * the ring carries (see `protocol.ts`). It carries the hot path (requests in, whole responses out)
 * without `postMessage`'s cost per message (a structured clone, a wake-up of
 * the other thread's event loop, a message event): while the reader keeps
 * up, records need no wake-up at all. What does not fit goes by
 * `postMessage` instead.
 *
 * Layout: six Int32 slots (wake sequence, write offset, read offset, bytes
 * in use, reader waiting, closed), then the data. A record is its length, its head's length (the top
 * bit: tagged), the head (UTF-8 JSON) and the body, padded to 4 bytes; a length of -1 marks the
 * unused end of the data before the writer went back to its start.
 *
 * @module
 */

/** How the heads of a ring's tagged records become JSON and back. */
export interface HeadCodec {
  /** `head` in a form `JSON.stringify` keeps whole. */
  tag(head: unknown): unknown;
  /** What {@link tag} made, back from `JSON.parse`'s result. */
  untag(parsed: unknown): unknown;
}

const SEQ = 0;
const WRITE = 1;
const READ = 2;
const USED = 3;
/** 1 while the reader waits: only then does the writer pay for an `Atomics.notify`. */
const WAITING = 4;
/** 1 once either end closed the ring: both threads see it. */
const CLOSED = 5;
const HEADER_BYTES = 24;
const WRAP = -1;
/** The bit of a record's head length that marks it tagged. */
const TAGGED_BIT = 0x8000_0000;

/**
 * After this many rounds with records waiting, the reader lets other tasks
 * (timers, messages) run before it reads on.
 */
const ROUNDS_BEFORE_YIELD = 16;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The ring bytes of a record: its length, its head's length, head and body, padded to 4. */
function recordBytes(headLength: number, bodyLength: number): number {
  return 4 + ((4 + headLength + bodyLength + 3) & ~3);
}

/** One record: its head as parsed JSON and its body (a copy the reader owns). */
export interface RingRecord {
  head: unknown;
  body: Uint8Array;
  /** Written with {@link Ring.write}'s `tagged`: its head went through the codec. */
  tagged: boolean;
}

/** One end of a ring; both threads make one from the same buffer. */
export class Ring {
  readonly #control: Int32Array;
  readonly #data: Uint8Array;
  readonly #view: DataView;
  readonly #size: number;

  /** A buffer for a ring that holds `bytes` of records (rounded down to 4). */
  static buffer(bytes: number): SharedArrayBuffer {
    return new SharedArrayBuffer(HEADER_BYTES + (bytes & ~3));
  }

  /**
   * `codec` turns the heads of tagged records into JSON and back (both ends
   * give the same one).
   */
  constructor(buffer: SharedArrayBuffer, readonly codec?: HeadCodec) {
    this.#control = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(buffer, HEADER_BYTES);
    this.#view = new DataView(buffer, HEADER_BYTES);
    this.#size = this.#data.byteLength;
  }

  /**
   * Writes one record; false (and nothing written) when it does not fit now
   * or is larger than a quarter of the ring: send it another way then.
   * A `tagged` record's head goes through the ring's codec.
   * Call {@link notify} once a batch is written.
   */
  write(head: unknown, body?: Uint8Array | null, tagged = false): boolean {
    const json = JSON.stringify(tagged ? this.codec!.tag(head) : head);
    const tag = tagged ? TAGGED_BIT : 0;
    const bodyLength = body?.byteLength ?? 0;
    // Straight into the ring when the head's longest UTF-8 form (3 bytes per UTF-16 unit) fits:
    // no buffer of its own, no second copy.
    const most = json.length * 3;
    const direct = (at: number) =>
      encoder.encodeInto(json, this.#data.subarray(at, at + most)).written;
    if (this.#put(most, bodyLength, direct, body, tag)) return true;
    const headBytes = encoder.encode(json);
    const copied = (at: number) => {
      this.#data.set(headBytes, at);
      return headBytes.byteLength;
    };
    return this.#put(headBytes.byteLength, bodyLength, copied, body, tag);
  }

  /**
   * Writes a record whose head takes at most `headMost` bytes, written by
   * `writeHead` at the offset given (it returns the bytes it wrote); `tag` is
   * or-ed into the head's length.
   */
  #put(
    headMost: number,
    bodyLength: number,
    writeHead: (at: number) => number,
    body: Uint8Array | null | undefined,
    tag: number,
  ): boolean {
    const needMost = recordBytes(headMost, bodyLength);
    if (needMost > this.#size / 4) return false;
    let at = this.#control[WRITE];
    const waste = at + needMost > this.#size ? this.#size - at : 0;
    if (Atomics.load(this.#control, USED) + waste + needMost > this.#size) return false;
    if (waste) {
      this.#view.setInt32(at, WRAP, true);
      at = 0;
    }
    const headLength = writeHead(at + 8);
    this.#view.setInt32(at, 4 + headLength + bodyLength, true);
    this.#view.setUint32(at + 4, headLength | tag, true);
    if (body) this.#data.set(body, at + 8 + headLength);
    const need = recordBytes(headLength, bodyLength);
    this.#control[WRITE] = (at + need) % this.#size;
    // Publishes the record: the reader sees its bytes once it sees this count.
    Atomics.add(this.#control, USED, waste + need);
    return true;
  }

  /**
   * Wakes the reader if it waits. A notify wakes the other thread's event
   * loop under V8's process-wide lock (~5 µs measured here, a tenth of the
   * server thread's time per request): a reader busy reading is sent none.
   * The writer clears the flag as it notifies: until the woken reader runs
   * again, later batches need no notify of their own (counted under load: the
   * server notified ~1.0 times per request for ~0.4 waits of the worker).
   */
  notify(): void {
    Atomics.add(this.#control, SEQ, 1);
    if (Atomics.exchange(this.#control, WAITING, 0) !== 0) Atomics.notify(this.#control, SEQ);
  }

  /** The next record, or undefined when there is none. */
  read(): RingRecord | undefined {
    if (Atomics.load(this.#control, USED) === 0) return undefined;
    let at = this.#control[READ];
    if (this.#view.getInt32(at, true) === WRAP) {
      Atomics.sub(this.#control, USED, this.#size - at);
      at = 0;
    }
    const length = this.#view.getInt32(at, true);
    const word = this.#view.getUint32(at + 4, true);
    const tagged = word >= TAGGED_BIT;
    const headLength = tagged ? word - TAGGED_BIT : word;
    const headStart = at + 8;
    const bodyStart = headStart + headLength;
    const json = decoder.decode(this.#data.slice(headStart, bodyStart));
    const parsed = JSON.parse(json);
    const head = tagged ? this.codec!.untag(parsed) : parsed;
    const body = this.#data.slice(bodyStart, at + 4 + length);
    const need = recordBytes(headLength, length - 4 - headLength);
    this.#control[READ] = (at + need) % this.#size;
    // Frees the space only after the bytes were copied out.
    Atomics.sub(this.#control, USED, need);
    return { head, body, tagged };
  }

  /**
   * Reads records as they come and hands each to `receive`, until
   * {@link close}. Waits without blocking the thread's event loop.
   */
  async listen(receive: (record: RingRecord) => void): Promise<void> {
    let busyRounds = 0;
    while (!this.closed) {
      const seq = Atomics.load(this.#control, SEQ);
      let record = this.read();
      if (record) {
        for (; record && !this.closed; record = this.read()) receive(record);
        if (++busyRounds >= ROUNDS_BEFORE_YIELD) {
          busyRounds = 0;
          await new Promise((resolve) => setTimeout(resolve, 0));
        } else await null;
        continue;
      }
      busyRounds = 0;
      Atomics.store(this.#control, WAITING, 1);
      // A writer that saw no flag wrote before it was set: its record is there to read now.
      if (Atomics.load(this.#control, USED) === 0) {
        // A record written after `seq` was read changed it: then this does not wait.
        const waiting = Atomics.waitAsync(this.#control, SEQ, seq);
        if (waiting.async) await waiting.value;
      }
      Atomics.store(this.#control, WAITING, 0);
    }
  }

  /** True once either end closed the ring. */
  get closed(): boolean {
    return Atomics.load(this.#control, CLOSED) !== 0;
  }

  /** Ends {@link listen}, whichever end calls it: the other thread sees it too. */
  close(): void {
    Atomics.store(this.#control, CLOSED, 1);
    this.notify();
  }
}
