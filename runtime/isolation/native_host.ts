/**
 * A native component's process, seen from the server process: spawns it
 * with exactly the component's Deno permissions (`sandbox.ts`), sends it
 * requests, streams its responses out, answers its capability calls with the
 * server's capability layer, and kills it when a request overruns its time
 * limit, when it sends anything that is not a well-formed message, or when
 * Pier stops. A process that died or was killed is started again, after a
 * pause that doubles with each crash in a row (a crash loop does not spin a
 * core). The pipe carries frames of `native_protocol.ts`.
 *
 * @module
 */
import { CapabilityError, type ComponentCapabilities } from "../capabilities/host.ts";
import type { Op } from "../capabilities/calls.ts";
import type { WitValue } from "../capabilities/values.ts";
import { reusedChunks } from "../capabilities/database/wire.ts";
import { IdTable } from "../id_table.ts";
import { guestLine, log } from "../log.ts";
import { componentMetrics } from "../metrics.ts";
import { manifestArgs } from "../manifest.ts";
import { fromFileUrl, toFileUrl } from "../paths.ts";
import type { Permissions } from "../permissions.ts";
import { nativeProcessCommand } from "../sandbox.ts";
import { PIER_VERSION } from "../version.ts";
import { LineSink, MAX_LINE } from "../wasi/cli.ts";
import type { ComponentRequest } from "./component_host.ts";
import { OldestDeadline } from "./deadline.ts";
import { admit, type ComponentEngine, withRequestId } from "./engine.ts";
import {
  BODY_WINDOW,
  FrameWriter,
  type FromChild,
  MAX_CHILD_FRAME,
  NativeFrameReader,
  type OutboundAnswer,
  OWN_REQUEST,
  type ResponseHead,
  type ToChild,
} from "./native_protocol.ts";
import {
  creditedBody,
  GuestError,
  SQL_FUNCTION_TIMEOUT_MS,
  type StreamedBody,
  wholeBody,
} from "./worker_link.ts";

const CHILD = fromFileUrl(new URL("./native_child.ts", import.meta.url));

/** Statuses whose responses have no body (the Response constructor refuses one). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** The first pause before a crashed process starts again, and the longest. */
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 10_000;

/** A native component to run. */
export interface NativeHostOptions {
  name: string;
  /** Its bundled module, `<name>.js`. */
  module: string;
  permissions: Permissions;
  /** The directories its `read` grants name, resolved. */
  readDirs: string[];
  /** Reads an environment variable granted to the component. */
  env: (name: string) => string | undefined;
  /** Answers its database and key-value calls. */
  capabilities: ComponentCapabilities;
  /** Sends one of its outbound requests, under its `net` grants. */
  outbound: (request: OutboundRequest) => Promise<OutboundAnswer>;
}

/** An outbound request of a native component. */
export interface OutboundRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer> | null;
}

interface Pending extends StreamedBody {
  head: PromiseWithResolvers<Response>;
  deadline: number;
  /** The request's id, for the response's `x-request-id`. */
  requestId: string | undefined;
}

/** One running process and what is in flight on it. */
interface Child {
  process: Deno.ChildProcess;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  out: FrameWriter;
  ready: PromiseWithResolvers<string>;
  started: boolean;
  /** Not `Map`s: an entry per request (see `id_table.ts`). */
  pending: IdTable<Pending>;
  /** Kills the process once its oldest request runs past the time limit. */
  deadlines: OldestDeadline;
  sqlCalls: Map<
    number,
    (result: { ok: true; value: unknown } | { ok: false; error: string }) => void
  >;
  /** Each request's capability calls, answered in order. */
  chains: IdTable<Promise<void>>;
}

/**
 * The first symbolic link under `roots` whose target is outside its root, if
 * any: Deno's read permission would let the process follow it (the
 * WebAssembly engine refuses such links itself). Dangling links are skipped.
 */
