/**
 * The WebAssembly backend of the SDK (see `backend_types.ts`): the component
 * exports Pier's world, and every capability is a WASI or TrailBase import.
 * A native build (`// @pier-engine native`) puts `native_backend.ts` in this
 * module's place. Not part of the public API.
 *
 * @module
 */
/// <reference path="./wit.d.ts" />
import { Transaction } from "trailbase:database/sqlite@0.1.1";
import { getEnvironment } from "wasi:cli/environment@0.2.12";
import { getDirectories } from "wasi:filesystem/preopens@0.2.12";
import type { Descriptor } from "wasi:filesystem/types@0.2.12";
import { handle } from "wasi:http/outgoing-handler@0.2.12";
import {
  IncomingBody,
  type IncomingRequest,
  OutgoingBody,
  OutgoingRequest,
  OutgoingResponse,
  ResponseOutparam,
  type Scheme,
} from "wasi:http/types@0.2.12";
import { increment } from "wasi:keyvalue/atomics@0.2.0-draft";
import { type Bucket, open } from "wasi:keyvalue/store@0.2.0-draft";
import {
  type Backend,
  type ComponentCore,
  holder,
  type RawContext,
  ReadFailure,
} from "./backend_types.ts";
import { textBody } from "./response.ts";
import { ownBytes, type WitValue } from "./values.ts";
import {
  describeVariant,
  methodName,
  payloadOf,
  pipeTo,
  toFields,
  toHeaders,
  toMethod,
  toReadable,
  writeAll,
} from "./wasi.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends `response` through the host, streaming its body (a text body the SDK made: at once). */
async function send(out: ResponseOutparam, response: Response): Promise<void> {
  const outgoing = new OutgoingResponse(toFields(response.headers));
  outgoing.setStatusCode(response.status);
  const body = outgoing.body();
  ResponseOutparam.set(out, { tag: "ok", val: outgoing });
  const stream = body.write();
  const text = textBody(response);
  try {
    if (text !== undefined) writeAll(stream, encoder.encode(text));
    else if (response.body) await pipeTo(response.body, stream);
  } catch (error) {
    console.error(`writing the response body failed: ${error}`);
  } finally {
    stream[Symbol.dispose]();
    OutgoingBody.finish(body, undefined);
  }
}

/**
 * The Web `Request` for an incoming WASI request whose headers, less
 * `__context`, are `headers`; the body is read as it is consumed.
 */
function toRequest(incoming: IncomingRequest, headers: Headers): Request {
  const method = methodName(incoming.method());
  const scheme = incoming.scheme();
  const protocol = scheme?.tag === "HTTPS"
    ? "https"
    : scheme?.tag === "other"
    ? scheme.val
    : "http";
  const url = `${protocol}://${incoming.authority() ?? "localhost"}${
    incoming.pathWithQuery() ?? "/"
  }`;
  if (method === "GET" || method === "HEAD") return new Request(url, { method, headers });
  const body = incoming.consume();
  const stream = toReadable(body.stream(), () => body[Symbol.dispose]());
  return new Request(url, { method, headers, body: stream, duplex: "half" } as RequestInit);
}

/** The three exports of Pier's world, answered by `core`. */
function exportComponent(core: ComponentCore) {
  return {
    incomingHandler: {
      async handle(incoming: IncomingRequest, out: ResponseOutparam) {
        // One read of the fields for both the context and the request's headers: every WIT
        // call is interpreted binding code under SpiderMonkey.
        let context: Uint8Array | undefined;
        const headers = toHeaders(incoming.headers(), (name, value) => {
          if (name !== "__context") return true;
          context ??= value;
          return false;
        });
        if (!context) {
          const missing = new Response("missing __context header", { status: 400 });
          return send(out, missing);
        }
        const raw: RawContext = JSON.parse(decoder.decode(context));
        await send(out, await core.handle(toRequest(incoming, headers), raw));
      },
    },
    initEndpoint: { getManifest: (args: string) => core.manifest(args) },
    sqliteFunctionEndpoint: {
      dispatchScalarFunction: (
        { functionName, arguments: args }: { functionName: string; arguments: WitValue[] },
      ) => core.sqlFunction(functionName, args),
    },
  };
}

/** Runs `call` on bucket `name`, closing it after. */
function withBucket<T>(name: string, call: (bucket: Bucket) => T): Promise<T> {
  let bucket: Bucket | undefined;
  try {
    bucket = open(name);
    return Promise.resolve(call(bucket));
  } catch (error) {
    return Promise.reject(error);
  } finally {
    bucket?.[Symbol.dispose]();
  }
}

/** WASI's scheme for a URL's `protocol`. */
function toScheme(protocol: string): Scheme {
  if (protocol === "https:") return { tag: "HTTPS" };
  return protocol === "http:" ? { tag: "HTTP" } : { tag: "other", val: protocol.slice(0, -1) };
}

