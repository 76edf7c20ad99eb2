/**
 * A native component's process: loads the component's bundled module and
 * answers the server process (`native_host.ts`) over stdin and stdout with
 * the messages of `native_protocol.ts`. It runs with exactly the component's
 * Deno permissions (`sandbox.ts`'s `nativeProcessFlags`); the guest's code
 * shares this process and can break it, which kills only this process.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import {
  BODY_WINDOW,
  type ChildInit,
  FrameWriter,
  type FromChild,
  NativeFrameReader,
  type OutboundAnswer,
  OWN_REQUEST,
  type ResponseHead,
  type ToChild,
} from "./native_protocol.ts";
import type { ComponentCore } from "../../guest/backend_types.ts";
import type { NativeLink } from "../../guest/native_backend.ts";

/**
 * Writes `bytes` to the server on this thread: an asynchronous write of
 * stdout goes through a thread of Deno's blocking pool, a hand-over per
 * write. A full pipe blocks this process until the server reads, which is
 * the back-pressure wanted; the server gone, nobody is left to answer.
 */
function writeOut(bytes: Uint8Array) {
  try {
    for (let at = 0; at < bytes.byteLength;) at += Deno.stdout.writeSync(bytes.subarray(at));
  } catch {
    Deno.exit(1);
  }
}
// A turn's frames after the I/O it found ready: many answers, one wake-up of the server.
const out = new FrameWriter(writeOut, setImmediate);

/** Sends `message`; a turn's messages go out in one write. */
function send(message: FromChild) {
  out.push(message);
}

/** The guest's console: a line per call, to the server's log. */
function redirectConsole() {
  const line = (args: unknown[]) =>
    args.map((arg) => typeof arg === "string" ? arg : Deno.inspect(arg)).join(" ");
  for (
    const [method, stream] of [
      ["log", "out"],
      ["info", "out"],
      ["debug", "out"],
      ["warn", "err"],
      ["error", "err"],
    ] as const
  ) {
    console[method] = (...args: unknown[]) => send({ t: "log", stream, line: line(args) });
  }
}

/** The request whose handler runs now, for its capability calls. */
const current = new AsyncLocalStorage<number>();
let nextCall = 1;
const calls = new Map<number, PromiseWithResolvers<unknown>>();

function call(message: (callId: number, requestId: number) => FromChild): Promise<unknown> {
  const callId = nextCall++;
  const answer = Promise.withResolvers<unknown>();
  calls.set(callId, answer);
  send(message(callId, current.getStore() ?? OWN_REQUEST));
  return answer.promise;
}

/** The link the SDK's native backend talks through. */
function makeLink(init: ChildInit): NativeLink {
  return {
    preopens: init.preopens,
    call: (op, args) => call((callId, requestId) => ({ t: "call", callId, requestId, op, args })),
    fetch: async (request) => {
      const body = request.body ? new Uint8Array(await request.arrayBuffer()) : null;
      const answer = await call((callId, requestId) => ({
        t: "fetch",
        callId,
        requestId,
        method: request.method,
        url: request.url,
        headers: [...request.headers],
        body,
      })).catch((error) => {
        throw new TypeError(`fetch ${request.url} failed: ${error?.val ?? error}`);
      }) as OutboundAnswer;
      const empty = request.method === "HEAD" || [101, 204, 205, 304].includes(answer.status);
      return new Response(empty ? null : answer.body, {
        status: answer.status,
        headers: answer.headers,
      });
    },
  };
}

/** Response bodies being sent: bytes the server may still take, and who waits for more. */
const bodies = new Map<number, { room: number; more?: () => void; cancel: () => void }>();

/**
 * Where Deno 2.9 keeps the body of a `200` response made from a string or
 * bytes with at most a content type, for `Deno.serve`'s fast path (the
 * status and headers stay public). Read there, such a body goes out without
 * the stream that `response.body` would make of it, a good part of a small
 * request's cost in this process; any other response, or a Deno without the
 * symbol, takes the stream.
 */
const STATIC_BODY = Object.getOwnPropertySymbols(new Response("")).find((symbol) =>
  symbol.description === "serve fast body"
);

/** The body of `response` if Deno holds it whole and unread (see {@link STATIC_BODY}). */
function staticBody(response: Response): string | Uint8Array<ArrayBuffer> | undefined {
  if (STATIC_BODY === undefined) return undefined;
  const body = (response as unknown as Record<symbol, unknown>)[STATIC_BODY];
  if (typeof body !== "string" && !(body instanceof Uint8Array)) return undefined;
  return response.bodyUsed ? undefined : body as string | Uint8Array<ArrayBuffer>;
}

/** Sends `response` for request `id`: whole when its body is one chunk, else streamed. */
function answer(id: number, response: Response): void | Promise<void> {
  const whole = staticBody(response);
  const headers: [string, string][] = [];
  // `forEach`, not the iterator: the same pairs without an iterator object per header.
  response.headers.forEach((value, name) => headers.push([name, value]));
  if (whole !== undefined) {
    return send({ t: "res", id, status: response.status, headers, body: whole });
  }
  return stream(id, { status: response.status, headers }, response.body?.getReader());
}

