/**
 * What the loader, the server and the scheduler need of a running component,
 * whatever its engine: WebAssembly in a pool of workers (`component_host.ts`)
 * or native V8 in a process of its own (`native_host.ts`).
 *
 * @module
 */
import type { WitValue } from "../capabilities/values.ts";
import type { ComponentRequest } from "./component_host.ts";
import { GuestError } from "./worker_link.ts";

/** The header that carries a request's id, to the component and in the response. */
export const REQUEST_ID_HEADER = "x-request-id";

/** Whether header `name` (in any case) is {@link REQUEST_ID_HEADER}. */
export function isRequestIdHeader(name: unknown): boolean {
  return typeof name === "string" && name.length === REQUEST_ID_HEADER.length &&
    name.toLowerCase() === REQUEST_ID_HEADER;
}

/**
 * `headers` with `x-request-id: requestId` in place of any the guest set, for
 * an engine that answers with the id (see `ComponentEngine.answersWithId`).
 */
export function withRequestId(
  headers: [string, string][],
  requestId: string | undefined,
): [string, string][] {
  if (requestId === undefined) return headers;
  const kept = headers.filter(([name]) => !isRequestIdHeader(name));
  kept.push([REQUEST_ID_HEADER, requestId]);
  return kept;
}

/**
 * Refuses (503) a request when `inFlight` requests of the component are in
 * flight already (`limits.concurrency`), before its body is read.
 */
export function admit(inFlight: number, concurrency: number): void {
  if (inFlight < concurrency) return;
  throw new GuestError(`busy: ${concurrency} requests already in flight (limits.concurrency)`, 503);
}

/** A component's running side. */
export interface ComponentEngine {
  readonly name: string;
  /** Wall-clock limit for one request or job run, in milliseconds (`limits.timeoutMs`). */
  readonly timeoutMs: number;
  /** True while it can answer without starting first. */
  readonly running: boolean;
  /** Its workers (or processes) up now. */
  readonly workers: number;
  /** Its guest instances alive now. */
  readonly instances: number;
  /** Requests (and job runs) admitted and not finished, streamed bodies included. */
  readonly inFlight: number;
  /** Starts it; resolves with the component's manifest JSON. */
  start(urgent?: boolean): Promise<string>;
  /**
   * True when its responses carry the request's `x-request-id` (its
   * `ComponentRequest.requestId`) from the start: the server then leaves their
   * headers alone (reading a response's headers drops Deno's fast path for it).
   */
  readonly answersWithId?: boolean;
  /** Sends a request through it; rejects with `GuestError`. */
  fetch(request: ComponentRequest): Promise<Response>;
  /** Calls one of its SQL functions. */
  callSqlFunction(name: string, args: WitValue[]): Promise<WitValue>;
  /** Stops it; its requests in flight fail (503) with `reason`. */
  stop(reason?: string): void;
}

const DRAIN_POLL_MS = 20;

/**
 * Stops `engine` once the requests in flight on it have ended, or once its
 * time limit has cut them. For a version a reload replaced: no new request
 * reaches it any more.
 */
export async function drain(engine: ComponentEngine, reason: string): Promise<void> {
  const deadline = performance.now() + engine.timeoutMs + DRAIN_POLL_MS;
  while (engine.inFlight > 0 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
  }
  engine.stop(reason);
}
