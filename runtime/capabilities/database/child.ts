/**
 * A database process: one SQLite connection for component SQL, run by the
 * server process (`process.ts`) as `deno run <this> <db file> read|write`
 * with read and write access to the database's directory only. node:sqlite
 * cannot interrupt a statement, so component statements run here, where the
 * server can kill the whole process when one passes its request's time limit.
 *
 * It reads requests (frames, see `wire.ts`) from stdin and answers each on
 * stdout, one at a time, synchronously. A component's SQL function called by
 * a statement becomes a frame to the server, and the process blocks reading
 * stdin until the result comes back.
 *
 * @module
 */
import {
  DatabaseSync,
  type SQLInputValue,
  type SQLOutputValue,
  type StatementSync,
} from "node:sqlite";
import {
  decodeValue,
  encodeValue,
  frame,
  FrameReader,
  type FunctionResult,
  type FunctionSpec,
  type Reply,
  type Request,
} from "./wire.ts";
import { concatBytes } from "../../bytes.ts";

/**
 * node:sqlite methods that Deno 2.9 implements but its bundled type
 * definitions predate.
 */
interface NewerDatabase extends DatabaseSync {
  setAuthorizer(
    callback: (
      action: number,
      arg1: string | null,
      arg2: string | null,
      dbName: string | null,
    ) => number,
  ): void;
}
interface NewerStatement extends StatementSync {
  setReturnArrays(enabled: boolean): void;
}

const SQLITE_OK = 0;
const SQLITE_DENY = 1;

/** Pragmas a component may run: read-only introspection (`user_version` may also be set). */
const SAFE_PRAGMAS = new Set([
  "table_info",
  "table_xinfo",
  "table_list",
  "index_list",
  "index_info",
  "index_xinfo",
  "foreign_key_list",
  "user_version",
  "data_version",
  "foreign_keys",
]);

/** SQLite authorizer action codes (sqlite3.h). */
const ACTION = {
  CREATE_TRIGGER: 7,
  CREATE_VIEW: 8,
  PRAGMA: 19,
  TRANSACTION: 22,
  ATTACH: 24,
  DETACH: 25,
  ALTER_TABLE: 26,
  REINDEX: 27,
  ANALYZE: 28,
  CREATE_VTABLE: 29,
  DROP_VTABLE: 30,
  FUNCTION: 31,
} as const;

/**
 * Actions that change the schema (or write statistics): CREATE_* (1-8),
 * DROP_* (10-17), ALTER, REINDEX, ANALYZE, virtual tables.
 */
function changesSchema(action: number): boolean {
  return (action >= 1 && action <= 17 && action !== 9) ||
    (action >= ACTION.ALTER_TABLE && action <= ACTION.DROP_VTABLE);
}

const isPier = (name: string | null) => name?.toLowerCase().startsWith("_pier_") ?? false;

/**
 * Refuses what a component must not do, whatever its grant: reach other
 * files, touch Pier's `_pier_*` tables (reading, writing, or hanging a
 * trigger, index or view on them; for ALTER TABLE `arg2` is the table, for
 * CREATE TRIGGER and CREATE INDEX too), leave state on the shared connection
 * (temp objects: they live on one connection, and connections are shared;
 * pragmas; transactions of its own). With a read grant SQLite itself refuses
 * every other change (the connection is read-only). SQLite checks what a view or trigger body reads
 * and writes only when it runs (there, too, `_pier_*` is refused), so one
 * whose statement `sql` names a `_pier_*` table is refused when created.
 */
