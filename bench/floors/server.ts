/**
 * The floor of each way Pier can hand a request to a guest it isolates:
 * `Deno.serve` forwarding each request, with the least work the design
 * needs, to a `worker` (postMessage, a turn's requests per message), to a
 * worker over Pier's shared-memory `ring` (the wasm engine's), to a
 * component `process` over pipes (its stdin/stdout, as the native engine),
 * or to a process over a `unix` socket or loopback `tcp`; and `process-db`,
 * a process over pipes whose answer to `/db/{id}` is a row it asks the
 * server for, which asks a database process (`node:sqlite`), as Pier's
 * native engine and database processes do. What Pier adds on top of these
 * (routing, limits, logs, metrics, the guest's own runtime) is not here:
 * `deno task bench` prints these beside Pier's rows.
 *
 * Usage: `deno run -A bench/floors/server.ts worker|ring|process|unix|tcp PORT, or process-db PORT DB`
 *
 * @module
 */
import { Ring } from "../../runtime/isolation/ring.ts";
import { Batch, DATABASE_CALL, readFrames } from "./frames.ts";

const [design, port] = Deno.args;
const here = new URL(".", import.meta.url).pathname;
const encoder = new TextEncoder();
const waiting = new Map<number, (body: Uint8Array<ArrayBuffer>) => void>();
let nextId = 1;
const settle = (id: number, body: Uint8Array<ArrayBuffer>) => {
  waiting.get(id)!(body);
  waiting.delete(id);
};

/** Sends request `id` for `url` to the guest side. */
let forward: (id: number, url: string) => void;
/** Starts `child.ts` with Deno permissions `grant` only, as Pier starts a native component. */
const child = (grant: string[], args: string[], stdio: "piped" | "inherit") =>
  new Deno.Command(Deno.execPath(), {
    args: ["run", "--v8-flags=--single-threaded-gc", ...grant, `${here}child.ts`, ...args],
    stdin: stdio,
    stdout: stdio,
  }).spawn();

/** Frames to a child process's stdin (the batch returned) and from its stdout (to `onFrame`). */
function piped(
  process: Deno.ChildProcess,
  onFrame: (id: number, payload: Uint8Array<ArrayBuffer>) => void,
): Batch {
  const writer = process.stdin.getWriter();
  const reader = process.stdout.getReader({ mode: "byob" });
  readFrames({
    read: async (into) => {
      const { value, done } = await reader.read(new Uint8Array(into.length));
      if (done) return null;
      into.set(value);
      return value.length;
    },
  }, onFrame);
  return new Batch((bytes) => void writer.write(bytes));
}

if (design === "worker") {
  const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  worker.onmessage = (event: MessageEvent<[number, Uint8Array<ArrayBuffer>][]>) => {
    for (const [id, body] of event.data) settle(id, body);
  };
  let pending: [number, string][] = [];
  forward = (id, url) => {
    if (pending.length === 0) {
      setImmediate(() => {
        worker.postMessage(pending);
        pending = [];
      });
    }
    pending.push([id, url]);
  };
} else if (design === "ring") {
  const buffers = { requests: Ring.buffer(1 << 20), responses: Ring.buffer(1 << 20) };
  const requests = new Ring(buffers.requests);
  const responses = new Ring(buffers.responses);
  const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  worker.postMessage(buffers);
  responses.listen(({ head, body }) => settle(head as number, body as Uint8Array<ArrayBuffer>));
  let notifying = false;
  forward = (id, url) => {
    requests.write(id, encoder.encode(url));
    if (notifying) return;
    notifying = true;
    setImmediate(() => {
      notifying = false;
      requests.notify();
    });
  };
} else if (design === "process") {
  const batch = piped(child([], ["pipe"], "piped"), settle);
  forward = (id, url) => batch.push(id, encoder.encode(url));
} else if (design === "process-db") {
  // The component's database calls go through this process to a database process, as in Pier.
  const db = Deno.args[2];
  const dir = db.slice(0, db.lastIndexOf("/"));
  const database = new Deno.Command(Deno.execPath(), {
    args: ["run", `--allow-read=${dir}`, `--allow-write=${dir}`, `${here}database.ts`, db],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const toDatabase = piped(database, (id, row) => toChild.push(id, row));
  const toChild: Batch = piped(
    child([], ["db"], "piped"),
    (id, payload) => id & DATABASE_CALL ? toDatabase.push(id, payload) : settle(id, payload),
  );
  forward = (id, url) => toChild.push(id, encoder.encode(url));
} else if (design === "tcp") {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  child([`--allow-net=127.0.0.1:${port}`], ["tcp", String(port)], "inherit");
  const socket = await listener.accept();
  socket.setNoDelay(true);
  const batch = new Batch((bytes) => void socket.write(bytes));
  forward = (id, url) => batch.push(id, encoder.encode(url));
  readFrames(socket, settle);
} else if (design === "unix") {
  const dir = await Deno.makeTempDir({ prefix: "pier-floor-" });
  const path = `${dir}/guest.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const grant = [`--allow-read=${path}`, `--allow-write=${path}`, `--allow-net=unix:${path}`];
  child(grant, ["unix", path], "inherit");
  const socket = await listener.accept();
  listener.close();
  await Deno.remove(dir, { recursive: true });
  const batch = new Batch((bytes) => void socket.write(bytes));
  forward = (id, url) => batch.push(id, encoder.encode(url));
  readFrames(socket, settle);
} else {
  throw new Error(`unknown design ${design}: worker, ring, process, process-db, unix or tcp`);
}

Deno.serve({ port: Number(port), hostname: "127.0.0.1", onListen: () => {} }, (request) => {
  const id = nextId++;
  forward(id, request.url);
  return new Promise<Uint8Array<ArrayBuffer>>((resolve) => waiting.set(id, resolve)).then((body) =>
    new Response(body, {
      headers: { "content-type": design === "process-db" ? "application/json" : "text/plain" },
    })
  );
});
