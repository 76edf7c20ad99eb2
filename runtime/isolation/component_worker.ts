/**
 * Worker entry: runs one compiled component. Each in-flight request gets its
 * own guest instance (a component instance may not be re-entered); idle
 * instances are kept for reuse, and an instance that trapped is dropped.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { LineSink } from "../wasi/cli.ts";
import {
  type ErrorCode,
  IncomingRequest,
  type OutgoingResponse,
  ResponseOutparam,
  type ResponseTarget,
} from "../wasi/http.ts";
import { hostImports, type ImportObject } from "../wasi/imports.ts";
import { ByteQueue, type ByteSink, resuming, Window, WRITE_BUDGET } from "../wasi/io.ts";
import { concatBytes } from "../bytes.ts";
import { IdTable } from "../id_table.ts";
import {
  callRecord,
  movable,
  replyFromRecord,
  requestFromRecord,
  responseRecord,
  RING_CODEC,
  type ServerMessage,
  type ToWorker,
  type WorkerInit,
  type WorkerMessage,
  type WorkerReply,
  type WorkerRequest,
} from "./protocol.ts";
import { compileCore } from "./core_modules.ts";
import { INTERRUPT_EXPORT } from "../compile/interrupt.ts";
import { OutboundSlots } from "./outbound_slots.ts";
import { Outbox } from "./outbox.ts";
import { Ring } from "./ring.ts";
import { guestLine, setLogFormat } from "../log.ts";
import { GuestCounts } from "../metrics.ts";
import type { Args, Op, Result } from "../capabilities/calls.ts";
import type { WitValue } from "../capabilities/values.ts";

type Exports = Record<string, Record<string, (...args: unknown[]) => unknown>>;
type Instantiate = (
  getCoreModule: (name: string) => Promise<WebAssembly.Module>,
  imports: ImportObject,
  instantiateCore: (
    module: WebAssembly.Module,
    imports: WebAssembly.Imports,
  ) => Promise<WebAssembly.Instance>,
) => Promise<Exports>;

// jco's glue looks for `process.env.JCO_DEBUG` on every host call: without
// `process` that check is free and needs no env permission.
Reflect.deleteProperty(globalThis, "process");

/** Microtasks V8 takes to resume a guest from a JSPI import that did not wait (measured: 2). */
const RESUME_HOPS = 3;

/** What the worker serves with, once its `init` message set it up. */
interface Serving {
  component: Component;
  /** Slots of the component's outbound requests (`limits.outbound`). */
  outbound: OutboundSlots;
  /** Whole responses and capability calls to the server thread (see `ring.ts`). */
  responses: Ring;
  /**
   * Requests and capability replies from the server thread; closed by it
   * when it drops this worker.
   */
  requests: Ring;
}

/**
 * Everything the worker holds, in one place (a worker runs one component).
 * Before the `init` message only the outbox is of use.
 */
interface WorkerState {
  /**
   * Messages to the server thread: a turn's go out as one, once its
   * microtasks ran (a guest that suspends lets them run, so what it wrote
   * before waiting still streams out at once).
   */
  outbox: Outbox<WorkerMessage>;
  /** Set by the `init` message. */
  serving?: Serving;
  /** The response channels of the requests being served, by request id. */
  inFlight: IdTable<ResponseChannel>;
  /** Capability calls waiting for the server thread's reply, by call id. */
  calls: IdTable<PromiseWithResolvers<unknown>>;
  nextCallId: number;
  /** Each request's last capability call (see `CapabilityCall.after`), by request id. */
  lastCall: IdTable<number>;
}

const state: WorkerState = {
  outbox: new Outbox<WorkerMessage>({
    post: (message, transfer) => {
      if (transfer.length) self.postMessage(message, transfer);
      else self.postMessage(message);
    },
    transferOf: (message) =>
      movable(
        message.type === "chunk"
          ? message.bytes
          : message.type === "response"
          ? message.body
          : null,
      ),
    prepare: (messages) => sendByRing(coalesce(messages)),
    // A guest resumes from a blocking write that did not wait a few microtasks later: send what
    // it writes then along, so that a whole response still goes as one.
    wait: (hops) => {
      if (resuming.soon && hops < RESUME_HOPS) return true;
      resuming.soon = false;
      return false;
    },
  }),
  // Not `Map`s: an entry per request and per call (see `id_table.ts`).
  inFlight: new IdTable(),
  calls: new IdTable(),
  nextCallId: 1,
  lastCall: new IdTable(),
};

