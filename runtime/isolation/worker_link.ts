/**
 * The server thread's side of one component worker: sends requests in,
 * streams responses out, and drops the worker when it crashes or overruns its
 * time limit, so a bad guest never stalls the server or its neighbours.
 * A component's workers are pooled by `component_host.ts`.
 *
 * @module
 */
import { CapabilityError, type ComponentCapabilities } from "../capabilities/host.ts";
import type { WitValue } from "../capabilities/values.ts";
import { log } from "../log.ts";
import { componentMetrics } from "../metrics.ts";
import { IdTable } from "../id_table.ts";
import { OldestDeadline } from "./deadline.ts";
import { withRequestId } from "./engine.ts";
import { heldSlots, releaseWorker } from "./outbound_slots.ts";
import { Outbox } from "./outbox.ts";
import { Ring } from "./ring.ts";
import {
  callFromRecord,
  type CapabilityCall,
  type FromWorker,
  movable,
  replyRecord,
  requestRecord,
  responseFromRecord,
  RING_CODEC,
  type ServerMessage,
  type WorkerInit,
  type WorkerMessage,
  type WorkerReply,
  type WorkerRequest,
} from "./protocol.ts";

/** How one worker of a component is set up. */
export interface WorkerLinkOptions {
  init: Omit<WorkerInit, "type" | "rings" | "outboundHeld">;
  /** Deno permissions of the worker. */
  permissions: Deno.PermissionOptionsObject;
  /** Wall-clock limit for one request, in milliseconds. */
  timeoutMs: number;
  /** Answers the guest's database, key-value and in-band calls. */
  capabilities: ComponentCapabilities;
  /** The component's core modules, compiled once for all its workers. */
  coreModules: (urgent: boolean) => Promise<Record<string, WebAssembly.Module>>;
  /** Called once when the worker is dropped (crashed, overran, stopped). */
  onGone: (link: WorkerLink) => void;
}

/** A request for the worker, without the id its link gives it. */
export type RequestHead = Omit<WorkerRequest, "type" | "id">;

/** A request failed before the guest produced a response. */
export class GuestError extends Error {
  constructor(message: string, readonly status: number, readonly detail = "") {
    super(message);
  }
}

interface Pending extends StreamedBody {
  head: PromiseWithResolvers<Response>;
  /** The request's `x-request-id`, put in its response as it is made (see `withRequestId`). */
  requestId: string | undefined;
  /** When the request runs past its time limit (`performance.now()` time). */
  deadline: number;
}

/** A request's capability calls: answered one after the other, in the order the guest made them. */
interface CallOrder {
  /** The call answered last, or being answered (its id; 0: none yet). */
  last: number;
  /** The calls in progress, one after the other; undefined once all are answered. */
  chain: Promise<void> | undefined;
  /** Calls that overtook the call they follow (by that call's id); made when one does. */
  early?: Map<number, CapabilityCall>;
}

/** How long a statement waits for one call of a component's SQL function. */
export const SQL_FUNCTION_TIMEOUT_MS = 1000;

const WORKER_URL = new URL("./component_worker.ts", import.meta.url);

/** What the worker sends about a request's response. */
type ResponseMessage = Exclude<
  WorkerMessage,
  { type: "ready" | "init-failed" | "call" | "interrupt-flags" | "sql-result" }
>;

/** Bytes of each ring between the server thread and a worker (a record takes at most a quarter). */
const RING_BYTES = 256 * 1024;

/** Statuses whose responses have no body (the Response constructor refuses one). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * The body size of a response the guest sent whole, for the request log: a
 * property of the response (a `WeakMap` entry per response cost the server
 * thread more, in its GC).
 */
const BODY_SIZE = Symbol("body size");

type Sized = Response & { [BODY_SIZE]?: number };

/** The body size of `response` if the guest sent it whole (not streamed). */
export function bodySize(response: Response): number | undefined {
  return (response as Sized)[BODY_SIZE];
}

