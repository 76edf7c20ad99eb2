/**
 * A floor's database process: each frame is an item id, answered with its
 * row as JSON (`node:sqlite`, the statement prepared once), as Pier's
 * database processes answer a component's statement.
 *
 * Usage: `deno run --allow-read=DB --allow-write=DIR database.ts DB`
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { readFrames, stdoutBatch } from "./frames.ts";

const db = new DatabaseSync(Deno.args[0], { readOnly: true });
const byId = db.prepare("SELECT id, name, score FROM items WHERE id = ?");
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const batch = stdoutBatch();
await readFrames(Deno.stdin, (id, payload) => {
  const row = byId.get(Number(decoder.decode(payload)));
  batch.push(id, encoder.encode(JSON.stringify(row ?? null)));
});