function post(message: WorkerMessage) {
  state.outbox.post(message);
}

/**
 * Writes the whole responses and the capability calls that fit to the ring,
 * in their order; returns the messages left to post.
 */
function sendByRing(messages: WorkerMessage[]): WorkerMessage[] {
  const ring = state.serving?.responses;
  if (!ring) return messages;
  const rest = messages.filter((message) =>
    message.type === "response"
      ? !ring.write(...responseRecord(message))
      : message.type === "call"
      ? !ring.write(callRecord(message), null, true)
      : true
  );
  if (rest.length < messages.length) ring.notify();
  return rest;
}

/** Turns the `head`, `chunk`s and `end` of a response within one batch into one `response`. */
function coalesce(messages: WorkerMessage[]): WorkerMessage[] {
  const heads = new Set<number>();
  const complete = new Set<number>();
  for (const message of messages) {
    if (message.type === "head") heads.add(message.id);
    else if (message.type === "end" && heads.has(message.id)) complete.add(message.id);
  }
  if (complete.size === 0) return messages;
  const out: WorkerMessage[] = [];
  const bodies = new Map<number, { at: number; chunks: Uint8Array[] }>();
  for (const message of messages) {
    if (!("id" in message) || !complete.has(message.id)) out.push(message);
    else if (message.type === "head") {
      bodies.set(message.id, { at: out.length, chunks: [] });
      out.push(message);
    } else if (message.type === "chunk") bodies.get(message.id)!.chunks.push(message.bytes);
    else if (message.type === "end") {
      const { at, chunks } = bodies.get(message.id)!;
      const head = out[at] as Extract<WorkerMessage, { type: "head" }>;
      out[at] = {
        type: "response",
        id: head.id,
        status: head.status,
        headers: head.headers,
        body: concatBytes(chunks),
      };
    }
  }
  return out;
}

/** A guest instance and the request it serves. */
interface Instance {
  /** Unique within the worker: names the instance's interrupt flags to the server thread. */
  id: number;
  exports: Exports;
  context: { requestId: number };
}

/**
 * Tells the server thread the interrupt flags of instance `id` (see
 * `compile/interrupt.ts`): it sets them when it drops the worker, so a guest
 * stuck in a loop traps and the worker can stop. No flags: the instance is gone.
 */
function interruptFlags(id: number, flags: SharedArrayBuffer[]) {
  const message: WorkerMessage = { type: "interrupt-flags", instance: id, flags };
  // A new instance's flags go at once, not with the turn's batch: its guest may start looping in
  // this very turn, and then the batch would never be sent.
  if (flags.length) self.postMessage(message);
  else post(message);
}

function callHost<O extends Op>(requestId: number, op: O, args: Args<O>): Promise<Result<O>> {
  const callId = state.nextCallId++;
  const pending = Promise.withResolvers<unknown>();
  state.calls.set(callId, pending);
  const after = state.lastCall.get(requestId) ?? 0;
  state.lastCall.set(requestId, callId);
  post({ type: "call", callId, requestId, after, op, args });
  // The reply holds what the server side's handler of `op` returned (see `capabilities/host.ts`).
  return pending.promise as Promise<Result<O>>;
}

/** Settles the capability call a reply answers (it came by the ring or by `postMessage`). */
function settleCall(reply: WorkerReply) {
  const pending = state.calls.get(reply.callId);
  state.calls.delete(reply.callId);
  if (reply.ok) pending?.resolve(reply.value);
  else pending?.reject(reply.error);
}

/**
 * Guest calls a worker lets in at once while they run on (see {@link EntryGate}). V8 keeps 4 MB
 * of JSPI stacks for reuse, four of its 984 KB ones: a fifth call in progress maps a stack of its
 * own and the next one unmaps it again (with a fault per page it touches). Measured in a
 * micro-benchmark of `WebAssembly.promising` calls that suspend: 1.5 µs a call with up to four in
 * progress, 4–9 µs with five to eight.
 */
