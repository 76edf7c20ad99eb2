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
import { ByteQueue } from "../wasi/io.ts";
import type { FromWorker, ToWorker, WorkerInit, WorkerRequest } from "./protocol.ts";
import { limitMemory } from "./memory_limit.ts";
import { writeResult } from "./sync_call.ts";
import type { WitValue } from "../capabilities/values.ts";

type Exports = Record<string, Record<string, (...args: unknown[]) => unknown>>;
type Instantiate = (
  getCoreModule: (name: string) => Promise<WebAssembly.Module>,
  imports: ImportObject,
) => Promise<Exports>;

// jco's glue looks for `process.env.JCO_DEBUG` on every host call: without
// `process` that check is free and needs no env permission.
Reflect.deleteProperty(globalThis, "process");

function post(message: FromWorker, transfer: Transferable[] = []) {
  self.postMessage(message, transfer);
}

/** Finds an export by interface name, whatever its version. */
function exported(exports: Exports, iface: string) {
  const key = Object.keys(exports).find((k) => k.startsWith(`${iface}@`));
  return key ? exports[key] : undefined;
}

/** A guest instance and the request it serves. */
interface Instance {
  exports: Exports;
  context: { requestId: number };
}

const pendingCalls = new Map<number, PromiseWithResolvers<unknown>>();
let nextCallId = 1;

function callHost(requestId: number, op: string, args: unknown[]): Promise<unknown> {
  const callId = nextCallId++;
  const pending = Promise.withResolvers<unknown>();
  pendingCalls.set(callId, pending);
  post({ type: "call", callId, requestId, op, args });
  return pending.promise;
}

class Component {
  #idle: Instance[] = [];
  #modules = new Map<string, Promise<WebAssembly.Module>>();

  constructor(readonly init: WorkerInit, readonly instantiate: Instantiate) {}

  #coreModule = (file: string) => {
    let module = this.#modules.get(file);
    if (!module) {
      module = Deno.readFile(`${this.init.coreDir}/${file}`).then((bytes) =>
        WebAssembly.compile(limitMemory(bytes, this.init.memoryMb * 2 ** 20) as BufferSource)
      );
      this.#modules.set(file, module);
    }
    return module;
  };

  async #create(): Promise<Instance> {
    const context = { requestId: 0 };
    const guestLog = (stream: string) =>
      new LineSink((line) => console.error(`[${this.init.name}:${stream}] ${line}`));
    const imports = hostImports(
      {
        name: this.init.name,
        stdout: guestLog("out"),
        stderr: guestLog("err"),
        env: this.init.env,
        net: this.init.net,
        preopens: this.init.preopens,
      },
      (op, args) => callHost(context.requestId, op, args),
    );
    return { exports: await this.instantiate(this.#coreModule, imports), context };
  }

  /** An instance for request `requestId`: an idle one, or a new one. */
  async acquire(requestId: number): Promise<Instance> {
    const instance = this.#idle.pop() ?? await this.#create();
    instance.context.requestId = requestId;
    return instance;
  }

  release(instance: Instance) {
    if (this.#idle.length < this.init.maxIdleInstances) this.#idle.push(instance);
  }

  async manifest(): Promise<string> {
    const instance = await this.acquire(0);
    const endpoint = exported(instance.exports, "trailbase:component/init-endpoint");
    if (!endpoint) throw new Error("the component does not export init-endpoint");
    const manifest = await endpoint.getManifest(this.init.manifestArgs);
    this.release(instance);
    return manifest as string;
  }
}

/** Sends the guest's response to the server thread as it is written. */
class ResponseChannel implements ResponseTarget {
  started = false;
  ended = false;
  failure: string | undefined;
  constructor(readonly id: number) {}

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
    post({ type: "chunk", id: this.id, bytes }, [bytes.buffer as ArrayBuffer]);
  }
  end() {
    if (this.ended) return;
    this.ended = true;
    post({ type: "end", id: this.id });
  }
}

let component: Component | undefined;
const inFlight = new Map<number, ResponseChannel>();

async function handle(request: WorkerRequest) {
  const channel = new ResponseChannel(request.id);
  inFlight.set(request.id, channel);
  try {
    const instance = await component!.acquire(request.id);
    const handler = exported(instance.exports, "wasi:http/incoming-handler");
    if (!handler) throw new Error("the component does not export incoming-handler");
    const incoming = new IncomingRequest({
      method: request.method,
      url: new URL(request.url),
      headers: request.headers,
      body: ByteQueue.of(request.body),
    });
    await handler.handle(incoming, new ResponseOutparam(channel));
    if (!channel.started) {
      throw new Error("the component returned without setting a response");
    }
    channel.end();
    component!.release(instance);
  } catch (error) {
    // A trapped instance's state is undefined: it is not reused.
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (!channel.started) {
      post({ type: "failed", id: request.id, error: "component failed", detail });
    } else {
      console.error(`[${component?.init.name}] request failed mid-response: ${detail}`);
      channel.end();
    }
  } finally {
    inFlight.delete(request.id);
  }
}

/** Runs one SQL function call on an instance of its own. */
async function sqlFunction(name: string, args: WitValue[]) {
  try {
    const instance = await component!.acquire(0);
    const endpoint = exported(instance.exports, "trailbase:component/sqlite-function-endpoint");
    if (!endpoint) throw new Error("the component does not export sqlite-function-endpoint");
    const value = endpoint.dispatchScalarFunction({ functionName: name, arguments: args });
    component!.release(instance);
    return value as WitValue;
  } catch (error) {
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

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "init": {
      const started = performance.now();
      try {
        const glue = await import(message.glueUrl);
        component = new Component(message, glue.instantiate);
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
    case "reply": {
      const pending = pendingCalls.get(message.callId);
      pendingCalls.delete(message.callId);
      if (message.ok) pending?.resolve(message.value);
      else pending?.reject(message.error);
      break;
    }
    case "sql-function":
      writeResult(
        component!.init.syncBuffer,
        message.callId,
        await sqlFunction(message.name, message.args),
      );
      break;
    case "cancel": {
      const channel = inFlight.get(message.id);
      if (channel) channel.failure = "the client went away";
      break;
    }
  }
};