function componentAuthorizer(
  sql: string,
  action: number,
  arg1: string | null,
  arg2: string | null,
  dbName: string | null,
): number {
  if (action === ACTION.FUNCTION) {
    return arg2?.toLowerCase() === "load_extension" ? SQLITE_DENY : SQLITE_OK;
  }
  if (isPier(arg1) || isPier(arg2)) return SQLITE_DENY;
  if ((action === ACTION.CREATE_VIEW || action === ACTION.CREATE_TRIGGER) && /_pier_/i.test(sql)) {
    return SQLITE_DENY;
  }
  if (action === ACTION.ATTACH || action === ACTION.DETACH) return SQLITE_DENY;
  // BEGIN, COMMIT and ROLLBACK are Pier's: a transaction belongs to a request.
  if (action === ACTION.TRANSACTION) return SQLITE_DENY;
  // CREATE TEMP ..., CREATE TABLE temp.x, CREATE VIRTUAL TABLE temp.x: all name the temp schema.
  if (dbName === "temp" && changesSchema(action)) return SQLITE_DENY;
  if (action === ACTION.PRAGMA) {
    const name = (arg1 ?? "").toLowerCase();
    if (!SAFE_PRAGMAS.has(name)) return SQLITE_DENY;
    // Setting one: only user_version (in the file); foreign_keys is the connection's.
    if (arg2 !== null && name !== "user_version") return SQLITE_DENY;
  }
  return SQLITE_OK;
}

/** Prepared statements the connection keeps for reuse. */
const CACHED_STATEMENTS = 100;

/** Returned by a SQL function whose call failed: SQLite cannot take it, so the statement fails. */
const FUNCTION_FAILED = Symbol("SQL function failed");

/** The process's connection and its state. */
class Connection {
  readonly db: DatabaseSync;
  #statements = new Map<string, StatementSync>();
  /** The component SQL being prepared or run (the authorizer applies), else undefined. */
  #componentSql: string | undefined;
  #functionFailure: string | undefined;

  constructor(path: string, readonly grant: "read" | "write", readonly io: Io) {
    this.db = new DatabaseSync(path, { readOnly: grant === "read" });
    // The server retries a busy database, asynchronously; this process never waits inside SQLite.
    this.db.exec("PRAGMA busy_timeout = 0");
    // An acknowledged write must survive a crash: sync the WAL at every commit.
    if (grant === "write") this.db.exec("PRAGMA synchronous = FULL");
    (this.db as NewerDatabase).setAuthorizer((action, arg1, arg2, dbName) =>
      this.#componentSql === undefined
        ? SQLITE_OK
        : componentAuthorizer(this.#componentSql, action, arg1, arg2, dbName)
    );
  }

  /**
   * A prepared statement for `sql`, reused while it is among the most recently
   * used ones: preparing costs more than running a small query.
   */
  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement) this.#statements.delete(sql);
    else {
      statement = this.db.prepare(sql);
      statement.setReadBigInts(true);
      if (this.#statements.size >= CACHED_STATEMENTS) {
        this.#statements.delete(this.#statements.keys().next().value!);
      }
    }
    this.#statements.set(sql, statement);
    return statement;
  }

  /** Answers one request. */
  handle(request: Request): Reply {
    try {
      switch (request.op) {
        case "functions":
          for (const spec of request.functions) this.#register(spec);
          return { ok: true };
        case "commit":
        case "rollback":
          try {
            this.#statement(request.op.toUpperCase()).run();
          } finally {
            if (this.db.isTransaction) this.#statement("ROLLBACK").run();
          }
          return { ok: true };
        case "run":
          if (request.endFirst && this.db.isTransaction) this.#statement("COMMIT").run();
          if (request.begin) {
            this.#statement(this.grant === "write" ? "BEGIN IMMEDIATE" : "BEGIN").run();
          }
          try {
            return { ok: true, value: this.#run(request) };
          } catch (error) {
            // A transaction whose first statement failed has done nothing: it begins again.
            if (request.begin && this.db.isTransaction) this.#statement("ROLLBACK").run();
            throw error;
          }
      }
    } catch (error) {
      const message = this.#functionFailure ?? (error as Error).message;
      this.#functionFailure = undefined;
      return { ok: false, error: message };
    }
  }

  #run({ sql, params, mode, begin, inTransaction }: Extract<Request, { op: "run" }>) {
    const values = params.map(decodeValue) as SQLInputValue[];
    this.#componentSql = sql;
    try {
      const statement = this.#statement(sql) as NewerStatement;
      if (mode === "execute") return encodeValue(BigInt(statement.run(...values).changes));
      statement.setReturnArrays(true);
      // Not `iterate()`: in Deno 2.9 it drops errors raised while stepping.
      const rows = statement.all(...values) as unknown as SQLOutputValue[][];
      return rows.map((row) => row.map(encodeValue));
    } finally {
      this.#componentSql = undefined;
      // A SAVEPOINT outside a transaction opens one: it must not outlive its statement.
      if (!inTransaction && !begin && this.db.isTransaction) {
        this.#statement("ROLLBACK").run();
        // deno-lint-ignore no-unsafe-finally
        throw new Error("a statement outside a transaction left one open (rolled back)");
      }
    }
  }

  #register(spec: FunctionSpec) {
    const call = (...args: SQLInputValue[]) => {
      const result = this.io.call(spec.name, args);
      if (result.ok) return decodeValue(result.value);
      // In Deno 2.9 `all()` never returns when a function throws: fail the statement instead.
      this.#functionFailure = result.error;
      return FUNCTION_FAILED as never;
    };
    // node:sqlite takes the arity from the function's `length`.
    Object.defineProperty(call, "length", { value: Math.max(spec.numArgs, 0) });
    this.db.function(spec.name, {
      deterministic: spec.deterministic,
      directOnly: spec.directOnly,
      varargs: spec.numArgs === -1,
      useBigIntArguments: true,
    }, call);
  }
}