const POOLED_STACKS = 4;

/**
 * Lets at most {@link POOLED_STACKS} requests into their guests at once while
 * those make progress in microtasks (a hello guest enters, writes, resumes and
 * returns without waiting for the event loop): a fifth waits for one to
 * return. Once every guest inside waits for the event loop (a capability
 * reply, an outbound request, a client), all waiting requests go in at the
 * next turn: the gate never holds a request behind a guest that waits.
 */
class EntryGate {
  #inside = 0;
  #waiting: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Resolves once the caller may enter its guest; call {@link leave} after. */
  enter(): Promise<void> | undefined {
    if (this.#inside < POOLED_STACKS) {
      this.#inside++;
      return undefined;
    }
    this.#timer ??= setTimeout(() => this.#openAll(), 0);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** A call returned: its place goes to the next waiting request. */
  leave() {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#inside--;
    if (this.#waiting.length === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #openAll() {
    this.#timer = undefined;
    for (const resolve of this.#waiting.splice(0)) {
      this.#inside++;
      resolve();
    }
  }
}

const gate = new EntryGate();

/** How long a request waits for a busy instance before it gets a new one. */
const INSTANCE_WAIT_MS = 250;

class Component {
  #idle: Instance[] = [];
  /** Instances made and not dropped: idle or serving. */
  #live = 0;
  #waiters: ((instance?: Instance) => void)[] = [];
  #modules = new Map<string, Promise<WebAssembly.Module>>();
  #nextInstanceId = 1;
  /** Export names by interface: every instance of the component has the same. */
  #exportNames = new Map<string, string | undefined>();

  /** The component's fetch and filesystem calls, counted for its metrics. */
  readonly #counts: GuestCounts;

  constructor(readonly init: WorkerInit, readonly instantiate: Instantiate) {
    this.#counts = new GuestCounts(init.guestCounts);
  }

  /** Finds an export of `instance` by interface name, whatever its version. */
  exported(instance: Instance, iface: string) {
    if (!this.#exportNames.has(iface)) {
      this.#exportNames.set(
        iface,
        Object.keys(instance.exports).find((k) => k.startsWith(`${iface}@`)),
      );
    }
    const name = this.#exportNames.get(iface);
    return name ? instance.exports[name] : undefined;
  }

  #coreModule = (file: string) => {
    let module = this.#modules.get(file);
    if (!module) {
      // The server thread compiled the component's modules; any other is compiled here.
      const shared = this.init.modules?.[file];
      module = shared
        ? Promise.resolve(shared)
        : compileCore(`${this.init.coreDir}/${file}`, this.init.memoryMb);
      this.#modules.set(file, module);
    }
    return module;
  };

