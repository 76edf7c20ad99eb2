/**
 * SQL functions written in WebAssembly: each scalar function of a
 * component's manifest is registered on every database process, so SQL from
 * any component can call it. A call blocks its statement (in its database
 * process, not the server thread) until the component answers, at most
 * `SQL_FUNCTION_TIMEOUT_MS`; a guest error becomes a SQL error.
 *
 * @module
 */
import type { SqliteFunction } from "../../manifest.ts";
import type { DatabaseHost } from "./store.ts";
import { fromWit, toWit, type WitValue } from "../values.ts";

/** Something that can run a component's SQL function. */
export interface SqlFunctionRunner {
  readonly name: string;
  callSqlFunction(name: string, args: WitValue[]): Promise<WitValue>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KNOWN_FLAGS = new Set([
  "Utf8",
  "Utf16le",
  "Utf16be",
  "Utf16",
  "Deterministic",
  "DirectOnly",
  "Subtype",
  "Innocuous",
  "ResultSubtype",
  "Selforder1",
]);

/** Which component registered each function name, across all components. */
export class SqlFunctionRegistry {
  #owners = new Map<string, string>();

  constructor(readonly database: DatabaseHost) {}

  /** Registers `functions` of `runner`'s component; returns why any were refused. */
  register(runner: SqlFunctionRunner, functions: SqliteFunction[]): string[] {
    const refused: string[] = [];
    for (const fn of functions) {
      const problem = this.#check(fn);
      if (problem) {
        refused.push(`SQL function "${fn.name}" refused: ${problem}`);
        continue;
      }
      this.#owners.set(fn.name.toLowerCase(), runner.name);
      this.database.addFunction({
        name: fn.name,
        numArgs: fn.numArgs,
        deterministic: fn.flags.includes("Deterministic"),
        directOnly: fn.flags.includes("DirectOnly"),
      }, async (args) => fromWit(await runner.callSqlFunction(fn.name, args.map(toWit))));
    }
    return refused;
  }

  /**
   * Takes back every function `component` registered (a reload replaces or
   * removes it): until registered again, a call fails with "no such function".
   */
  release(component: string): void {
    for (const [name, owner] of this.#owners) {
      if (owner !== component) continue;
      this.#owners.delete(name);
      this.database.removeFunction(name);
    }
  }

  #check(fn: SqliteFunction): string | undefined {
    if (!NAME.test(fn.name)) return "not a valid SQL name";
    const owner = this.#owners.get(fn.name.toLowerCase());
    if (owner) return `already registered by component "${owner}"`;
    if (!Number.isInteger(fn.numArgs) || fn.numArgs < -1 || fn.numArgs > 127) {
      return `num_args ${fn.numArgs} is not -1..127`;
    }
    const unknown = fn.flags.filter((flag) => !KNOWN_FLAGS.has(flag));
    if (unknown.length) return `unknown flags ${unknown.join(", ")}`;
  }
}