/**
 * Frames over stdin and stdout, read and written synchronously. The answers
 * to the requests one read brought go out in one write, once they are all
 * answered: each write wakes the server, and the server sends what a turn of
 * its event loop produced in one write too (see `process.ts`).
 */
class Io {
  #frames = new FrameReader();
  /** Requests that arrived while a function call waited for its result. */
  #early: Request[] = [];
  /** Frames not written yet. */
  #out: Uint8Array[] = [];

  /** The next request; undefined when the server closed stdin. */
  next(): Request | undefined {
    const buffered = this.#early.shift() ?? this.#frames.next() as Request | undefined;
    if (buffered) return buffered;
    // Nothing left of the last read: what it asked is answered, the server gets it before we wait.
    this.flush();
    return this.#read() as Request | undefined;
  }

  /** Queues `message` for the next {@link flush}. */
  send(message: unknown) {
    this.#out.push(frame(message));
  }

  /** Writes the queued frames. */
  flush() {
    if (this.#out.length === 0) return;
    const bytes = concatBytes(this.#out);
    this.#out = [];
    for (let written = 0; written < bytes.byteLength;) {
      written += Deno.stdout.writeSync(bytes.subarray(written));
    }
  }

  /** Calls a component's SQL function through the server; blocks until it answers. */
  call(name: string, args: SQLInputValue[]): FunctionResult {
    this.send({ op: "call", name, args: args.map(encodeValue) });
    this.flush();
    for (;;) {
      const message = this.#read() as FunctionResult | Request | undefined;
      if (message === undefined) Deno.exit(0);
      if (message.op === "result") return message;
      this.#early.push(message);
    }
  }

  #read(): unknown {
    for (;;) {
      const message = this.#frames.next();
      if (message !== undefined) return message;
      const read = this.#frames.fill(64 * 1024, (room) => Deno.stdin.readSync(room));
      if (read === null) return undefined;
    }
  }
}

if (import.meta.main) {
  const [path, grant] = Deno.args;
  const io = new Io();
  const connection = new Connection(path, grant === "write" ? "write" : "read", io);
  for (let request = io.next(); request; request = io.next()) {
    io.send(connection.handle(request));
  }
  connection.db.close();
}