  async #create(): Promise<Instance> {
    const context = { requestId: this.init.ownRequestId };
    const guestLog = (stream: string) =>
      new LineSink((line) => guestLine(this.init.name, stream, line));
    const imports = hostImports(
      {
        name: this.init.name,
        stdout: guestLog("out"),
        stderr: guestLog("err"),
        env: this.init.env,
        net: this.init.net,
        preopens: this.init.preopens,
        outboundSlot: () => state.serving!.outbound.acquire(context.requestId),
        counts: this.#counts,
      },
      (op, args) => callHost(context.requestId, op, args),
    );
    const flags: SharedArrayBuffer[] = [];
    const exports = await this.instantiate(this.#coreModule, imports, async (module, imports) => {
      const instance = await WebAssembly.instantiate(module, imports);
      const flag = instance.exports[INTERRUPT_EXPORT];
      if (flag instanceof WebAssembly.Memory) flags.push(flag.buffer as SharedArrayBuffer);
      return instance;
    });
    const id = this.#nextInstanceId++;
    if (flags.length) interruptFlags(id, flags);
    return { id, exports, context };
  }

  /**
   * An instance for request `requestId`: an idle one; else a new one while
   * fewer than `maxIdleInstances` live; else the next one released. Making an
   * instance costs a hundred times a request, so a burst waits for one rather
   * than making instances it would then throw away; a request that waited
   * {@link INSTANCE_WAIT_MS} gets a new one all the same (so guests that wait
   * long, or call their own component, never starve the rest). With `wait`
   * false a new instance is made at once.
   */
  async acquire(requestId: number, wait = true): Promise<Instance> {
    let instance = this.idle(requestId);
    if (instance) return instance;
    if (wait && this.#live >= this.init.maxIdleInstances) {
      instance = await new Promise<Instance | undefined>((resolve) => {
        const waiter = (released?: Instance) => {
          clearTimeout(timer);
          resolve(released);
        };
        const timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve(undefined);
        }, INSTANCE_WAIT_MS);
        this.#waiters.push(waiter);
      });
    }
    if (!instance) {
      this.#live++;
      try {
        instance = await this.#create();
      } catch (error) {
        this.#live--;
        throw error;
      }
    }
    instance.context.requestId = requestId;
    return instance;
  }

  /** An idle instance for request `requestId`, if there is one (no `await` for the common case). */
  idle(requestId: number): Instance | undefined {
    const instance = this.#idle.pop();
    if (instance) instance.context.requestId = requestId;
    return instance;
  }

  /** Puts back an instance that finished its work. */
  release(instance: Instance) {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(instance);
    else if (this.#idle.length < this.init.maxIdleInstances) this.#idle.push(instance);
    else this.#drop(instance);
  }

  #drop(instance: Instance) {
    this.#live--;
    interruptFlags(instance.id, []);
  }

  /** Forgets an instance that trapped: its state is undefined. */
  discard(instance: Instance) {
    this.#drop(instance);
    // A waiting request makes a new instance instead.
    this.#waiters.shift()?.();
  }

  async manifest(): Promise<string> {
    const instance = await this.acquire(this.init.ownRequestId);
    const endpoint = this.exported(instance, "trailbase:component/init-endpoint");
    if (!endpoint) throw new Error("the component does not export init-endpoint");
    const manifest = await endpoint.getManifest(this.init.manifestArgs);
    this.release(instance);
    return manifest as string;
  }
}

/**
 * Sends the guest's response to the server thread as it is written. At most
 * {@link WRITE_BUDGET} bytes are on their way to the client at once: the
 * server credits what the client took, and the guest waits for room (so a
 * client that does not read holds back the guest, not the host's memory).
 */
class ResponseChannel implements ResponseTarget, ByteSink {
  started = false;
  ended = false;
  #failure: string | undefined;
  #window = new Window(WRITE_BUDGET);
  constructor(readonly id: number) {}

  get failure(): string | undefined {
    return this.#failure;
  }
  get room(): number {
    return this.#window.room;
  }
  whenRoom(): Promise<void> {
    return this.#window.whenRoom();
  }
  /** The response can no longer be sent; a guest waiting for room sees why. */
  abort(reason: string) {
    this.#failure = reason;
    this.#window.wake();
  }
  credit(bytes: number) {
    this.#window.give(bytes);
  }
  start(response: OutgoingResponse) {
    this.started = true;
    post({
      type: "head",
      id: this.id,
      status: response.statusCode(),
      headers: response.fields.freeze().toPairs(),
    });
    response.pending.attach(this, () => this.end());
  }
  fail(error: ErrorCode) {
    this.started = true;
    this.ended = true;
    const reason = `${error.tag}${error.val ? `: ${String(error.val)}` : ""}`;
    post({
      type: "failed",
      id: this.id,
      error: "the component answered with an error",
      detail: reason,
    });
  }
  write(bytes: Uint8Array) {
    this.#window.take(bytes.byteLength);
    post({ type: "chunk", id: this.id, bytes });
  }
  end() {
    if (this.ended) return;
    this.ended = true;
    post({ type: "end", id: this.id });
  }
}

