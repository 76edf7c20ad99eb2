/**
 * One outbound HTTP request over a connection whose peer address is checked
 * before a byte is sent. Deno's `fetch` resolves the name itself and tells
 * nothing of the address it reached, and a worker may connect only to the
 * names it was granted (not to addresses Pier would resolve them to), so the
 * request goes over a socket connected by name whose remote address is then
 * checked: the address judged is the one connected to, and a second DNS answer
 * (rebinding) cannot move the request elsewhere.
 *
 * @module
 */
import http from "node:http";
import https from "node:https";
import { once } from "node:events";
import net from "node:net";
import { Readable } from "node:stream";
import tls from "node:tls";

/** The parts of a response the outbound handler uses. */
export interface Fetched {
  status: number;
  headers: Headers;
  body: ReadableStream<Uint8Array> | null;
}

/** What to send. */
export interface CheckedRequest {
  method: string;
  headers: [string, string][];
  body?: ReadableStream<Uint8Array>;
  /** Aborts the request until its response head arrives. */
  signal?: AbortSignal;
}

/** The connected address was refused: nothing was sent. */
export class AddressRefused extends Error {
  override name = "AddressRefused";
}

/** The port `url` connects to. */
export function defaultPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
}

/** A socket to `host:port` whose remote address `allowed` accepted. */
function connectChecked(
  host: string,
  port: number,
  allowed: (address: string) => boolean,
  signal: AbortSignal | undefined,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const fail = (error: unknown) => {
      signal?.removeEventListener("abort", abort);
      socket.destroy();
      reject(error);
    };
    const abort = () => fail(signal!.reason);
    signal?.addEventListener("abort", abort, { once: true });
    socket.once("error", fail);
    socket.once("connect", () => {
      socket.off("error", fail);
      const address = socket.remoteAddress ?? "";
      if (!allowed(address)) {
        return fail(new AddressRefused(`${host} resolved to ${address}, which is not granted`));
      }
      signal?.removeEventListener("abort", abort);
      resolve(socket);
    });
  });
}

/** Sends `request` to `url` (http or https) if `allowed` accepts the address connected to. */
export async function checkedFetch(
  url: URL,
  request: CheckedRequest,
  allowed: (address: string) => boolean,
): Promise<Fetched> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = defaultPort(url);
  const { signal } = request;
  signal?.throwIfAborted();
  const socket = await connectChecked(host, port, allowed, signal);
  const secure = url.protocol === "https:";
  const transport = secure
    ? tls.connect({ socket, host, servername: net.isIP(host) ? undefined : host })
    : socket;
  return await new Promise<Fetched>((resolve, reject) => {
    const abort = () => {
      outgoing.destroy();
      reject(signal!.reason);
    };
    const outgoing = (secure ? https : http).request({
      method: request.method,
      host,
      port,
      path: `${url.pathname}${url.search}`,
      // Deno's node:https leaves Host out on a connection it did not make.
      headers: [["host", url.host], ...request.headers].flat(),
      createConnection: () => transport,
    }, (incoming) => {
      signal?.removeEventListener("abort", abort);
      const headers = new Headers();
      for (let i = 0; i + 1 < incoming.rawHeaders.length; i += 2) {
        headers.append(incoming.rawHeaders[i], incoming.rawHeaders[i + 1]);
      }
      resolve({
        status: incoming.statusCode ?? 502,
        headers,
        body: Readable.toWeb(incoming) as ReadableStream<Uint8Array>,
      });
    });
    signal?.addEventListener("abort", abort, { once: true });
    outgoing.once("error", reject);
    if (!request.body) return void outgoing.end();
    (async () => {
      // Wait for room before reading more: the guest's writes are held back until the socket drains.
      for await (const chunk of request.body!) {
        if (!outgoing.write(chunk)) await once(outgoing, "drain");
      }
      outgoing.end();
    })().catch((error) => outgoing.destroy(error));
  });
}
