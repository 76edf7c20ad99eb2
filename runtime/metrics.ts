/**
 * Pier's counters, and their Prometheus text exposition for `GET /_/metrics`.
 * Each component's counters are plain numbers bumped where things happen
 * (the server's dispatch, the worker links, the capability hosts, the job
 * runner); what the component's workers count themselves (outbound fetches,
 * filesystem calls) lives in shared memory they add to without a message
 * ({@link GuestCounts}). Gauges (workers, instances) are read at the scrape.
 *
 * @module
 */

/** The capabilities whose calls are counted. */
export type CapabilityKind = "db" | "kv" | "fetch" | "fs";

const KINDS: CapabilityKind[] = ["db", "kv", "fetch", "fs"];

/** Upper bounds of the latency histogram's buckets, in seconds. */
export const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Characters of an error kept as a component's last error. */
const MAX_ERROR_CHARS = 2000;

/** The status classes requests are counted by: index `status / 100 - 1`. */
const CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/** Slots of a component's {@link GuestCounts}: calls and denials of fetch, then of fs. */
const GUEST_SLOTS = { fetch: 0, fs: 2 } as const;

/**
 * Worker side: counts a component's outbound fetches and filesystem calls
 * (and their denials) in the shared memory its server-side
 * {@link ComponentMetrics} reads; an atomic add per call, no message.
 */
export class GuestCounts {
  readonly #counts: BigInt64Array;

  constructor(shared: SharedArrayBuffer) {
    this.#counts = new BigInt64Array(shared);
  }