async function linkOut(roots: string[]): Promise<string | undefined> {
  for (const root of roots) {
    const real = await Deno.realPath(root).catch(() => undefined);
    if (!real) continue;
    const inside = (path: string) => path === real || path.startsWith(`${real}/`);
    const dirs = [root];
    for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
      for await (const entry of Deno.readDir(dir)) {
        const path = `${dir}/${entry.name}`;
        if (entry.isDirectory) dirs.push(path);
        if (!entry.isSymlink) continue;
        const target = await Deno.realPath(path).catch(() => undefined);
        if (target !== undefined && !inside(target)) return path;
      }
    }
  }
  return undefined;
}

/** `DENO_DIR` as the server has it, if it does. */
function denoDir(): [string, string][] {
  try {
    const dir = Deno.env.get("DENO_DIR");
    return dir ? [["DENO_DIR", dir]] : [];
  } catch {
    return []; // not granted
  }
}

/** Runs a native component in a Deno process of its own. */
export class NativeHost implements ComponentEngine {
  #child: Child | undefined;
  #ready: Promise<string> | undefined;
  #nextId = 1;
  #nextSqlCall = 1;
  #entering = 0;
  /** Crashes since the last request the process answered. */
  #crashes = 0;
  /** No start before this time (`performance.now()`): the crash backoff. */
  #notBefore = 0;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(readonly options: NativeHostOptions) {}

  get name(): string {
    return this.options.name;
  }

  get timeoutMs(): number {
    return this.options.permissions.limits.timeoutMs;
  }

  get running(): boolean {
    return this.#child?.started ?? false;
  }

  get workers(): number {
    return this.running ? 1 : 0;
  }

  get instances(): number {
    return this.workers;
  }

  get inFlight(): number {
    return (this.#child?.pending.size ?? 0) + this.#entering;
  }

  /** Starts the process (after the crash backoff); resolves with the manifest JSON. */
  start(): Promise<string> {
    this.#stopped = false;
    return this.#ready ??= this.#spawnLater();
  }

  async #spawnLater(): Promise<string> {
    const wait = this.#notBefore - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (this.#stopped) throw new Error("component stopped");
    const link = await linkOut(this.options.readDirs);
    if (link) {
      throw new Error(
        `${link} is a link out of its granted directory, and a native component's process would ` +
          "follow it (Deno's read permission checks the path, not its target): remove the link",
      );
    }
    return await this.#spawn();
  }

