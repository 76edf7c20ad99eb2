/**
 * One timer for many requests under one time limit: the oldest request in
 * flight is the first to run past it, so only its deadline needs a timer
 * (a timer per request cost more than the rest of the server thread's
 * bookkeeping of a request).
 *
 * @module
 */

/** A request in flight, with the time (`performance.now()`) it must be answered by. */
export interface WithDeadline {
  deadline: number;
}

/** Calls `overdue` once the oldest of `pending` (its first entry) is past its deadline. */
export class OldestDeadline {
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly pending: { first(): WithDeadline | undefined },
    readonly overdue: () => void,
  ) {}

  /** Watches the oldest request: call after adding one. */
  watch(): void {
    if (this.#timer !== undefined) return;
    const oldest = this.pending.first();
    if (!oldest) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const first = this.pending.first();
      if (first && first.deadline <= performance.now()) this.overdue();
      else this.watch();
    }, Math.max(0, oldest.deadline - performance.now()));
  }

  /** Stops watching (the requests are gone). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