  /** One call of `kind`, refused or not. */
  count(kind: "fetch" | "fs", denied = false): void {
    Atomics.add(this.#counts, GUEST_SLOTS[kind] + (denied ? 1 : 0), 1n);
  }

  /** Calls (or denials) of `kind` so far. */
  read(kind: "fetch" | "fs", denied: boolean): number {
    return Number(Atomics.load(this.#counts, GUEST_SLOTS[kind] + (denied ? 1 : 0)));
  }
}

/** One component's counters. */
export class ComponentMetrics {
  /** Requests by method, registered route and status class. */
  readonly #requests = new Map<string, Map<string, number[]>>();
  /** Request latency: a count per bucket (the last for +Inf), and the sum in seconds. */
  readonly #latency = { buckets: new Array<number>(BUCKETS.length + 1).fill(0), sum: 0 };
  /** Requests being served now. */
  inFlight = 0;
  /** Workers replaced after a crash or a time-out. */
  restarts = 0;
  /** The last error Pier logged of the component (a trap, a restart, a failed start). */
  lastError: { at: number; message: string } | undefined;
  /** Requests failed with a 500 by the guest (a trap, a crash, no response). */
  traps = 0;
  /** Requests that ran past the time limit (504). */
  timeouts = 0;
  /** Requests refused with a 503 (`limits.concurrency`, or no worker could start). */
  busy = 0;
  /** Capability calls and replies too big for a worker's ring, sent as messages instead. */
  capabilityMessages = 0;
  /** Capability calls answered on the server thread (db, kv), by kind. */
  readonly calls: Record<"db" | "kv", number> = { db: 0, kv: 0 };
  /** Of those, the ones refused by the component's grants. */
  readonly denied: Record<"db" | "kv", number> = { db: 0, kv: 0 };
  /** Job runs by outcome (`ok`, `failed`, `skipped`). */
  readonly jobRuns = new Map<string, number>();
  /** What the workers count: shared with each of them (see {@link GuestCounts}). */
  readonly guestShared = new SharedArrayBuffer(4 * BigInt64Array.BYTES_PER_ELEMENT);
  readonly #guest = new GuestCounts(this.guestShared);

  /** A request to `method path` ended with `status` after `ms` milliseconds. */
  request(method: string, path: string, status: number, ms: number): void {
    let byPath = this.#requests.get(method);
    if (!byPath) this.#requests.set(method, byPath = new Map());
    let byClass = byPath.get(path);
    if (!byClass) byPath.set(path, byClass = [0, 0, 0, 0, 0]);
    byClass[Math.min(4, Math.max(0, Math.floor(status / 100) - 1))]++;
    const seconds = ms / 1000;
    let bucket = 0;
    while (bucket < BUCKETS.length && seconds > BUCKETS[bucket]) bucket++;
    this.#latency.buckets[bucket]++;
    this.#latency.sum += seconds;
  }

  /** Requests so far per latency bucket (of {@link BUCKETS}, then +Inf): a copy. */
  latencyCounts(): number[] {
    return [...this.#latency.buckets];
  }

  /** Notes `message` as the component's last error, at `at` (ms since the epoch). */
  noteError(message: string, at = Date.now()): void {
    // A guest's stack can be long: the start says what happened.
    this.lastError = { at, message: message.slice(0, MAX_ERROR_CHARS) };
  }

  /** A request failed in the component with `status` (the guest's own responses are not counted). */
  guestError(status: number): void {
    if (status === 500) this.traps++;
    else if (status === 504) this.timeouts++;
    else if (status === 503) this.busy++;
  }

  /** A capability call of `kind` answered on the server thread, refused or not. */
  capabilityCall(kind: "db" | "kv", denied: boolean): void {
    this.calls[kind]++;
    if (denied) this.denied[kind]++;
  }

  /** A job run ended with `outcome`. */
  jobRun(outcome: string): void {
    this.jobRuns.set(outcome, (this.jobRuns.get(outcome) ?? 0) + 1);
  }

  /** The samples of this component, labelled `component`, appended to `out` by metric. */
  samples(component: string, gauges: { workers: number; instances: number }, out: Exposition) {
    const c = { component };
    for (const [method, byPath] of this.#requests) {
      for (const [route, byClass] of byPath) {
        byClass.forEach((count, i) => {
          if (count) {
            out.add("pier_requests_total", { ...c, method, route, class: CLASSES[i] }, count);
          }
        });
      }
    }
    let cumulative = 0;
    BUCKETS.forEach((le, i) => {
      cumulative += this.#latency.buckets[i];
      out.add("pier_request_duration_seconds_bucket", { ...c, le: String(le) }, cumulative);
    });
    cumulative += this.#latency.buckets[BUCKETS.length];
    out.add("pier_request_duration_seconds_bucket", { ...c, le: "+Inf" }, cumulative);
    out.add("pier_request_duration_seconds_sum", c, this.#latency.sum);
    out.add("pier_request_duration_seconds_count", c, cumulative);
    out.add("pier_requests_in_flight", c, this.inFlight);
    out.add("pier_instances", c, gauges.instances);
    out.add("pier_workers", c, gauges.workers);
    out.add("pier_worker_restarts_total", c, this.restarts);
    out.add("pier_traps_total", c, this.traps);
    out.add("pier_timeouts_total", c, this.timeouts);
    out.add("pier_busy_total", c, this.busy);
    out.add("pier_capability_messages_total", c, this.capabilityMessages);
    for (const kind of KINDS) {
      const calls = kind === "db" || kind === "kv"
        ? [this.calls[kind], this.denied[kind]]
        : [this.#guest.read(kind, false), this.#guest.read(kind, true)];
      out.add("pier_capability_calls_total", { ...c, kind }, calls[0]);
      out.add("pier_capability_denied_total", { ...c, kind }, calls[1]);
    }
    for (const [outcome, count] of this.jobRuns) {
      out.add("pier_job_runs_total", { ...c, outcome }, count);
    }
  }
}

const byName = new Map<string, ComponentMetrics>();

/** The counters of component `name`, made on first use; they outlive a reload. */
export function componentMetrics(name: string): ComponentMetrics {
  let metrics = byName.get(name);
  if (!metrics) byName.set(name, metrics = new ComponentMetrics());
  return metrics;
}

/** Each metric's type and help line, in the order they are written. */
const METRICS: [string, "counter" | "gauge" | "histogram", string][] = [
  ["pier_requests_total", "counter", "Requests by component, method, route and status class."],
  ["pier_request_duration_seconds", "histogram", "Time to the response head, by component."],
  ["pier_requests_in_flight", "gauge", "Requests being served."],
  ["pier_instances", "gauge", "Guest instances alive in the component's workers."],
  ["pier_workers", "gauge", "Workers running."],
  ["pier_worker_restarts_total", "counter", "Workers replaced after a crash or a time-out."],
  ["pier_traps_total", "counter", "Requests failed with 500 by the guest (trap, crash)."],
  ["pier_timeouts_total", "counter", "Requests past the time limit (504)."],
  ["pier_busy_total", "counter", "Requests refused with 503 (limits.concurrency)."],
  [
    "pier_capability_messages_total",
    "counter",
    "Capability calls and replies too big for a worker's ring, sent as messages.",
  ],
  ["pier_capability_calls_total", "counter", "Capability calls by kind (db, kv, fetch, fs)."],
  ["pier_capability_denied_total", "counter", "Capability calls refused by the grants, by kind."],
  ["pier_job_runs_total", "counter", "Job runs by outcome."],
  ["pier_resident_memory_bytes", "gauge", "Resident memory of the server process."],
  ["pier_event_loop_delay_seconds", "gauge", "Largest event-loop delay in the last 5 s."],
  [
    "pier_compile_cache_hits_total",
    "counter",
    "Components whose compiled code came from the cache.",
  ],
  ["pier_compile_cache_misses_total", "counter", "Components compiled afresh."],
];

/** Escapes a label value as the text format wants. */
const escape = (value: string) =>
  value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

/** Samples gathered by metric family, then written in the text format. */
export class Exposition {
  readonly #lines = new Map<string, string[]>(METRICS.map(([name]) => [name, []]));

  /** Adds sample `name{labels} value`; a histogram's series go under the family's name. */
  add(name: string, labels: Record<string, string>, value: number): void {
    const family = name.replace(/_(bucket|sum|count)$/, "");
    const lines = this.#lines.get(this.#lines.has(name) ? name : family)!;
    const text = Object.entries(labels).map(([k, v]) => `${k}="${escape(v)}"`).join(",");
    lines.push(`${name}${text ? `{${text}}` : ""} ${value}`);
  }

  /** The whole exposition, each family with its HELP and TYPE lines. */
  text(): string {
    return METRICS.map(([name, type, help]) =>
      [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...this.#lines.get(name)!].join("\n")
    ).join("\n") + "\n";
  }
}

/** How often the event loop's delay is sampled, and over how long its largest is kept. */
const LOOP_SAMPLE_MS = 100;
const LOOP_WINDOW_MS = 5000;
let loopDelay = { max: 0, windowMax: 0, windowStart: 0 };

/**
 * Starts sampling the event loop's delay: a timer that notes how late it
 * fires. It keeps no process alive.
 */
export function watchEventLoop(): void {
  let expected = performance.now() + LOOP_SAMPLE_MS;
  loopDelay = { max: 0, windowMax: 0, windowStart: performance.now() };
  const timer = setInterval(() => {
    const now = performance.now();
    loopDelay.windowMax = Math.max(loopDelay.windowMax, now - expected);
    if (now - loopDelay.windowStart >= LOOP_WINDOW_MS) {
      loopDelay = { max: loopDelay.windowMax, windowMax: 0, windowStart: now };
    }
    expected = now + LOOP_SAMPLE_MS;
  }, LOOP_SAMPLE_MS);
  Deno.unrefTimer(timer);
}

/** A component as the exposition sees it. */
export interface MeteredComponent {
  name: string;
  cache?: "hit" | "miss";
  host?: { workers: number; instances: number };
}

/** The text of `GET /_/metrics` for `components` and the process. */
export function exposition(components: MeteredComponent[]): string {
  const out = new Exposition();
  for (const { name, host } of components) {
    componentMetrics(name).samples(name, host ?? { workers: 0, instances: 0 }, out);
  }
  out.add("pier_resident_memory_bytes", {}, Deno.memoryUsage().rss);
  out.add(
    "pier_event_loop_delay_seconds",
    {},
    Math.max(loopDelay.max, loopDelay.windowMax) / 1000,
  );
  const cached = (hit: "hit" | "miss") => components.filter((c) => c.cache === hit).length;
  out.add("pier_compile_cache_hits_total", {}, cached("hit"));
  out.add("pier_compile_cache_misses_total", {}, cached("miss"));
  return out.text();
}