  #spawn(): Promise<string> {
    const { name, module, permissions, readDirs } = this.options;
    const { command, args } = nativeProcessCommand(CHILD, module, readDirs, permissions);
    // Only its granted variables, where Deno keeps its module cache (not readable by the guest)
    // and no colours in Deno's own error output for the log.
    const env = Object.fromEntries([
      ["NO_COLOR", "1"],
      ...denoDir(),
      ...permissions.env.flatMap((key) => {
        const value = this.options.env(key);
        return value === undefined ? [] : [[key, value]];
      }),
    ]);
    const process = new Deno.Command(command, {
      args,
      env,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = process.stdin.getWriter();
    const pending = new IdTable<Pending>();
    const child: Child = {
      process,
      stdin,
      // A write to a process that died fails; its exit fails what was pending.
      // A turn's frames after the I/O it found ready: many requests, one wake-up of the child.
      // The write keeps its bytes until it is done: a copy of the writer's buffer.
      out: new FrameWriter((bytes) => stdin.write(bytes.slice()).catch(() => {}), setImmediate),
      ready: Promise.withResolvers<string>(),
      started: false,
      pending,
      deadlines: new OldestDeadline(
        pending,
        () => this.#kill(child, `a request ran past the ${this.timeoutMs} ms limit`, 504),
      ),
      sqlCalls: new Map(),
      chains: new IdTable(),
    };
    this.#child = child;
    this.options.capabilities.requestStarted(OWN_REQUEST);
    const reading = this.#read(child);
    void this.#readLog(child);
    // What it wrote before it exited is applied first (a response head, the chunks of a body).
    Promise.all([process.status, reading]).then(([status]) => {
      const signal = status.signal ? `, ${status.signal}` : "";
      this.#drop(child, `the process exited (code ${status.code}${signal})`, 500);
    });
    this.#send(child, {
      t: "init",
      name,
      module: toFileUrl(module).href,
      preopens: permissions.read.map((dir, i) => [readDirs[i], `/${dir}`]),
      manifestArgs: manifestArgs(PIER_VERSION),
    });
    const started = performance.now();
    return child.ready.promise.then((manifest) => {
      log.info(`${name}: process ready in ${(performance.now() - started).toFixed(0)} ms`);
      return manifest;
    });
  }

  #send(child: Child, message: ToChild) {
    child.out.push(message);
  }

  async #read(child: Child) {
    const frames = new NativeFrameReader(MAX_CHILD_FRAME);
    try {
      // Leaving the loop cancels the stream.
      for await (const chunk of reusedChunks(child.process.stdout)) {
        if (this.#child !== child) return;
        frames.push(chunk);
        for (let message = frames.next(); message !== undefined; message = frames.next()) {
          this.#receive(child, message as FromChild);
        }
      }
    } catch (error) {
      this.#kill(child, `it sent a malformed message: ${(error as Error).message}`, 500);
    }
  }

  async #readLog(child: Child) {
    const lines = new LineSink((line) => guestLine(this.name, "err", line));
    try {
      for await (const chunk of child.process.stderr) lines.write(chunk);
    } catch {
      // killed
    }
    lines.flush();
  }

  /** Applies one message; throws on one that is not well-formed (the caller kills the child). */
  #receive(child: Child, message: FromChild) {
    switch (message.t) {
      case "ready":
        child.started = true;
        // A transaction the manifest call left open ends with it.
        this.options.capabilities.settle(OWN_REQUEST);
        return child.ready.resolve(String(message.manifest));
      case "init-failed":
        // Its process goes too: the next start (after the backoff) is a fresh one.
        child.ready.reject(new Error(String(message.error)));
        return this.#kill(child, `init failed: ${String(message.error)}`, 503);
      case "log":
        // Cut as the WebAssembly guests' lines are.
        return guestLine(
          this.name,
          message.stream === "out" ? "out" : "err",
          String(message.line).slice(0, MAX_LINE),
        );
      case "call":
        return this.#chain(child, message.requestId, () => this.#answerCall(child, message));
      case "fetch":
        // Its body is the reader's until the next read; the answer may come later.
        if (message.body instanceof Uint8Array) message.body = message.body.slice();
        return this.#chain(child, message.requestId, () => this.#answerFetch(child, message));
      case "sql-result":
        return child.sqlCalls.get(message.callId)?.(message);
      case "res":
      case "head":
      case "chunk":
      case "end":
      case "failed":
        return this.#onResponse(child, message);
      default:
        throw new Error(`unknown message ${JSON.stringify((message as { t: unknown }).t)}`);
    }
  }

  /** A request's calls are answered in order, one after the other. */
  #chain(child: Child, requestId: number, answer: () => Promise<void>) {
    const previous = child.chains.get(requestId);
    const done = previous ? previous.then(answer) : answer();
    child.chains.set(requestId, done);
    done.then(() => {
      if (child.chains.get(requestId) === done) child.chains.delete(requestId);
    });
  }

  async #answerCall(child: Child, call: Extract<FromChild, { t: "call" }>) {
    const { callId, requestId } = call;
    try {
      if (!Array.isArray(call.args)) throw new Error("a call's arguments must be a list");
      const value = await this.options.capabilities.handle(
        call.op as Op,
        call.args as never,
        requestId,
      );
      this.#send(child, { t: "reply", callId, ok: true, value });
    } catch (error) {
      const abiError = error instanceof CapabilityError
        ? error.error
        : { tag: "other", val: String((error as Error).message) };
      this.#send(child, { t: "reply", callId, ok: false, error: abiError });
    }
  }

  async #answerFetch(child: Child, call: Extract<FromChild, { t: "fetch" }>) {
    const { callId, requestId } = call;
    try {
      if (!child.pending.has(requestId)) throw new Error("the request has ended");
      const value = await this.options.outbound({
        method: String(call.method),
        url: String(call.url),
        headers: call.headers,
        body: call.body instanceof Uint8Array ? call.body : null,
      });
      this.#send(child, { t: "reply", callId, ok: true, value });
    } catch (error) {
      const val = String((error as Error).message);
      this.#send(child, { t: "reply", callId, ok: false, error: { tag: "other", val } });
    }
  }

  #onResponse(child: Child, message: Extract<FromChild, { id: number }>) {
    const pending = child.pending.get(message.id);
    if (!pending) return;
    try {
      switch (message.t) {
        case "res": {
          const response = this.#response(message, message.body, pending.requestId);
          wholeBody(response, message.body instanceof Uint8Array ? message.body.byteLength : 0);
          this.#answered(child, message.id);
          pending.head.resolve(response);
          break;
        }
        case "head": {
          const body = creditedBody(pending, {
            credit: (bytes) => this.#send(child, { t: "credit", id: message.id, bytes }),
            cancel: () => this.#send(child, { t: "cancel", id: message.id }),
          });
          pending.head.resolve(this.#response(message, body, pending.requestId));
          break;
        }
        case "chunk":
          if (!(message.body instanceof Uint8Array)) throw new TypeError("a chunk must be bytes");
          pending.uncredited += message.body.byteLength;
          if (pending.uncredited > 2 * BODY_WINDOW) {
            throw new Error(`it sent more than ${2 * BODY_WINDOW} body bytes ahead of the client`);
          }
          // A copy: the message's bytes are the reader's, valid until its next read.
          pending.body?.enqueue(message.body.slice());
          break;
        case "end":
          this.#answered(child, message.id);
          try {
            pending.body?.close();
          } catch {
            // the client already cancelled the body
          }
          break;
        case "failed":
          log.error(`${this.name}: ${String(message.error)}`);
          this.#fail(child, message.id, new GuestError("the component failed", 500));
          break;
      }
    } catch (error) {
      const reason = `the component's response is unusable: ${(error as Error).message}`;
      log.error(`${this.name}: ${reason}`);
      this.#fail(child, message.id, new GuestError(reason, 502));
    }
  }

  /**
   * A Web response of `head` with `body` and `x-request-id: requestId` (the
   * guest's own is dropped); throws on a status or header the server cannot use.
   */
  #response(head: ResponseHead, body: BodyInit | null, requestId: string | undefined): Response {
    if (body !== null && !(body instanceof Uint8Array) && !(body instanceof ReadableStream)) {
      throw new TypeError("a body must be bytes");
    }
    const nullBody = NULL_BODY_STATUSES.has(head.status) ||
      (body instanceof Uint8Array && body.byteLength === 0);
    if (!Array.isArray(head.headers)) throw new TypeError("the headers must be a list");
    const headers = withRequestId(head.headers, requestId);
    return new Response(nullBody ? null : body, { status: head.status, headers });
  }

  #finish(child: Child, id: number): Pending | undefined {
    const pending = child.pending.get(id);
    if (!pending) return undefined;
    child.pending.delete(id);
    this.options.capabilities.requestEnded(id);
    return pending;
  }

  /** Request `id` was answered: the process is not in a crash loop. */
  #answered(child: Child, id: number) {
    this.#finish(child, id);
    this.#crashes = 0;
  }

  #fail(child: Child, id: number, error: GuestError) {
    const pending = this.#finish(child, id);
    if (!pending) return;
    pending.head.reject(error);
    try {
      pending.body?.error(error);
    } catch {
      // the client already cancelled the body
    }
  }

  /** Kills the process: its requests fail with `status`; it starts again after the backoff. */
  #kill(child: Child, reason: string, status: number) {
    try {
      child.process.kill("SIGKILL");
    } catch {
      // it exited meanwhile
    }
    this.#drop(child, reason, status);
  }

  #drop(child: Child, reason: string, status: number) {
    if (this.#child !== child) return;
    this.#child = undefined;
    this.#ready = undefined;
    child.stdin.close().catch(() => {});
    child.deadlines.stop();
    child.ready.reject(new Error(reason));
    child.ready.promise.catch(() => {});
    const requests = child.pending.ids();
    for (const id of requests) this.#fail(child, id, new GuestError(reason, status));
    for (const answer of child.sqlCalls.values()) answer({ ok: false, error: reason });
    this.options.capabilities.requestEnded(OWN_REQUEST);
    if (this.#stopped) return;
    componentMetrics(this.name).restarts++;
    const pause = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.#crashes++);
    this.#notBefore = performance.now() + pause;
    log.error(`${this.name}: process replaced in ${pause} ms: ${reason}`);
    // Started again at once (after the pause), so that the next request finds it up.
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      if (!this.#stopped && !this.#ready) this.start().catch(() => {});
    }, pause);
  }

  /** Its responses carry the request's `x-request-id`: the server need not read their headers. */
  readonly answersWithId = true;

  fetch(request: ComponentRequest): Promise<Response> {
    const child = this.#child;
    // The common case without an `async` frame (a promise and microtasks per request): the
    // process up, no body to read, room under `limits.concurrency`.
    if (
      request.body === null && child?.started &&
      this.inFlight < this.options.permissions.limits.concurrency
    ) {
      return this.#enter(child, request, null);
    }
    return this.#fetchLater(request);
  }

  /** {@link fetch} when the request must wait: for its body, or for the process to start. */
  async #fetchLater(request: ComponentRequest): Promise<Response> {
    admit(this.inFlight, this.options.permissions.limits.concurrency);
    this.#entering++;
    let body: Uint8Array | null;
    try {
      body = typeof request.body === "function" ? await request.body() : request.body;
      if (!this.#child?.started) {
        try {
          await this.start();
        } catch (error) {
          throw new GuestError(`could not start: ${(error as Error).message}`, 503);
        }
      }
    } finally {
      this.#entering--;
    }
    const child = this.#child;
    if (!child?.started) throw new GuestError("could not start: the process is gone", 503);
    return await this.#enter(child, request, body);
  }

  /** Sends the request to the running process; resolves with its response head. */
  #enter(child: Child, request: ComponentRequest, body: Uint8Array | null): Promise<Response> {
    const id = this.#nextId++;
    const head = Promise.withResolvers<Response>();
    const deadline = performance.now() + this.timeoutMs;
    child.pending.set(id, { head, uncredited: 0, deadline, requestId: request.requestId });
    child.deadlines.watch();
    this.options.capabilities.requestStarted(id, deadline);
    this.#send(child, {
      t: "req",
      id,
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: body as Uint8Array<ArrayBuffer> | null,
    });
    return head.promise;
  }

  /**
   * Calls SQL function `name` in the process; rejects when it fails, is not
   * running, or takes longer than {@link SQL_FUNCTION_TIMEOUT_MS} (the
   * process is killed then: it may be looping).
   */
  async callSqlFunction(name: string, args: WitValue[]): Promise<WitValue> {
    const child = this.#child;
    if (!child?.started) throw new Error(`component "${this.name}" is not running`);
    const callId = this.#nextSqlCall++;
    const answered = Promise.withResolvers<
      { ok: true; value: unknown } | { ok: false; error: string }
    >();
    child.sqlCalls.set(callId, answered.resolve);
    const timer = setTimeout(() => {
      answered.resolve({ ok: false, error: `no answer within ${SQL_FUNCTION_TIMEOUT_MS} ms` });
      this.#kill(child, `SQL function ${name} ran past ${SQL_FUNCTION_TIMEOUT_MS} ms`, 504);
    }, SQL_FUNCTION_TIMEOUT_MS);
    this.#send(child, { t: "sql", callId, name, args });
    const result = await answered.promise.finally(() => {
      clearTimeout(timer);
      child.sqlCalls.delete(callId);
    });
    this.options.capabilities.settle(OWN_REQUEST);
    if (!result.ok) throw new Error(`${this.name}.${name}: ${result.error}`);
    return result.value as WitValue;
  }

  stop(reason = "component stopped"): void {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (child) this.#kill(child, reason, 503);
  }
}
