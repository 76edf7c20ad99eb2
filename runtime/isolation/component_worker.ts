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
  HttpErrorCode,
  IncomingRequest,
  type OutgoingResponse,
  ResponseOutparam,
  type ResponseTarget,
} from "../wasi/http.ts";
import { hostImports, type ImportObject } from "../wasi/imports.ts";
import { ByteQueue } from "../wasi/io.ts";
import type { FromWorker, ToWorker, WorkerInit, WorkerRequest } from "./protocol.ts";

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

class Component {
  #idle: Exports[] = [];
  #modules = new Map<string, Promise<WebAssembly.Module>>();
  #imports: ImportObject;

  constructor(readonly init: WorkerInit, readonly instantiate: Instantiate) {
    const guestLog = (stream: string) =>
      new LineSink((line) => console.error(`[${init.name}:${stream}] ${line}`));
    this.#imports = hostImports({
      stdout: guestLog("out"),
      stderr: guestLog("err"),
      env: init.env,
      outbound: () =>
        Promise.reject(
          new HttpErrorCode(
            { tag: "HTTP-request-denied" },
            "outbound HTTP is not granted",
          ),
        ),
    });
  }

  #coreModule = (file: string) => {
    let module = this.#modules.get(file);
    if (!module) {
      module = Deno.readFile(`${this.init.coreDir}/${file}`).then((bytes) =>
        WebAssembly.compile(bytes)
      );
      this.#modules.set(file, module);
    }
    return module;
  };

  async acquire(): Promise<Exports> {
    return this.#idle.pop() ??
      await this.instantiate(this.#coreModule, this.#imports);
  }

  release(instance: Exports) {
    if (this.#idle.length < this.init.maxIdleInstances) {
      this.#idle.push(instance);
    }
  }

  async manifest(): Promise<string> {
    const instance = await this.acquire();
    const endpoint = exported(instance, "trailbase:component/init-endpoint");
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
  let instance: Exports | undefined;
  try {
    instance = await component!.acquire();
    const handler = exported(instance, "wasi:http/incoming-handler");
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
    case "cancel": {
      const channel = inFlight.get(message.id);
      if (channel) channel.failure = "the client went away";
      break;
    }
  }
};
