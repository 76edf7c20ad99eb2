/**
 * A component's outbound HTTP requests in flight, bounded by its
 * `limits.outbound` over all its workers. The count lives in shared memory,
 * so a worker takes a slot without asking the server thread; each worker
 * also counts what it holds, so that when it is dropped (even mid-request,
 * even looping) the server gives its slots back.
 *
 * @module
 */
import { IdTable } from "../id_table.ts";

/** The component-wide count, shared by its workers. */
export interface OutboundShare {
  limit: number;
  /** One Int32: outbound requests in flight. */
  inFlight: SharedArrayBuffer;
}

/** A held count of a worker that was dropped: whatever it does later is not counted. */
const DROPPED = -(2 ** 30);

/** A new count for a component allowed `limit` outbound requests at once. */
export function outboundShare(limit: number): OutboundShare {
  return { limit, inFlight: new SharedArrayBuffer(4) };
}

/** A worker's own count of slots held (one Int32). */
export function heldSlots(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/** Server side: gives back the slots of a dropped worker, whose `held` is then ignored. */
export function releaseWorker(share: OutboundShare, held: SharedArrayBuffer): void {
  const inFlight = new Int32Array(share.inFlight);
  const count = Atomics.exchange(new Int32Array(held), 0, DROPPED);
  if (count > 0) Atomics.sub(inFlight, 0, count);
  Atomics.notify(inFlight, 0);
}

/** Worker side: slots taken for the requests the worker serves. */
export class OutboundSlots {
  readonly #inFlight: Int32Array;
  readonly #held: Int32Array;
  /**
   * Requests in flight on this worker, with the releases of the slots each
   * still holds (made once it takes one). Not a `Map`: see `id_table.ts`.
   */
  readonly #requests = new IdTable<Set<() => void> | undefined>();

  constructor(readonly share: OutboundShare, held: SharedArrayBuffer) {
    this.#inFlight = new Int32Array(share.inFlight);
    this.#held = new Int32Array(held);
  }

  /** Request `id` started: it may take slots. */
  begin(id: number): void {
    this.#requests.set(id, undefined);
  }

  /** Request `id` ended: what it still holds is given back. */
  end(id: number): void {
    const held = this.#requests.get(id);
    this.#requests.delete(id);
    for (const release of held ?? []) release();
  }

  /**
   * Waits for a slot for request `id`; resolves with its release (which may
   * be called more than once). Rejects when the request ended meanwhile.
   */
  async acquire(id: number): Promise<() => void> {
    for (;;) {
      const count = Atomics.load(this.#inFlight, 0);
      if (count < this.share.limit) {
        if (Atomics.compareExchange(this.#inFlight, 0, count, count + 1) !== count) continue;
        if (Atomics.add(this.#held, 0, 1) < 0) {
          Atomics.sub(this.#inFlight, 0, 1);
          throw new Error("the worker is stopping");
        }
        return this.#track(id);
      }
      const waiting = Atomics.waitAsync(this.#inFlight, 0, count);
      if (waiting.async) await waiting.value;
    }
  }

  #track(id: number): () => void {
    // A request that ended has no entry: its slot is given back at once.
    const held = this.#requests.has(id)
      ? this.#requests.get(id) ?? new Set<() => void>()
      : undefined;
    if (held) this.#requests.set(id, held);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      held?.delete(release);
      // A worker dropped meanwhile had its slots given back by the server.
      if (Atomics.sub(this.#held, 0, 1) > 0) {
        Atomics.sub(this.#inFlight, 0, 1);
        Atomics.notify(this.#inFlight, 0);
      }
    };
    if (!held) {
      release();
      throw new Error("the request ended");
    }
    held.add(release);
    return release;
  }
}
