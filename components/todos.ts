/**
 * todos: a JSON CRUD API on SQLite. The table is created on first use;
 * invalid input is a 400 with the reason.
 *
 *   GET    /todos          every todo, oldest first
 *   POST   /todos          {"title": "..."} -> 201 and the new todo
 *   GET    /todos/{id}     one todo, or 404
 *   PATCH  /todos/{id}     {"title"?: "...", "done"?: true} -> the changed todo
 *   DELETE /todos/{id}     204, or 404
 */
import { defineComponent, HttpError, json } from "@pier/guest";
import { db, type Row } from "@pier/guest/db";

let tableReady = false;

async function ensureTable() {
  if (tableReady) return;
  await db.execute(`CREATE TABLE IF NOT EXISTS todos (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
  )`);
  tableReady = true;
}

const COLUMNS = "id, title, done, created_at";
const toTodo = ([id, title, done, createdAt]: Row) => ({ id, title, done: done === 1, createdAt });

/** The request's JSON object body, or a 400. */
async function readObject(req: Request): Promise<Record<string, unknown>> {
  const body = await req.json().catch(() => undefined);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "the body must be a JSON object");
  }
  return body;
}

function checkTitle(title: unknown): string {
  if (typeof title !== "string" || title.trim() === "") {
    throw new HttpError(400, "title must be a non-empty string");
  }
  if (title.length > 200) throw new HttpError(400, "title must be at most 200 characters");
  return title.trim();
}

function checkId(id: string): number {
  if (!/^\d{1,15}$/.test(id)) throw new HttpError(400, "id must be a positive integer");
  return Number(id);
}

async function findTodo(id: number) {
  const [row] = await db.query(`SELECT ${COLUMNS} FROM todos WHERE id = ?`, [id]);
  if (!row) throw new HttpError(404, `no todo ${id}`);
  return toTodo(row);
}

export default defineComponent({
  metadata: { displayName: "Todos", description: "A JSON CRUD API on SQLite." },
  routes: {
    "GET /todos": async () => {
      await ensureTable();
      const rows = await db.query(`SELECT ${COLUMNS} FROM todos ORDER BY id`);
      return json(rows.map(toTodo));
    },

    "POST /todos": async (req) => {
      const title = checkTitle((await readObject(req)).title);
      await ensureTable();
      const [row] = await db.query(
        `INSERT INTO todos (title) VALUES (?) RETURNING ${COLUMNS}`,
        [title],
      );
      return json(toTodo(row), { status: 201 });
    },

    "GET /todos/{id}": async (_req, { params }) => {
      await ensureTable();
      return json(await findTodo(checkId(params.id)));
    },

    "PATCH /todos/{id}": async (req, { params }) => {
      const id = checkId(params.id);
      const patch = await readObject(req);
      if (patch.done !== undefined && typeof patch.done !== "boolean") {
        throw new HttpError(400, "done must be true or false");
      }
      const title = patch.title === undefined ? undefined : checkTitle(patch.title);
      await ensureTable();
      // Read and write in one transaction: a concurrent DELETE cannot slip in between.
      const todo = await db.transaction(async (tx) => {
        const changed = await tx.execute(
          "UPDATE todos SET title = coalesce(?, title), done = coalesce(?, done) WHERE id = ?",
          [title, patch.done as boolean | undefined, id],
        );
        if (changed === 0) throw new HttpError(404, `no todo ${id}`);
        const [row] = await tx.query(`SELECT ${COLUMNS} FROM todos WHERE id = ?`, [id]);
        return toTodo(row);
      });
      return json(todo);
    },

    "DELETE /todos/{id}": async (_req, { params }) => {
      const id = checkId(params.id);
      await ensureTable();
      const deleted = await db.execute("DELETE FROM todos WHERE id = ?", [id]);
      if (deleted === 0) throw new HttpError(404, `no todo ${id}`);
      return new Response(null, { status: 204 });
    },
  },
});
