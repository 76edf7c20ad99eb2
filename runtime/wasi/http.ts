/**
 * `wasi:http/types` and `wasi:http/outgoing-handler` for guests.
 *
 * Requests into the guest and responses out of it are plain data plus byte
 * streams; how a response reaches the client, and whether an outgoing request
 * may leave, is decided by the caller through {@link ByteSink}s and an
 * {@link OutboundHandler}.
 *
 * @module
 */
import {
  ByteQueue,
  type ByteSink,
  InputStream,
  OutputStream,
  Pollable,
  readyPollable,
  Window,
  WRITE_BUDGET,
} from "./io.ts";

/** A WASI HTTP `error-code` value. */
export type ErrorCode = { tag: string; val?: unknown };

/** Throws the unit error of a `result<T>` to the guest. */
function unitError(): never {
  throw { payload: undefined };
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `wasi:http/types.fields`: headers and trailers as raw byte values. */
export class Fields {
  #list: [string, Uint8Array][] | undefined = [];
  /** Host-side pairs not encoded yet: most guests never read a request's headers. */
  #host: Iterable<[string, string]> | undefined;
  #immutable = false;

  /** Immutable fields from host-side pairs, encoded when the guest first reads them. */
  static fromHost(pairs: Iterable<[string, string]>): Fields {
    const fields = new Fields();
    fields.#host = pairs;
    fields.#list = undefined;
    fields.#immutable = true;
    return fields;
  }
  static fromList(entries: [string, Uint8Array][]): Fields {
    const fields = new Fields();
    for (const [name, value] of entries) {
      if (!TOKEN.test(name)) throw { tag: "invalid-syntax" };
      // jco lifts each value into a copy of its own: kept as it is.
      fields.#list!.push([name.toLowerCase(), value]);
    }
    return fields;
  }
  /** The entries, the host's encoded into one block (values are views of it) on first use. */
  get #entries(): [string, Uint8Array][] {
    if (this.#list) return this.#list;
    const pairs = [...this.#host!];
    this.#host = undefined;
    let most = 0;
    for (const [, value] of pairs) most += value.length * 3;
    const block = new Uint8Array(most);
    let at = 0;
    this.#list = pairs.map(([name, value]) => {
      const { written } = encoder.encodeInto(value, block.subarray(at));
      return [name.toLowerCase(), block.subarray(at, at += written)];
    });
    return this.#list;
  }
  set #entries(list: [string, Uint8Array][]) {
    this.#list = list;
  }
  get(name: string): Uint8Array[] {
    const key = name.toLowerCase();
    return this.#entries.filter(([n]) => n === key).map(([, v]) => v);
  }
  has(name: string): boolean {
    const key = name.toLowerCase();
    return this.#entries.some(([n]) => n === key);
  }
  set(name: string, values: Uint8Array[]): void {
    this.delete(name);
    for (const value of values) this.append(name, value);
  }
  delete(name: string): void {
    this.#checkWritable(name);
    const key = name.toLowerCase();
    this.#entries = this.#entries.filter(([n]) => n !== key);
  }
  append(name: string, value: Uint8Array): void {
    this.#checkWritable(name);
    this.#entries.push([name.toLowerCase(), value]);
  }
  entries(): [string, Uint8Array][] {
    return this.#entries.map(([n, v]) => [n, v]);
  }
  clone(): Fields {
    const copy = new Fields();
    copy.#list = this.entries();
    return copy;
  }
  /** Freezes the fields once they belong to a request or response. */
  freeze(): this {
    this.#immutable = true;
    return this;
  }
  /** The fields as Web `Headers`-style string pairs. */
  toPairs(): [string, string][] {
    return this.#entries.map(([n, v]) => [n, decoder.decode(v)]);
  }
  #checkWritable(name: string) {
    if (this.#immutable) throw { tag: "immutable" };
    if (!TOKEN.test(name)) throw { tag: "invalid-syntax" };
  }
}

/** WASI's `method` variant for a method name. */
function methodVariant(method: string): ErrorCode {
  const known = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
  ];
  return known.includes(method) ? { tag: method.toLowerCase() } : { tag: "other", val: method };
}

function methodName(method: ErrorCode): string {
  return method.tag === "other" ? String(method.val) : method.tag.toUpperCase();
}

