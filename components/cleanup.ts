/**
 * cleanup: a scheduled job that deletes expired rows. Sessions are created
 * with a time to live; the "purge expired sessions" job deletes the expired
 * ones every minute.
 *
 *   POST /sessions   {"user": "...", "ttlSeconds": 60} -> 201 {"id", "user", "expiresAt"}
 *   GET  /sessions   every stored session, expired ones included until the job runs
 */
import { defineComponent, HttpError, json } from "@pier/guest";
import { db } from "@pier/guest/db";

const SCHEMA = `CREATE TABLE IF NOT EXISTS sessions (
  id INTEGER PRIMARY KEY,
  user TEXT NOT NULL,
  expires_at INTEGER NOT NULL
)`;

export default defineComponent({
  metadata: { displayName: "Cleanup", description: "Purges expired sessions on a schedule." },
  routes: {
    "POST /sessions": async (req) => {
      const { user, ttlSeconds } = await req.json().catch(() => ({}));
      if (typeof user !== "string" || user === "") throw new HttpError(400, "user is required");
      if (!Number.isInteger(ttlSeconds)) throw new HttpError(400, "ttlSeconds must be an integer");
      await db.execute(SCHEMA);
      const [[id, expiresAt]] = await db.query(
        "INSERT INTO sessions (user, expires_at) VALUES (?, unixepoch() + ?) RETURNING id, expires_at",
        [user, ttlSeconds],
      );
      return json({ id, user, expiresAt }, { status: 201 });
    },

    "GET /sessions": async () => {
      await db.execute(SCHEMA);
      const rows = await db.query("SELECT id, user, expires_at FROM sessions ORDER BY id");
      return json(rows.map(([id, user, expiresAt]) => ({ id, user, expiresAt })));
    },
  },
  jobs: {
    "purge expired sessions": {
      schedule: "0 * * * * *", // second 0 of every minute
      run: async () => {
        await db.execute(SCHEMA);
        const purged = await db.execute("DELETE FROM sessions WHERE expires_at <= unixepoch()");
        console.log(`purged ${purged} expired session(s)`);
      },
    },
  },
});