/** Sends a response whose body Deno does not hold whole: its chunks, as the server takes them. */
async function stream(
  id: number,
  head: ResponseHead,
  reader: ReadableStreamDefaultReader<Uint8Array<ArrayBuffer>> | undefined,
) {
  if (!reader) return send({ t: "res", id, ...head, body: null });
  const first = await reader.read();
  const second = first.done ? first : await reader.read();
  if (second.done) {
    return send({ t: "res", id, ...head, body: first.done ? null : first.value });
  }
  send({ t: "head", id, ...head });
  const body = { room: BODY_WINDOW, more: undefined as (() => void) | undefined, cancel: () => {} };
  let cancelled = false;
  body.cancel = () => {
    cancelled = true;
    reader.cancel().catch(() => {});
    body.more?.();
  };
  bodies.set(id, body);
  try {
    for (let chunk = first; !chunk.done && !cancelled; chunk = await reader.read()) {
      send({ t: "chunk", id, body: chunk.value });
      body.room -= chunk.value.byteLength;
      if (chunk === first) {
        send({ t: "chunk", id, body: second.value! });
        body.room -= second.value!.byteLength;
      }
      while (body.room <= 0 && !cancelled) {
        await new Promise<void>((resolve) => body.more = resolve);
      }
    }
    send({ t: "end", id });
  } finally {
    bodies.delete(id);
  }
}

/** Request `id` failed: the server answers 500 and logs `error`. */
function failed(id: number, error: unknown) {
  send({ t: "failed", id, error: String((error as Error)?.stack ?? error) });
}

/**
 * Runs the handler of request `id` (in its `AsyncLocalStorage` context) and
 * sends its answer: promise callbacks rather than an `async` frame, a promise
 * fewer per request.
 */
function handle(core: ComponentCore, id: number, request: Request, context: string) {
  let handled;
  try {
    handled = core.handle(request, JSON.parse(context));
  } catch (error) {
    return failed(id, error);
  }
  Promise.resolve(handled).then((response) => answer(id, response)).catch((error) =>
    failed(id, error)
  );
}

function request(core: ComponentCore, message: Extract<ToChild, { t: "req" }>) {
  const { id, method, url, body } = message;
  let context: string | undefined;
  const headers: [string, string][] = [];
  for (const header of message.headers) {
    if (header[0] === "__context") context = header[1];
    else headers.push(header);
  }
  let request: Request;
  try {
    if (context === undefined) throw new Error("missing __context header");
    // Made now: the body is the frame reader's bytes until its next read (the Request copies them).
    // Only what differs from a `GET` without a body: each member of the init costs a conversion.
    const init: RequestInit = { headers };
    if (method !== "GET") init.method = method;
    if (body !== null) init.body = body;
    request = new Request(url, init);
  } catch (error) {
    return failed(id, error);
  }
  current.run(id, handle, core, id, request, context);
}

function sqlFunction(core: ComponentCore, message: Extract<ToChild, { t: "sql" }>) {
  try {
    const value = core.sqlFunction(message.name, message.args as never);
    send({ t: "sql-result", callId: message.callId, ok: true, value });
  } catch (error) {
    const val = (error as { val?: unknown })?.val ?? error;
    send({ t: "sql-result", callId: message.callId, ok: false, error: String(val) });
  }
}

/** Loads the component; answers its manifest. */
async function start(init: ChildInit): Promise<ComponentCore | undefined> {
  redirectConsole();
  try {
    const exported = (await import(init.module)).default;
    if (typeof exported?.pierNative !== "function") {
      throw new Error("its default export is not a native component (built with @pier/guest)");
    }
    const core: ComponentCore = exported.pierNative(makeLink(init));
    const manifest = await current.run(OWN_REQUEST, () => core.manifest(init.manifestArgs));
    send({ t: "ready", manifest });
    return core;
  } catch (error) {
    send({ t: "init-failed", error: String((error as Error)?.message ?? error) });
    return undefined;
  }
}

/** A handler busy this long before its first `await` holds up the answers of the ones before. */
const LONG_TURN_MS = 0.5;

const reader = new NativeFrameReader();
let core: ComponentCore | undefined;
const chunk = new Uint8Array(64 * 1024);
for (let read = await Deno.stdin.read(chunk); read !== null; read = await Deno.stdin.read(chunk)) {
  reader.push(chunk.subarray(0, read));
  // The time a request's handler started: one clock read per request.
  let now = performance.now();
  for (let message = reader.next() as ToChild; message; message = reader.next() as ToChild) {
    switch (message.t) {
      case "init":
        core = await start(message);
        break;
      case "req": {
        const started = now;
        request(core!, message);
        now = performance.now();
        if (now - started >= LONG_TURN_MS) {
          // Its answer goes out now, not after the handlers of every request this read brought.
          await new Promise((resolve) => setImmediate(resolve));
          out.flush();
          now = performance.now();
        }
        break;
      }
      case "credit": {
        const body = bodies.get(message.id);
        if (!body) break;
        body.room += message.bytes;
        body.more?.();
        break;
      }
      case "cancel":
        bodies.get(message.id)?.cancel();
        break;
      case "reply": {
        const pending = calls.get(message.callId);
        calls.delete(message.callId);
        if (message.ok) pending?.resolve(message.value);
        else pending?.reject(message.error);
        break;
      }
      case "sql":
        sqlFunction(core!, message);
        break;
    }
  }
}
// The server closed the pipe: Pier is stopping this component.
Deno.exit(0);
