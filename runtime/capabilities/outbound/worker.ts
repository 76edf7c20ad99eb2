/**
 * `wasi:http/outgoing-handler` for guests: in-band `__sqlite`/`__prefs`
 * calls go to the server thread; everything else is a real `fetch`, allowed
 * only to the hosts of the component's manifest. Redirects are followed by
 * hand so every hop is checked, and never into a private address.
 *
 * @module
 */
import { log } from "../../log.ts";
import type { NetRule } from "../../permissions.ts";
import {
  FutureIncomingResponse,
  HttpErrorCode,
  IncomingResponse,
  type OutboundHandler,
  type OutgoingRequest,
  type PendingBody,
  type RequestOptions,
} from "../../wasi/http.ts";
import type { HostCall } from "../calls.ts";
import type { GuestSide } from "../sides.ts";
import type { GuestCounts } from "../../metrics.ts";
import { concatBytes } from "../../bytes.ts";
import { ByteQueue, Window, WRITE_BUDGET } from "../../wasi/io.ts";
import type { Fetched } from "./checked_fetch.ts";
import { fetchGranted, OutboundRefused } from "./follow.ts";

const IN_BAND_HOSTS = new Set(["__sqlite", "__prefs"]);
/** Headers that `fetch` sets itself. */
const HOP_HEADERS = new Set([
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "keep-alive",
]);

/** The largest in-band request body (`__sqlite`, `__prefs`). */
const MAX_IN_BAND_BYTES = 16 * 1024 * 1024;

/** Collects everything the guest writes into `pending` until it finishes the body. */
function collect(pending: PendingBody): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  return new Promise((resolve) => {
    const sink = {
      failure: undefined as string | undefined,
      write(bytes: Uint8Array) {
        size += bytes.byteLength;
        if (size > MAX_IN_BAND_BYTES) {
          sink.failure = `in-band request body larger than ${MAX_IN_BAND_BYTES} bytes`;
        } else chunks.push(bytes);
      },
    };
    pending.attach(sink, () => resolve(concatBytes(chunks)));
  });
}

/**
 * The request body as a stream fed by the guest's writes: the guest may get
 * at most {@link WRITE_BUDGET} ahead of what `fetch` has sent.
 */
function bodyStream(pending: PendingBody): ReadableStream<Uint8Array> {
  const window = new Window(WRITE_BUDGET);
  return new ReadableStream({
    start(controller) {
      pending.attach({
        write: (bytes) => {
          window.take(bytes.byteLength);
          controller.enqueue(bytes);
        },
        get room() {
          return window.room;
        },
        whenRoom: () => window.whenRoom(),
      }, () => controller.close());
    },
    // With no high-water mark, pull means fetch took everything queued.
    pull() {
      window.give(window.used);
    },
  }, { highWaterMark: 0 });
}

function nsToMs(ns: bigint | undefined): number | undefined {
  return ns === undefined ? undefined : Number(ns / 1_000_000n);
}

/**
 * Reads a fetch response body into a queue as the guest asks for more;
 * `done` is called once it ended or failed.
 */
function responseQueue(
  response: Fetched,
  betweenBytesMs: number | undefined,
  done: () => void,
): ByteQueue {
  const reader = response.body?.getReader();
  if (!reader) {
    done();
    return ByteQueue.of(null);
  }
  return new ByteQueue(async (queue) => {
    const next = reader.read();
    try {
      const result = betweenBytesMs === undefined ? await next : await Promise.race([
        next,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("between-bytes timeout")), betweenBytesMs)
        ),
      ]);
      if (result.done) {
        done();
        queue.close();
      } else queue.push(result.value);
    } catch (error) {
      done();
      throw error;
    }
  });
}

/**
 * Creates the outbound handler of component `name` with the given `net`
 * rules; each request waits for a `slot` (see `limits.outbound`), held until
 * its response body ended (or its request did).
 */
function createOutbound(
  name: string,
  rules: NetRule[],
  call: HostCall,
  slot: () => Promise<() => void>,
  counts: GuestCounts,
): OutboundHandler {
  const denied = (message: string) => {
    counts.count("fetch", true);
    log.warn(`${name}: outbound request denied: ${message}`);
    return new HttpErrorCode({ tag: "HTTP-request-denied" }, message);
  };
  return async (request: OutgoingRequest, options: RequestOptions | undefined) => {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      throw new HttpErrorCode({ tag: "HTTP-request-URI-invalid" }, `bad URL ${request.url}`);
    }
    if (IN_BAND_HOSTS.has(url.hostname)) {
      const body = new TextDecoder().decode(await collect(request.pending));
      const answer = await call("db.inband", [url.href, body]);
      return new IncomingResponse(
        200,
        [["content-type", "application/json"]],
        ByteQueue.of(new TextEncoder().encode(answer)),
      );
    }
    counts.count("fetch");
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new HttpErrorCode(
        { tag: "HTTP-protocol-error" },
        `scheme ${url.protocol} not supported`,
      );
    }
    const method = request.methodName;
    const headers = request.fields.toPairs().filter(([name]) => !HOP_HEADERS.has(name));
    const hasBody = method !== "GET" && method !== "HEAD";
    const firstByteMs = nsToMs(options?.firstByte) ?? nsToMs(options?.connect);
    const release = await slot();
    const signal = firstByteMs === undefined ? undefined : AbortSignal.timeout(firstByteMs);
    let response: Fetched;
    try {
      response = await fetchGranted(url, {
        method,
        headers,
        body: hasBody ? bodyStream(request.pending) : undefined,
        signal,
      }, rules);
    } catch (error) {
      release();
      if (error instanceof OutboundRefused) {
        if (error.kind === "loop") throw new HttpErrorCode({ tag: "loop-detected" }, error.message);
        throw denied(error.message);
      }
      const name = (error as Error).name;
      if (name === "TimeoutError") {
        throw new HttpErrorCode({ tag: "connection-timeout" }, "request timed out");
      }
      if (name === "NotCapable" || name === "PermissionDenied") {
        throw denied(`${url.host} is not allowed: ${(error as Error).message}`);
      }
      throw new HttpErrorCode(
        { tag: "internal-error", val: (error as Error).message },
        (error as Error).message,
      );
    }
    const responseHeaders: [string, string][] = [];
    response.headers.forEach((value, name) => responseHeaders.push([name, value]));
    return new IncomingResponse(
      response.status,
      responseHeaders,
      responseQueue(response, nsToMs(options?.betweenBytes), release),
    );
  };
}

/** The `wasi:http/outgoing-handler` import object for one guest instance. */
export const outboundImports: GuestSide = ({ name, net, call, outboundSlot, counts }) => {
  const outbound = createOutbound(name, net, call, outboundSlot, counts);
  return {
    "wasi:http/outgoing-handler": {
      handle: (request: OutgoingRequest, options?: RequestOptions) =>
        new FutureIncomingResponse(outbound(request, options)),
    },
  };
};
