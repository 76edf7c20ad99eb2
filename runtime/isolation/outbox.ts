/**
 * The messages one side of a worker queues in a turn of its event loop, sent
 * as one `postMessage` once the turn's microtasks ran: a `postMessage` costs
 * far more than the few microseconds a guest needs to answer. Both the server
 * thread (`worker_link.ts`) and the worker (`component_worker.ts`) send
 * through one.
 *
 * @module
 */

/** One message, or the messages one turn produced. */
export type Batch<M> = M | { type: "batch"; messages: M[] };

/** How an outbox delivers what a turn queued. */
export interface OutboxOptions<M> {
  /** Posts one message or a batch, moving `transfer` (empty: nothing moves). */
  post(message: Batch<M>, transfer: ArrayBuffer[]): void;
  /** The buffer a message's bytes may move in rather than be copied, if any. */
  transferOf(message: M): ArrayBuffer | undefined;
  /**
   * Turns the turn's messages into those still to post (e.g. merged, or sent
   * another way); by default all are posted as they are.
   */
  prepare?(messages: M[]): M[];
  /**
   * Called before each flush with the microtasks it already waited: true
   * makes it wait one more (the worker lets a guest that is about to resume
   * add to the batch).
   */
  wait?(hops: number): boolean;
}

/** Queues messages and posts a turn's worth as one. */
export class Outbox<M> {
  #messages: M[] = [];

  constructor(readonly options: OutboxOptions<M>) {}

  /** Queues `message`; the first of a turn schedules the flush. */
  post(message: M): void {
    this.#messages.push(message);
    if (this.#messages.length === 1) queueMicrotask(() => this.#flush(0));
  }

  #flush(hops: number) {
    if (this.options.wait?.(hops)) return queueMicrotask(() => this.#flush(hops + 1));
    const queued = this.#messages;
    this.#messages = [];
    const messages = this.options.prepare ? this.options.prepare(queued) : queued;
    if (messages.length === 0) return;
    const transfer = new Set<ArrayBuffer>();
    for (const message of messages) {
      const buffer = this.options.transferOf(message);
      if (buffer) transfer.add(buffer);
    }
    this.options.post(
      messages.length === 1 ? messages[0] : { type: "batch", messages },
      [...transfer],
    );
  }
}
