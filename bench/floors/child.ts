/**
 * A floor's component process: frames in (`pipe`: stdin; `unix PATH`: a Unix
 * socket it connects to; `tcp PORT`: a loopback TCP port), each answered by {@link answer}, frames out (stdout
 * with `writeSync`, as Pier's native child does; or the socket).
 *
 * @module
 */
import { answer, Batch, readFrames } from "./frames.ts";

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
  batch = new Batch((bytes) => {
    for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
  });
}
await readFrames(source, (id, url) => {
  answer(decoder.decode(url)).then((body) => batch.push(id, body));
});