/** Sends one request whose body is whole and waits for the response head; the body streams. */
function sendOutgoing(request: Request, url: URL, body: Uint8Array | null): Response {
  const outgoing = new OutgoingRequest(toFields(request.headers));
  outgoing.setMethod(toMethod(request.method));
  outgoing.setScheme(toScheme(url.protocol));
  outgoing.setAuthority(url.host);
  outgoing.setPathWithQuery(url.pathname + url.search);
  const outBody = outgoing.body();
  const stream = outBody.write();
  if (body) writeAll(stream, body);
  stream[Symbol.dispose]();
  OutgoingBody.finish(outBody, undefined);
  let future;
  try {
    future = handle(outgoing, undefined);
  } catch (error) {
    throw new TypeError(`fetch ${url}: ${describeVariant(payloadOf(error))}`);
  }
  const pollable = future.subscribe();
  pollable.block();
  pollable[Symbol.dispose]();
  const outcome = future.get();
  future[Symbol.dispose]();
  if (outcome?.tag !== "ok") throw new TypeError(`fetch ${url}: no response`);
  if (outcome.val.tag === "err") {
    throw new TypeError(`fetch ${url} failed: ${describeVariant(outcome.val.val)}`);
  }
  const incoming = outcome.val.val;
  const status = incoming.status();
  const headers = toHeaders(incoming.headers());
  const incomingBody = incoming.consume();
  const done = () => {
    IncomingBody.finish(incomingBody)[Symbol.dispose]();
    incoming[Symbol.dispose]();
  };
  if (request.method === "HEAD" || [101, 204, 205, 304].includes(status)) {
    done();
    return new Response(null, { status, headers });
  }
  return new Response(toReadable(incomingBody.stream(), done), { status, headers });
}

const CHUNK = 65536n;

/** Reads all of `file`. */
function readAll(file: Descriptor): Uint8Array {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let eof = false; !eof;) {
    const [bytes, end] = file.read(CHUNK, BigInt(size));
    chunks.push(bytes);
    size += bytes.length;
    eof = end || bytes.length === 0;
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

/** The file at `wanted` from the preopened directory that holds it. */
function read(wanted: string[]): Uint8Array {
  const preopens = getDirectories();
  let file: Descriptor | undefined;
  try {
    const best = holder(preopens, wanted);
    if (!best) throw new ReadFailure("no-entry");
    if (best.rest.length === 0) throw new ReadFailure("is-directory");
    file = best.dir.openAt({}, best.rest.join("/"), {}, { read: true });
    return readAll(file);
  } catch (error) {
    if (error instanceof ReadFailure) throw error;
    throw new ReadFailure(String(payloadOf(error)));
  } finally {
    file?.[Symbol.dispose]();
    for (const [dir] of preopens) dir[Symbol.dispose]();
  }
}

/**
 * Runs one statement in a transaction of its own, begun and committed here
 * (each call waits inside the guest: no promise between them); the
 * transaction is dropped on failure, which rolls it back.
 */
function alone<T>(statement: (tx: Transaction) => T): Promise<T> {
  let tx: Transaction | undefined;
  try {
    tx = new Transaction();
    const result = statement(tx);
    tx.commit();
    return Promise.resolve(result);
  } catch (error) {
    return Promise.reject(error);
  } finally {
    tx?.[Symbol.dispose]();
  }
}

/** The environment granted to the component, read once. */
let environment: Map<string, string> | undefined;

/** The WebAssembly backend. */
export const backend: Backend = {
  exportComponent,
  single: {
    query: (sql, params) => alone((tx) => tx.query(sql, params)),
    execute: (sql, params) => alone((tx) => tx.execute(sql, params)),
  },
  begin() {
    try {
      const tx = new Transaction();
      return Promise.resolve({
        query: (sql, params) => Promise.resolve(tx.query(sql, params)),
        execute: (sql, params) => Promise.resolve(tx.execute(sql, params)),
        commit: () => Promise.resolve(tx.commit()),
        rollback: () => Promise.resolve(tx.rollback()),
        close: () => tx[Symbol.dispose](),
      });
    } catch (error) {
      return Promise.reject(error);
    }
  },
  kv: {
    get: (name, key) =>
      withBucket(name, (b) => {
        const value = b.get(key);
        return value === undefined ? undefined : ownBytes(value);
      }),
    set: (name, key, value) => withBucket(name, (b) => b.set(key, value)),
    delete: (name, key) => withBucket(name, (b) => b.delete(key)),
    exists: (name, key) => withBucket(name, (b) => b.exists(key)),
    list: (name) =>
      withBucket(name, (b) => {
        const keys: string[] = [];
        let cursor: bigint | undefined;
        do {
          const page = b.listKeys(cursor);
          keys.push(...page.keys);
          cursor = page.cursor;
        } while (cursor !== undefined);
        return keys;
      }),
    increment: (name, key, delta) => withBucket(name, (b) => increment(b, key, delta)),
  },
  async fetch(request) {
    const body = request.body ? new Uint8Array(await request.arrayBuffer()) : null;
    return sendOutgoing(request, new URL(request.url), body);
  },
  // deno-lint-ignore require-await
  async readFile(segments) {
    return read(segments);
  },
  env(name) {
    environment ??= new Map(getEnvironment());
    return environment.get(name);
  },
  variant: payloadOf,
};
