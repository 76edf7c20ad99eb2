/**
 * Internal plumbing between WASI HTTP and Web-standard `Request`/`Response`:
 * headers, methods and byte streams. Not part of the SDK's public API.
 *
 * @module
 */
/// <reference path="./wit.d.ts" />
import { Fields, type Method } from "wasi:http/types@0.2.12";
import type { InputStream, OutputStream } from "wasi:io/streams@0.2.12";
import { describeVariant } from "./backend_types.ts";
import { ownBytes } from "./values.ts";

export { describeVariant };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The error variant of a failed WIT call: componentize-js throws a
 * `ComponentError` whose `payload` holds it.
 */
export function payloadOf(error: unknown): unknown {
  return (error as { payload?: unknown })?.payload ?? error;
}

/** Is `error` a stream's `closed` error (the end of a body)? */
function isClosed(error: unknown): boolean {
  return (payloadOf(error) as { tag?: string })?.tag === "closed";
}

/** Web `Headers` as WASI fields. */
export function toFields(headers: Headers): Fields {
  return Fields.fromList([...headers].map(([name, value]) => [name, encoder.encode(value)]));
}

/** WASI fields as Web `Headers`, keeping those that `keep` (if given) says to. */
export function toHeaders(
  fields: Fields,
  keep?: (name: string, value: Uint8Array) => boolean,
): Headers {
  const headers = new Headers();
  for (const [name, value] of fields.entries()) {
    if (!keep || keep(name, value)) headers.append(name, decoder.decode(value));
  }
  return headers;
}

/** A WASI method as an upper-case method name. */
export function methodName(method: Method): string {
  return method.tag === "other" ? method.val : method.tag.toUpperCase();
}

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/** A method name as a WASI method. */
export function toMethod(name: string): Method {
  const upper = name.toUpperCase();
  return METHODS.includes(upper)
    ? { tag: upper.toLowerCase() } as Method
    : { tag: "other", val: name };
}

/** WASI's `blocking-write-and-flush` takes at most 4096 bytes per call. */
const WRITE_LIMIT = 4096;

/** Writes all of `bytes` to `stream`, waiting while the host is busy. */
export function writeAll(stream: OutputStream, bytes: Uint8Array): void {
  for (let offset = 0; offset < bytes.length; offset += WRITE_LIMIT) {
    stream.blockingWriteAndFlush(bytes.subarray(offset, offset + WRITE_LIMIT));
  }
}

/** Copies a Web byte stream to a WASI output stream. */
export async function pipeTo(
  body: ReadableStream<Uint8Array>,
  stream: OutputStream,
): Promise<void> {
  const reader = body.getReader();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    writeAll(stream, chunk.value);
  }
}

const READ_SIZE = 65536n;

/**
 * A WASI input stream as a Web `ReadableStream`, read as it is consumed.
 * `done` runs once the stream is closed or cancelled (to drop its owner).
 */
export function toReadable(stream: InputStream, done: () => void): ReadableStream<Uint8Array> {
  const finish = () => {
    stream[Symbol.dispose]();
    done();
  };
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      try {
        const chunk = stream.blockingRead(READ_SIZE);
        if (chunk.length > 0) controller.enqueue(ownBytes(chunk));
      } catch (error) {
        finish();
        if (isClosed(error)) controller.close();
        else {controller.error(
            new TypeError(`reading a body failed: ${describeVariant(payloadOf(error))}`),
          );}
      }
    },
    cancel: finish,
  });
}
