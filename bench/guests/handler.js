// The bench's request handler, shared by the Pier build (pier.js) and the
// plain `wasi:http/proxy` build that `jco serve` runs (proxy.js): raw WASI
// HTTP, no SDK, so both systems run exactly the same guest code.
import { Fields, OutgoingBody, OutgoingResponse, ResponseOutparam } from "wasi:http/types@0.2.12";

const encoder = new TextEncoder();
const TEXT = [["content-type", encoder.encode("text/plain")]];

export const HELLO = "Hello, world!\n";

export function respond(out, status, text, headers = TEXT) {
  const response = new OutgoingResponse(Fields.fromList(headers));
  response.setStatusCode(status);
  const body = response.body();
  ResponseOutparam.set(out, { tag: "ok", val: response });
  const stream = body.write();
  stream.blockingWriteAndFlush(encoder.encode(text));
  stream[Symbol.dispose]();
  OutgoingBody.finish(body, undefined);
}

/** Recursive Fibonacci: the CPU-heavy endpoint. */
export function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/**
 * Answers `/hello` and `/fib/{n}` below `prefix`; hands any other path to
 * `other` (or answers 404).
 */
export function handle(request, out, prefix = "", other = undefined) {
  const path = request.pathWithQuery().slice(prefix.length);
  if (path === "/hello") return respond(out, 200, HELLO);
  if (path.startsWith("/fib/")) return respond(out, 200, `${fib(Number(path.slice(5)))}\n`);
  if (other) return other(path, request, out);
  return respond(out, 404, "not found\n");
}
