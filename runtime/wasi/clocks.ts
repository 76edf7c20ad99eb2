/**
 * `wasi:clocks` for guests: a monotonic clock with timer pollables and the
 * wall clock.
 *
 * @module
 */
import { Pollable } from "./io.ts";

const NS_PER_MS = 1_000_000n;

/** Monotonic nanoseconds since the worker started. */
function monotonicNow(): bigint {
  return BigInt(Math.round(performance.now() * 1e6));
}

function timerUntil(deadline: bigint): Pollable {
  let timer: Promise<void> | undefined;
  return new Pollable(
    () => monotonicNow() >= deadline,
    () =>
      timer ??= new Promise((resolve) => {
        const ms = Number((deadline - monotonicNow()) / NS_PER_MS);
        setTimeout(resolve, Math.max(0, ms) + 1);
      }),
  );
}

/** The `wasi:clocks/*` import objects. */
export function clockImports(): Record<string, Record<string, unknown>> {
  return {
    "wasi:clocks/monotonic-clock": {
      now: monotonicNow,
      resolution: () => 1000n,
      subscribeInstant: (instant: bigint) => timerUntil(instant),
      subscribeDuration: (ns: bigint) => timerUntil(monotonicNow() + ns),
    },
    "wasi:clocks/wall-clock": {
      now: () => {
        const ms = Date.now();
        return {
          seconds: BigInt(Math.floor(ms / 1000)),
          nanoseconds: (ms % 1000) * 1_000_000,
        };
      },
      resolution: () => ({ seconds: 0n, nanoseconds: 1_000_000 }),
    },
  };
}
