/**
 * Outbound HTTP: the Web-standard `fetch`, over `wasi:http/outgoing-handler`.
 * The component's permission manifest lists the hosts it may call under
 * `"net"`; a call to any other host fails with a `TypeError` whose message
 * names the host's reason (`HTTP-request-denied`).
 *
 * ```ts
 * import { fetch } from "@pier/guest/fetch";
 *
 * const response = await fetch("https://api.example.com/items?limit=5");
 * if (!response.ok) throw new Error(`upstream answered ${response.status}`);
 * const items = await response.json();
 * ```
 *
 * Redirects are the host's business: Pier follows them, checking every hop
 * against the grants (`wasi:http` itself does not follow them).
 *
 * @module
 */
/// <reference path="./wit.d.ts" />
import { handle } from "wasi:http/outgoing-handler@0.2.12";
import { IncomingBody, OutgoingBody, OutgoingRequest, type Scheme } from "wasi:http/types@0.2.12";
import {
  describeVariant,
  payloadOf,
  toFields,
  toHeaders,
  toMethod,
  toReadable,
  writeAll,
} from "./wasi.ts";

interface Outgoing {
  method: string;
  url: URL;
  headers: Headers;
  body: Uint8Array | null;
}

/** WASI's scheme for a URL's `protocol`. */
function toScheme(protocol: string): Scheme {
  if (protocol === "https:") return { tag: "HTTPS" };
  return protocol === "http:" ? { tag: "HTTP" } : { tag: "other", val: protocol.slice(0, -1) };
}

/** Sends one request and waits for the response head; the body streams. */
function send(request: Outgoing): Response {
  const outgoing = new OutgoingRequest(toFields(request.headers));
  outgoing.setMethod(toMethod(request.method));
  outgoing.setScheme(toScheme(request.url.protocol));
  outgoing.setAuthority(request.url.host);
  outgoing.setPathWithQuery(request.url.pathname + request.url.search);
  // The body is complete before the request is handed over.
  const body = outgoing.body();
  const stream = body.write();
  if (request.body) writeAll(stream, request.body);
  stream[Symbol.dispose]();
  OutgoingBody.finish(body, undefined);
  let future;
  try {
    future = handle(outgoing, undefined);
  } catch (error) {
    throw new TypeError(`fetch ${request.url}: ${describeVariant(payloadOf(error))}`);
  }

  const pollable = future.subscribe();
  pollable.block();
  pollable[Symbol.dispose]();
  const outcome = future.get();
  future[Symbol.dispose]();
  if (outcome?.tag !== "ok") throw new TypeError(`fetch ${request.url}: no response`);
  if (outcome.val.tag === "err") {
    throw new TypeError(`fetch ${request.url} failed: ${describeVariant(outcome.val.val)}`);
  }
  const incoming = outcome.val.val;
  const status = incoming.status();
  const headers = toHeaders(incoming.headers());
  const incomingBody = incoming.consume();
  const done = () => {
    IncomingBody.finish(incomingBody)[Symbol.dispose]();
    incoming[Symbol.dispose]();
  };
  const nullBody = request.method === "HEAD" || [101, 204, 205, 304].includes(status);
  if (nullBody) {
    done();
    return new Response(null, { status, headers });
  }
  return new Response(toReadable(incomingBody.stream(), done), { status, headers });
}

/**
 * Web-standard `fetch` through the host. Request bodies are sent whole;
 * response bodies stream.
 */
export async function fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const request = new Request(input, init);
  return send({
    method: request.method,
    url: new URL(request.url),
    headers: request.headers,
    body: request.body ? new Uint8Array(await request.arrayBuffer()) : null,
  });
}
