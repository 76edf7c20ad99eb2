/**
 * The recent load of each component for the admin page's charts: every
 * {@link SAMPLE_MS} a sample of its requests per second and p99 latency over
 * that interval, read from the latency histogram of its metrics; the last
 * {@link KEPT} samples are kept.
 *
 * @module
 */
import type { ComponentRecord } from "../component.ts";
import { BUCKETS } from "../metrics.ts";

/** How often a sample is taken. */
export const SAMPLE_MS = 10_000;

/** Samples kept per component: five minutes. */
const KEPT = 30;

/** A component's load over one interval. */
export interface LoadSample {
  /** When the interval ended (ms since the epoch). */
  at: number;
  rps: number;
  /** Upper bound of the histogram bucket holding the 99th percentile, in ms; null when none or above the last bound. */
  p99Ms: number | null;
}

/** The ring of samples per component (see the module). */
export class RecentLoad {
  readonly #last = new Map<string, { at: number; counts: number[] }>();
  readonly #samples = new Map<string, LoadSample[]>();

  /** Takes a sample of every component at `now`; the first one only sets the baseline. */
  sample(components: Iterable<Pick<ComponentRecord, "name" | "metrics">>, now = Date.now()): void {
    for (const { name, metrics } of components) {
      const counts = metrics.latencyCounts();
      const last = this.#last.get(name);
      this.#last.set(name, { at: now, counts });
      if (!last || now <= last.at) continue;
      const delta = counts.map((count, i) => count - last.counts[i]);
      const total = delta.reduce((sum, n) => sum + n, 0);
      const samples = this.#samples.get(name) ?? [];
      samples.push({ at: now, rps: total / ((now - last.at) / 1000), p99Ms: p99Ms(delta, total) });
      this.#samples.set(name, samples.slice(-KEPT));
    }
  }

  /** The samples by component name, oldest first. */
  toJSON(): Record<string, LoadSample[]> {
    return Object.fromEntries(this.#samples);
  }
}

/** The bound of the bucket where the 99th percentile of `total` requests falls. */
function p99Ms(delta: number[], total: number): number | null {
  if (total === 0) return null;
  const rank = Math.ceil(total * 0.99);
  let seen = 0;
  for (let i = 0; i < BUCKETS.length; i++) {
    seen += delta[i];
    if (seen >= rank) return BUCKETS[i] * 1000;
  }
  return null;
}