/** What a streamed body needs of its request's entry: where chunks go, and what is owed back. */
export interface StreamedBody {
  body?: ReadableStreamDefaultController<Uint8Array>;
  /** Body bytes received from the guest and not yet credited back to it. */
  uncredited: number;
}

/**
 * The body of a response the guest streams, for both engines: chunks are
 * enqueued into `entry.body`. With no high-water mark, pull means the client
 * took everything queued: the guest may send that much more (`credit`, see the
 * worker's `ResponseChannel`). A client that goes away drops the rest, and
 * the guest is told (`cancel`).
 */
export function creditedBody(
  entry: StreamedBody,
  tell: { credit(bytes: number): void; cancel(): void },
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start: (controller) => void (entry.body = controller),
    pull: () => {
      if (entry.uncredited === 0) return;
      tell.credit(entry.uncredited);
      entry.uncredited = 0;
    },
    cancel: () => {
      entry.body = undefined;
      tell.cancel();
    },
  }, { highWaterMark: 0 });
}

/** Records that `response`'s body was sent whole, `size` bytes (for the request log). */
export function wholeBody(response: Response, size: number): void {
  (response as Sized)[BODY_SIZE] = size;
}

/** Runs one component in one worker and answers requests with it. */
export class WorkerLink {
  #worker: Worker | undefined;
  #ready: Promise<string> | undefined;
  /** By request id; not a `Map`, which keeps finished requests alive to minor GCs (`id_table.ts`). */
  #pending = new IdTable<Pending>();
  #nextSqlCall = 1;
  /** SQL function calls waiting for the worker's answer. */
  #sqlCalls = new Map<number, (result: WitValue | { tag: "error"; val: string }) => void>();
  /** Messages to the worker: a turn's go out as one. */
  #outbox = new Outbox<ServerMessage>({
    post: (message, transfer) => {
      // A dropped worker's requests were failed then; what is left for it goes nowhere.
      try {
        this.#worker?.postMessage(message, transfer);
      } catch {
        // the worker was terminated meanwhile; its requests were failed then
      }
    },
    transferOf: (message) => message.type === "request" ? movable(message.body) : undefined,
  });
  /** Each live request's capability calls, by request id (not a `Map`: `id_table.ts`). */
  #callOrders = new IdTable<CallOrder>();
  #started = false;
  #gone = false;
  /** Fails the start if the worker goes before it is ready. */
  #abortStart: ((error: Error) => void) | undefined;
  /** Requests and capability replies to the worker (what does not fit goes by `postMessage`). */
  #requests: Ring | undefined;
  /** Whole responses and capability calls from the worker. */
  #responses: Ring | undefined;
  #notifyQueued = false;
  /** Restarts the worker once its oldest request runs past the time limit. */
  #deadlines = new OldestDeadline(
    this.#pending,
    () => this.#restart(`a request ran past the ${this.options.timeoutMs} ms limit`, 504),
  );
  /** The interrupt flags of the worker's guest instances, by instance. */
  #interruptFlags = new Map<number, Int32Array[]>();
  /** The worker's part of the component's outbound requests in flight. */
  #outboundHeld = heldSlots();
  /** Since when no request is in flight (`performance.now()` time). */
  idleSince = performance.now();
  /** When the worker last sent a message (`performance.now()` time). */
  lastHeard = performance.now();

  constructor(readonly options: WorkerLinkOptions) {}

  get name(): string {
    return this.options.init.name;
  }

  /** True while the worker is up and has answered its manifest. */
  get running(): boolean {
    return this.#started;
  }

  /**
   * Guest instances alive in the worker: each tells its interrupt flags when
   * made and when dropped (every compiled guest has some).
   */
  get instances(): number {
    return this.#interruptFlags.size;
  }

  /**
   * True if the oldest request in flight on this worker was sent before
   * `time` (`performance.now()` time): the worker is behind by that much.
   */
  busySince(time: number): boolean {
    const oldest = this.#pending.first();
    return oldest !== undefined && oldest.deadline - this.options.timeoutMs < time;
  }

  /** Requests in flight on this worker. */
  get load(): number {
    return this.#pending.size;
  }

  /**
   * Starts the worker; resolves with the component's manifest JSON. An urgent
   * start (a request waits for it) compiles ahead of the others. A link
   * starts once: when its worker is gone, the pool makes a new link.
   */
  start(urgent = false): Promise<string> {
    return this.#ready ??= this.#spawn(urgent);
  }

  #spawn(urgent: boolean): Promise<string> {
    const worker = new Worker(WORKER_URL, {
      type: "module",
      name: `component:${this.name}`,
      deno: { permissions: this.options.permissions },
    } as WorkerOptions);
    this.#worker = worker;
    const ready = Promise.withResolvers<string>();
    this.#abortStart = ready.reject;
    const onMessage = (message: WorkerMessage) => {
      if (message.type === "ready") {
        log.info(`${this.name}: worker ready in ${message.ms.toFixed(0)} ms`);
        this.#started = true;
        // A transaction the manifest call left open ends with it.
        this.options.capabilities.settle(this.options.init.ownRequestId);
        ready.resolve(message.manifest);
      } else if (message.type === "init-failed") {
        ready.reject(new Error(message.error));
      } else if (message.type === "call") {
        componentMetrics(this.name).capabilityMessages++;
        this.#onCall(message);
      } else if (message.type === "interrupt-flags") {
        if (message.flags.length === 0) this.#interruptFlags.delete(message.instance);
        else {this.#interruptFlags.set(
            message.instance,
            message.flags.map((f) => new Int32Array(f)),
          );}
      } else if (message.type === "sql-result") {
        this.#sqlCalls.get(message.callId)?.(message.result);
      } else this.#onResponseMessage(message);
    };
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      this.lastHeard = performance.now();
      const message = event.data;
      if (message.type !== "batch") return onMessage(message);
      for (const each of message.messages) onMessage(each);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const reason = event.message ?? "worker crashed";
      ready.reject(new Error(reason));
      this.#restart(reason, 500);
    };
    // The manifest and SQL function calls act for the worker itself, as long as it lives.
    this.options.capabilities.requestStarted(this.options.init.ownRequestId);
    const rings = { requests: Ring.buffer(RING_BYTES), responses: Ring.buffer(RING_BYTES) };
    this.#requests = new Ring(rings.requests, RING_CODEC);
    this.#responses = new Ring(rings.responses, RING_CODEC);
    this.#responses.listen((record) => {
      this.lastHeard = performance.now();
      if (record.tagged) this.#onCall(callFromRecord(record));
      else this.#onResponseMessage(responseFromRecord(record));
    });
    // The worker boots meanwhile; it gets the compiled modules with its init.
    this.options.coreModules(urgent).then(
      (modules) =>
        worker.postMessage({
          type: "init",
          ...this.options.init,
          rings,
          outboundHeld: this.#outboundHeld,
          modules,
        }),
      (error) => ready.reject(error),
    );
    return ready.promise;
  }

  /** Logs an error of the component, and keeps it as its last (for the admin page). */
  #error(message: string) {
    log.error(`${this.name}: ${message}`);
    componentMetrics(this.name).noteError(message);
  }

  /** Drops the worker, failing its in-flight requests; the pool starts another when needed. */
  #restart(reason: string, status: number) {
    this.#error(`worker replaced: ${reason}`);
    componentMetrics(this.name).restarts++;
    this.#drop(reason, status);
  }

  /**
   * A request's capability calls are answered in the order the guest made
   * them, one after the other; a call that overtook the one it follows waits
   * for it. A request that ended has its calls refused at once.
   */
  #onCall(call: CapabilityCall) {
    const { requestId } = call;
    let order = this.#callOrders.get(requestId);
    if (!order) {
      const live = this.#pending.has(requestId) || requestId === this.options.init.ownRequestId;
      if (!live) return void this.#answer(call);
      order = { last: 0, chain: undefined };
      this.#callOrders.set(requestId, order);
    }
    if (call.after !== 0 && call.after !== order.last) {
      (order.early ??= new Map()).set(call.after, call);
      return;
    }
    for (let next: CapabilityCall | undefined = call; next; next = order.early?.get(order.last)) {
      order.early?.delete(next.after);
      this.#chain(order, next);
    }
  }

  /** Answers `call` once the calls before it in `order` are answered. */
  #chain(order: CallOrder, call: CapabilityCall) {
    const done: Promise<void> = order.chain
      ? order.chain.then(() => this.#answer(call))
      : this.#answer(call);
    order.chain = done;
    order.last = call.callId;
    done.then(() => {
      if (order.chain === done) order.chain = undefined;
    });
  }

  /** The calls of request `id`, which ended: any that wait for an earlier one are refused now. */
  #endCalls(id: number) {
    const order = this.#callOrders.get(id);
    if (!order) return;
    this.#callOrders.delete(id);
    for (const call of order.early?.values() ?? []) void this.#answer(call);
  }

  async #answer(call: CapabilityCall) {
    try {
      const value = await this.options.capabilities.handle(call.op, call.args, call.requestId);
      this.#reply({ type: "reply", callId: call.callId, ok: true, value });
    } catch (error) {
      const abiError = error instanceof CapabilityError
        ? error.error
        : { tag: "other", val: String((error as Error).message) };
      this.#reply({ type: "reply", callId: call.callId, ok: false, error: abiError });
    }
  }

  /** Sends a reply by the ring, or by `postMessage` when it does not fit. */
  #reply(reply: WorkerReply) {
    if (this.#requests?.write(replyRecord(reply), null, true)) return this.#notifyWorker();
    componentMetrics(this.name).capabilityMessages++;
    this.#outbox.post(reply);
  }

  #drop(reason: string, status: number) {
    this.#deadlines.stop();
    // Closed first: once its looping guest traps, the worker sees it and starts no request queued
    // behind it (`terminate` does not stop a guest's loop, and a new instance's flag is never set).
    this.#requests?.close();
    // A guest stuck in a loop traps at its next iteration: only then can the worker stop.
    for (const flags of this.#interruptFlags.values()) {
      for (const flag of flags) Atomics.store(flag, 0, 1);
    }
    this.#interruptFlags.clear();
    this.#worker?.terminate();
    this.#worker = undefined;
    releaseWorker(this.options.init.outbound, this.#outboundHeld);
    this.#responses?.close();
    this.#started = false;
    this.#abortStart?.(new Error(reason));
    for (const id of this.#pending.ids()) {
      this.#fail(id, new GuestError(reason, status));
    }
    for (const answer of this.#sqlCalls.values()) answer({ tag: "error", val: reason });
    // What the manifest call or a SQL function left open.
    this.options.capabilities.requestEnded(this.options.init.ownRequestId);
    if (this.#gone) return;
    this.#gone = true;
    this.options.onGone(this);
  }

  #finish(id: number) {
    const pending = this.#pending.get(id);
    if (!pending) return undefined;
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.idleSince = performance.now();
    this.options.capabilities.requestEnded(id);
    this.#endCalls(id);
    return pending;
  }

  #fail(id: number, error: GuestError) {
    const pending = this.#finish(id);
    if (!pending) return;
    pending.head.reject(error);
    try {
      pending.body?.error(error);
    } catch {
      // the client already cancelled the body
    }
  }

  /** Applies a response message; one the server cannot use (a 1xx status) fails its request. */
  #onResponseMessage(message: ResponseMessage) {
    try {
      this.#applyResponseMessage(message);
    } catch (error) {
      const reason = `the component's response is unusable: ${(error as Error).message}`;
      this.#error(reason);
      this.#fail(message.id, new GuestError(reason, 502));
    }
  }

  #applyResponseMessage(message: ResponseMessage) {
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    switch (message.type) {
      case "response": {
        // The guest answered within one turn: no stream needed.
        const empty = message.body.byteLength === 0 || NULL_BODY_STATUSES.has(message.status);
        const response = new Response(empty ? null : message.body as Uint8Array<ArrayBuffer>, {
          status: message.status,
          headers: withRequestId(message.headers, pending.requestId),
        });
        wholeBody(response, message.body.byteLength);
        this.#finish(message.id);
        pending.head.resolve(response);
        break;
      }
      case "head": {
        const body = creditedBody(pending, {
          credit: (bytes) => this.#outbox.post({ type: "credit", id: message.id, bytes }),
          cancel: () => this.#outbox.post({ type: "cancel", id: message.id }),
        });
        // A 204 or 304 has no body, whatever the guest wrote.
        const nullBody = NULL_BODY_STATUSES.has(message.status);
        pending.head.resolve(
          new Response(nullBody ? null : body, {
            status: message.status,
            headers: withRequestId(message.headers, pending.requestId),
          }),
        );
        break;
      }
      case "chunk":
        pending.uncredited += message.bytes.byteLength;
        pending.body?.enqueue(message.bytes);
        break;
      case "end":
        this.#finish(message.id);
        try {
          pending.body?.close();
        } catch {
          // the client already cancelled the body
        }
        break;
      case "failed":
        this.#error(`${message.error}: ${message.detail}`);
        this.#fail(message.id, new GuestError(message.error, 500, message.detail));
        break;
    }
  }

  /**
   * Sends request `id` (unique among the component's workers) through the
   * running worker; rejects with {@link GuestError}.
   */
  fetch(id: number, request: RequestHead & { requestId?: string }): Promise<Response> {
    if (!this.#worker || !this.#started) {
      return Promise.reject(new GuestError("could not start: the worker is gone", 503));
    }
    const head = Promise.withResolvers<Response>();
    const deadline = performance.now() + this.options.timeoutMs;
    this.#pending.set(id, { head, uncredited: 0, deadline, requestId: request.requestId });
    this.options.capabilities.requestStarted(id, deadline);
    this.#deadlines.watch();
    const message: WorkerRequest = { type: "request", id, ...request };
    if (this.#requests!.write(...requestRecord(message))) this.#notifyWorker();
    else this.#outbox.post(message);
    return head.promise;
  }

  /**
   * Wakes the worker for the requests written to the ring, once per turn of
   * the event loop, after its I/O (as the ring's floor in `bench/floors/` does):
   * a microtask here could wake a waiting worker before the turn's other
   * requests were written, and each wake-up costs both threads microseconds.
   */
  #notifyWorker() {
    if (this.#notifyQueued) return;
    this.#notifyQueued = true;
    setImmediate(() => {
      this.#notifyQueued = false;
      this.#requests?.notify();
    });
  }

  /**
   * Calls SQL function `name` of the component; rejects when the component
   * fails, is not running, or takes longer than {@link SQL_FUNCTION_TIMEOUT_MS}.
   */
  async callSqlFunction(name: string, args: WitValue[]): Promise<WitValue> {
    if (!this.#worker || !this.#started) {
      throw new Error(`component "${this.name}" is not running`);
    }
    const callId = this.#nextSqlCall++;
    const answered = Promise.withResolvers<WitValue | { tag: "error"; val: string }>();
    this.#sqlCalls.set(callId, answered.resolve);
    const timer = setTimeout(() => {
      answered.resolve({ tag: "error", val: `no answer within ${SQL_FUNCTION_TIMEOUT_MS} ms` });
      // The guest may be looping: its worker would spin on forever.
      this.#restart(`SQL function ${name} ran past ${SQL_FUNCTION_TIMEOUT_MS} ms`, 504);
    }, SQL_FUNCTION_TIMEOUT_MS);
    this.#outbox.post({ type: "sql-function", callId, name, args });
    const result = await answered.promise.finally(() => {
      clearTimeout(timer);
      this.#sqlCalls.delete(callId);
    });
    // A transaction the function left open ends with its call.
    this.options.capabilities.settle(this.options.init.ownRequestId);
    if (result.tag === "error") throw new Error(`${this.name}.${name}: ${result.val}`);
    return result;
  }

  /** Stops the worker. */
  stop(reason = "component stopped"): void {
    this.#drop(reason, 503);
  }
}