/** `wasi:http/types.incoming-body`: a body the guest reads. */
export class IncomingBody {
  #stream: InputStream | undefined;
  #taken = false;
  constructor(readonly queue: ByteQueue) {}
  stream(): InputStream {
    if (this.#taken) unitError();
    this.#taken = true;
    return this.#stream = new InputStream(this.queue);
  }
  static finish(_body: IncomingBody): FutureTrailers {
    return new FutureTrailers();
  }
}

/** `wasi:http/types.future-trailers`: Pier carries no trailers. */
export class FutureTrailers {
  #taken = false;
  subscribe(): Pollable {
    return readyPollable();
  }
  get(): unknown {
    if (this.#taken) return { tag: "err" };
    this.#taken = true;
    return { tag: "ok", val: { tag: "ok", val: undefined } };
  }
}

/** What the host knows about a request entering the guest. */
export interface IncomingRequestInit {
  method: string;
  /** The absolute URL, parsed when the guest first asks for a part of it. */
  url: string;
  headers: [string, string][];
  body: ByteQueue;
}

/** `wasi:http/types.incoming-request`. */
export class IncomingRequest {
  #headers: Fields;
  #body: IncomingBody | undefined;
  #url: URL | undefined;
  constructor(readonly init: IncomingRequestInit) {
    this.#headers = Fields.fromHost(init.headers);
  }
  get #parsed(): URL {
    return this.#url ??= new URL(this.init.url);
  }
  method(): ErrorCode {
    return methodVariant(this.init.method);
  }
  pathWithQuery(): string {
    return this.#parsed.pathname + this.#parsed.search;
  }
  scheme(): ErrorCode {
    return this.#parsed.protocol === "https:" ? { tag: "HTTPS" } : { tag: "HTTP" };
  }
  authority(): string {
    return this.#parsed.host;
  }
  headers(): Fields {
    return this.#headers;
  }
  consume(): IncomingBody {
    if (this.#body) unitError();
    return this.#body = new IncomingBody(this.init.body);
  }
}

/**
 * Bytes written by the guest before anyone reads them: buffered (up to
 * {@link WRITE_BUDGET}) until {@link PendingBody.attach} names where they go,
 * whose room the guest then waits for.
 */
export class PendingBody implements ByteSink {
  #buffered: Uint8Array[] = [];
  #early = new Window(WRITE_BUDGET);
  #target: ByteSink | undefined;
  #finished = false;
  #onFinish: (() => void) | undefined;

