/**
 * A floor's component process: frames in (`pipe`: stdin; `unix PATH`: a Unix
 * socket it connects to; `tcp PORT`: a loopback TCP port), each answered by {@link answer}, frames out (stdout
 * with `writeSync`, as Pier's native child does; or the socket). With `db`
 * (over pipes), a request for `/db/{id}` asks the server for the row (which
 * asks a database process) and answers with it.
 *
 * @module
 */
import { answer, Batch, DATABASE_CALL, readFrames, stdoutBatch } from "./frames.ts";

const [transport, address] = Deno.args;
const decoder = new TextDecoder();
let source: { read(into: Uint8Array): Promise<number | null> };
let batch: Batch;
if (transport === "unix" || transport === "tcp") {
  const socket = transport === "unix"
    ? await Deno.connect({ transport: "unix", path: address })
    : await Deno.connect({ hostname: "127.0.0.1", port: Number(address) });
  source = socket;
  batch = new Batch((bytes) => void socket.write(bytes));
} else {
  source = Deno.stdin;
  batch = stdoutBatch();
}
const encoder = new TextEncoder();
/** Database calls in flight: the request each answers. */
const calls = new Map<number, number>();
let nextCall = 1;
await readFrames(source, (id, payload) => {
  if (id & DATABASE_CALL) {
    const request = calls.get(id)!;
    calls.delete(id);
    const response = new Response(payload, { headers: { "content-type": "application/json" } });
    response.arrayBuffer().then((body) => batch.push(request, new Uint8Array(body)));
    return;
  }
  const url = new URL(decoder.decode(payload));
  if (transport === "db") {
    const call = (DATABASE_CALL | nextCall++) >>> 0;
    calls.set(call, id);
    batch.push(call, encoder.encode(url.pathname.slice("/db/".length)));
  } else answer(url.href).then((body) => batch.push(id, body));
});