async function handle(request: WorkerRequest) {
  const { component, outbound } = state.serving!;
  const channel = new ResponseChannel(request.id);
  state.inFlight.set(request.id, channel);
  outbound.begin(request.id);
  let instance: Instance | undefined;
  // Each `await` is a promise and a microtask: none when the gate is open and an instance idle.
  const entering = gate.enter();
  if (entering) await entering;
  try {
    instance = component.idle(request.id) ?? await component.acquire(request.id);
    enterable();
    const handler = component.exported(instance, "wasi:http/incoming-handler");
    if (!handler) throw new Error("the component does not export incoming-handler");
    const incoming = new IncomingRequest({
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: ByteQueue.of(request.body),
    });
    await handler.handle(incoming, new ResponseOutparam(channel));
    if (!channel.started) {
      throw new Error("the component returned without setting a response");
    }
    channel.end();
    component.release(instance);
  } catch (error) {
    // A trapped instance's state is undefined: it is not reused.
    if (instance) component.discard(instance);
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (!channel.started) {
      post({ type: "failed", id: request.id, error: "component failed", detail });
    } else {
      console.error(`[${component.init.name}] request failed mid-response: ${detail}`);
      channel.end();
    }
  } finally {
    gate.leave();
    state.inFlight.delete(request.id);
    state.lastCall.delete(request.id);
    outbound.end(request.id);
  }
}

/**
 * Throws once the server thread dropped this worker: a request queued behind
 * a guest that looped must not start another (its instance's interrupt flag
 * was never set).
 */
function enterable() {
  if (state.serving!.requests.closed) throw new Error("the worker was stopped");
}

/** Runs one SQL function call on an instance of its own. */
async function sqlFunction(name: string, args: WitValue[]) {
  const { component } = state.serving!;
  let instance: Instance | undefined;
  try {
    // A statement waits meanwhile: never wait for a busy instance.
    instance = await component.acquire(component.init.ownRequestId, false);
    enterable();
    const endpoint = component.exported(instance, "trailbase:component/sqlite-function-endpoint");
    if (!endpoint) throw new Error("the component does not export sqlite-function-endpoint");
    const value = endpoint.dispatchScalarFunction({ functionName: name, arguments: args });
    component.release(instance);
    return value as WitValue;
  } catch (error) {
    if (instance) component.discard(instance);
    // The guest's `error.other(message)` arrives as the variant itself; anything else trapped.
    const variant = error as { tag?: string; val?: unknown };
    const message = variant?.tag === "other"
      ? String(variant.val)
      : error instanceof Error
      ? error.message
      : String(error);
    return { tag: "error" as const, val: message };
  }
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type !== "batch") return void receive(message);
  for (const each of message.messages) void receive(each);
};

async function receive(message: ServerMessage) {
  switch (message.type) {
    case "init": {
      const started = performance.now();
      try {
        // Imported from its file, V8 keeps neither the source nor a copy of it in the heap.
        const glue: { instantiate: Instantiate } = await import(message.glueUrl);
        setLogFormat(message.logFormat);
        const component = new Component(message, glue.instantiate);
        const outbound = new OutboundSlots(message.outbound, message.outboundHeld);
        // The worker's own calls (the manifest, SQL functions) never end.
        outbound.begin(message.ownRequestId);
        const requests = new Ring(message.rings.requests, RING_CODEC);
        state.serving = {
          component,
          outbound,
          responses: new Ring(message.rings.responses, RING_CODEC),
          requests,
        };
        // Closed when the server thread dropped this worker: it ends here, whatever it was doing.
        requests.listen((record) =>
          record.tagged
            ? settleCall(replyFromRecord(record))
            : void handle(requestFromRecord(record))
        ).then(() => self.close());
        const manifest = await component.manifest();
        post({ type: "ready", manifest, ms: performance.now() - started });
      } catch (error) {
        post({
          type: "init-failed",
          error: error instanceof Error ? error.message : String(error),
        });
      }
      break;
    }
    case "request":
      await handle(message);
      break;
    case "reply":
      settleCall(message);
      break;
    case "sql-function":
      post({
        type: "sql-result",
        callId: message.callId,
        result: await sqlFunction(message.name, message.args),
      });
      break;
    case "cancel":
      state.inFlight.get(message.id)?.abort("the client went away");
      break;
    case "credit":
      state.inFlight.get(message.id)?.credit(message.bytes);
      break;
  }
}
