/**
 * The least framing a request hand-over needs: `[id u32][length u32][bytes]`,
 * a turn's frames sent in one write (flushed by `setImmediate`, after the
 * turn's I/O), and a reader that splits a byte stream back into frames.
 *
 * @module
 */

/** Collects a turn's frames and hands them to `send` as one buffer. */
export class Batch {
  #frames: Uint8Array[] = [];
  #size = 0;
  #scheduled = false;
  constructor(private readonly send: (bytes: Uint8Array) => void) {}

  /** Queues frame `id` with `payload`. */
  push(id: number, payload: Uint8Array): void {
    const frame = new Uint8Array(8 + payload.length);
    const view = new DataView(frame.buffer);
    view.setUint32(0, id);
    view.setUint32(4, payload.length);
    frame.set(payload, 8);
    this.#frames.push(frame);
    this.#size += frame.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    const all = new Uint8Array(this.#size);
    let at = 0;
    for (const frame of this.#frames) {
      all.set(frame, at);
      at += frame.length;
    }
    this.#frames = [];
    this.#size = 0;
    this.#scheduled = false;
    this.send(all);
  }
}

/** Calls `onFrame` for each whole frame read from `source` until it ends. */
export async function readFrames(
  source: { read(into: Uint8Array): Promise<number | null> },
  onFrame: (id: number, payload: Uint8Array<ArrayBuffer>) => void,
): Promise<void> {
  let buffer = new Uint8Array(1 << 16);
  let have = 0;
  while (true) {
    if (have === buffer.length) {
      const bigger = new Uint8Array(buffer.length * 2);
      bigger.set(buffer);
      buffer = bigger;
    }
    const n = await source.read(buffer.subarray(have));
    if (n === null) return;
    have += n;
    let at = 0;
    while (have - at >= 8) {
      const view = new DataView(buffer.buffer, at);
      const length = view.getUint32(4);
      if (have - at < 8 + length) break;
      onFrame(view.getUint32(0), buffer.slice(at + 8, at + 8 + length));
      at += 8 + length;
    }
    buffer.copyWithin(0, at, have);
    have -= at;
  }
}

/**
 * Set in the id of a frame that is a database call (child → server →
 * database process) or its answer, rather than a request or a response.
 */
export const DATABASE_CALL = 0x8000_0000;

/** Frames written to stdout with `writeSync`, as Pier's native child and database processes do. */
export function stdoutBatch(): Batch {
  return new Batch((bytes) => {
    for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
  });
}

/** What every floor's guest side does per request: a `Request` in, a `Response` read out. */
export async function answer(url: string): Promise<Uint8Array<ArrayBuffer>> {
  const request = new Request(url);
  const response = await Promise.resolve(
    new Response(`hello from ${new URL(request.url).pathname}`),
  );
  return new Uint8Array(await response.arrayBuffer());
}