  get failure(): string | undefined {
    return this.#target?.failure;
  }
  get finished(): boolean {
    return this.#finished;
  }
  get room(): number {
    return this.#target ? (this.#target.room ?? WRITE_BUDGET) : this.#early.room;
  }
  whenRoom(): Promise<void> {
    return this.#target?.whenRoom?.() ?? this.#early.whenRoom();
  }
  write(bytes: Uint8Array): void {
    if (this.#finished) throw new Error("write after the body was finished");
    if (this.#target) return this.#target.write(bytes);
    this.#buffered.push(bytes);
    this.#early.take(bytes.byteLength);
  }
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#onFinish?.();
  }
  attach(target: ByteSink, onFinish: () => void): void {
    this.#target = target;
    for (const chunk of this.#buffered) target.write(chunk);
    this.#buffered = [];
    // Writers waiting for room now wait on the target.
    this.#early.wake();
    this.#onFinish = onFinish;
    if (this.#finished) onFinish();
  }
}

/** `wasi:http/types.outgoing-body`: a body the guest writes. */
export class OutgoingBody {
  #stream: OutputStream | undefined;
  constructor(readonly pending: PendingBody) {}
  write(): OutputStream {
    if (this.#stream) unitError();
    return this.#stream = new OutputStream(this.pending);
  }
  static finish(body: OutgoingBody, _trailers?: Fields): void {
    body.pending.finish();
  }
}

/** `wasi:http/types.outgoing-response`. */
export class OutgoingResponse {
  #status = 200;
  #body: OutgoingBody | undefined;
  readonly pending = new PendingBody();
  constructor(readonly fields: Fields) {}
  statusCode(): number {
    return this.#status;
  }
  setStatusCode(status: number): void {
    if (status < 100 || status > 599) unitError();
    this.#status = status;
  }
  headers(): Fields {
    return this.fields;
  }
  body(): OutgoingBody {
    if (this.#body) unitError();
    return this.#body = new OutgoingBody(this.pending);
  }
}

/** Where the guest's answer to an incoming request goes. */
export interface ResponseTarget {
  /** The guest set its response: status and headers are final. */
  start(response: OutgoingResponse): void;
  /** The guest answered with an error code instead of a response. */
  fail(error: ErrorCode): void;
}

/** `wasi:http/types.response-outparam`. */
export class ResponseOutparam {
  #used = false;
  constructor(readonly target: ResponseTarget) {}
  get used(): boolean {
    return this.#used;
  }
  sendInformational(): void {
    throw { tag: "internal-error", val: "informational responses are not supported" };
  }
  static set(
    param: ResponseOutparam,
    response: { tag: "ok"; val: OutgoingResponse } | {
      tag: "err";
      val: ErrorCode;
    },
  ): void {
    if (param.#used) throw new Error("response-outparam.set called twice");
    param.#used = true;
    if (response.tag === "ok") param.target.start(response.val);
    else param.target.fail(response.val);
  }
}

/** `wasi:http/types.request-options`: timeouts in nanoseconds. */
export class RequestOptions {
  connect: bigint | undefined;
  firstByte: bigint | undefined;
  betweenBytes: bigint | undefined;
  connectTimeout(): bigint | undefined {
    return this.connect;
  }
  setConnectTimeout(ns?: bigint): void {
    this.connect = ns;
  }
  firstByteTimeout(): bigint | undefined {
    return this.firstByte;
  }
  setFirstByteTimeout(ns?: bigint): void {
    this.firstByte = ns;
  }
  betweenBytesTimeout(): bigint | undefined {
    return this.betweenBytes;
  }
  setBetweenBytesTimeout(ns?: bigint): void {
    this.betweenBytes = ns;
  }
}

/** `wasi:http/types.outgoing-request`. */
export class OutgoingRequest {
  #method: ErrorCode = { tag: "get" };
  #pathWithQuery: string | undefined;
  #scheme: ErrorCode | undefined;
  #authority: string | undefined;
  #body: OutgoingBody | undefined;
  readonly pending = new PendingBody();
  constructor(readonly fields: Fields) {}
  body(): OutgoingBody {
    if (this.#body) unitError();
    return this.#body = new OutgoingBody(this.pending);
  }
  method(): ErrorCode {
    return this.#method;
  }
  setMethod(method: ErrorCode): void {
    this.#method = method;
  }
  pathWithQuery(): string | undefined {
    return this.#pathWithQuery;
  }
  setPathWithQuery(value?: string): void {
    this.#pathWithQuery = value;
  }
  scheme(): ErrorCode | undefined {
    return this.#scheme;
  }
  setScheme(value?: ErrorCode): void {
    this.#scheme = value;
  }
  authority(): string | undefined {
    return this.#authority;
  }
  setAuthority(value?: string): void {
    this.#authority = value;
  }
  headers(): Fields {
    return this.fields;
  }
  /** The request's method name. */
  get methodName(): string {
    return methodName(this.#method);
  }
  /** The absolute URL the request is for. */
  get url(): string {
    const scheme = this.#scheme?.tag === "other"
      ? String(this.#scheme.val)
      : (this.#scheme?.tag ?? "HTTPS").toLowerCase();
    return `${scheme}://${this.#authority ?? ""}${this.#pathWithQuery ?? "/"}`;
  }
}

/** `wasi:http/types.incoming-response`: a response to the guest's request. */
export class IncomingResponse {
  #headers: Fields;
  #body: IncomingBody | undefined;
  constructor(
    readonly statusValue: number,
    headers: [string, string][],
    readonly bodyQueue: ByteQueue,
  ) {
    this.#headers = Fields.fromHost(headers);
  }
  status(): number {
    return this.statusValue;
  }
  headers(): Fields {
    return this.#headers;
  }
  consume(): IncomingBody {
    if (this.#body) unitError();
    return this.#body = new IncomingBody(this.bodyQueue);
  }
}

/** `wasi:http/types.future-incoming-response`. */
export class FutureIncomingResponse {
  #outcome: { tag: "ok"; val: unknown } | undefined;
  #taken = false;
  #settled: Promise<void>;
  constructor(response: Promise<IncomingResponse>) {
    this.#settled = response.then(
      (val) => void (this.#outcome = { tag: "ok", val: { tag: "ok", val } }),
      (error) =>
        void (this.#outcome = {
          tag: "ok",
          val: { tag: "err", val: toErrorCode(error) },
        }),
    );
  }
  subscribe(): Pollable {
    return new Pollable(() => this.#outcome !== undefined, () => this.#settled);
  }
  get(): unknown {
    if (!this.#outcome) return undefined;
    if (this.#taken) return { tag: "err" };
    this.#taken = true;
    return this.#outcome;
  }
}

/** An error raised by an {@link OutboundHandler} with a WASI error code. */
export class HttpErrorCode extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

function toErrorCode(error: unknown): ErrorCode {
  if (error instanceof HttpErrorCode) return error.code;
  return {
    tag: "internal-error",
    val: String((error as Error)?.message ?? error),
  };
}

/** Sends a guest's outgoing request; rejects with {@link HttpErrorCode}. */
export type OutboundHandler = (
  request: OutgoingRequest,
  options: RequestOptions | undefined,
) => Promise<IncomingResponse>;

/** The `wasi:http/types` import object (`wasi:http/outgoing-handler` is a capability's). */
export function httpImports(): Record<string, Record<string, unknown>> {
  return {
    "wasi:http/types": {
      Fields,
      FutureIncomingResponse,
      FutureTrailers,
      IncomingBody,
      IncomingRequest,
      IncomingResponse,
      OutgoingBody,
      OutgoingRequest,
      OutgoingResponse,
      RequestOptions,
      ResponseOutparam,
      // Pier's stream errors carry no HTTP error code.
      httpErrorCode: () => undefined,
    },
  };
}
