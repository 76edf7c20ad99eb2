// @world trailbase:component/interfaces-with-environment
// The bench handler built for Pier's world, plus a DB read endpoint.
//
// One build serves as many components: a component whose permission manifest
// grants an environment variable named `BENCH_PREFIX_<n>` serves its
// routes under that variable's value, so ten copies load side by side.
import { getEnvironment } from "wasi:cli/environment@0.2.12";
import { Transaction } from "trailbase:database/sqlite@0.1.1";
import { handle, respond } from "./handler.js";

const JSON_HEADERS = [["content-type", new TextEncoder().encode("application/json")]];

let cachedPrefix;
function prefix() {
  if (cachedPrefix === undefined) {
    const found = getEnvironment().find(([name]) => name.startsWith("BENCH_PREFIX_"));
    cachedPrefix = found ? found[1] : "";
  }
  return cachedPrefix;
}

/** `GET /db/{id}`: one row by primary key, as JSON. */
function db(path, _request, out) {
  if (!path.startsWith("/db/")) return respond(out, 404, "not found\n");
  const tx = new Transaction();
  const rows = tx.query("SELECT id, name, score FROM items WHERE id = ?1", [
    { tag: "integer", val: BigInt(path.slice(4)) },
  ]);
  tx.commit();
  if (rows.length === 0) return respond(out, 404, "no such item\n");
  const [id, name, score] = rows[0];
  const item = { id: Number(id.val), name: name.val, score: score.val };
  return respond(out, 200, JSON.stringify(item), JSON_HEADERS);
}

export const initEndpoint = {
  getManifest() {
    const p = prefix();
    return JSON.stringify({
      http_handlers: [
        { method: "get", path: `${p}/hello` },
        { method: "get", path: `${p}/fib/{n}` },
        { method: "get", path: `${p}/db/{id}` },
      ],
    });
  },
};

export const sqliteFunctionEndpoint = {
  dispatchScalarFunction() {
    throw { tag: "other", val: "no SQL functions here" };
  },
};

export const incomingHandler = { handle: (request, out) => handle(request, out, prefix(), db) };
