/**
 * `trailbase:database/sqlite` for guests: every call goes to the database's
 * server side (`host.ts`), and the guest's stack suspends until it answers.
 *
 * @module
 */
import type { GuestSide } from "../sides.ts";
import type { WitValue } from "../values.ts";

let nextTransaction = 0;

/**
 * Builds the interface for one guest instance. The transaction begins with
 * its first statement, so the synchronous constructor never waits.
 */
export const databaseImports: GuestSide = ({ call }) => {
  class Transaction {
    readonly id = ++nextTransaction;
    #state: "new" | "open" | "ended" = "new";

    /**
     * Runs one statement. The first one begins the transaction: `begin` and
     * the statement go out together (the server answers a request's calls in
     * order), so it costs one round trip, not two.
     */
    async #statement(op: "db.execute" | "db.query", query: string, params: WitValue[]) {
      if (this.#state === "ended") throw { tag: "other", val: "transaction already ended" };
      if (this.#state === "open") return await call(op, [this.id, query, params]);
      this.#state = "open";
      const begun = call("db.begin", [this.id]);
      const result = call(op, [this.id, query, params]);
      // When `begin` fails the statement fails too, for want of a transaction: `begin` says why.
      result.catch(() => {});
      try {
        await begun;
      } catch (error) {
        this.#state = "ended";
        throw error;
      }
      return await result;
    }
    execute(query: string, params: WitValue[]) {
      return this.#statement("db.execute", query, params);
    }
    query(query: string, params: WitValue[]) {
      return this.#statement("db.query", query, params);
    }
    async commit() {
      return await this.#end("db.commit");
    }
    async rollback() {
      return await this.#end("db.rollback");
    }
    async #end(op: "db.commit" | "db.rollback") {
      if (this.#state === "ended") throw { tag: "other", val: "transaction already ended" };
      const wasOpen = this.#state === "open";
      this.#state = "ended";
      if (wasOpen) await call(op, [this.id]);
    }
    /** Dropped by the guest: an open transaction is rolled back. */
    [Symbol.dispose]() {
      if (this.#state === "open") call("db.rollback", [this.id]).catch(() => {});
      this.#state = "ended";
    }
  }

  // The deprecated `tx-*` functions act on one current transaction per instance.
  const legacy: { current?: Transaction } = {};
  const current = () =>
    legacy.current ?? (() => {
      throw { tag: "other", val: "no transaction: call tx-begin first" };
    })();
  return {
    "trailbase:database/sqlite": {
      Transaction,
      txBegin: () => {
        if (legacy.current) throw { tag: "other", val: "a transaction is already open" };
        legacy.current = new Transaction();
        return undefined;
      },
      txCommit: async () => {
        const tx = current();
        legacy.current = undefined;
        await tx.commit();
      },
      txRollback: async () => {
        const tx = current();
        legacy.current = undefined;
        await tx.rollback();
      },
      txExecute: (query: string, params: WitValue[]) => current().execute(query, params),
      txQuery: (query: string, params: WitValue[]) => current().query(query, params),
    },
  };
};
