/**
 * The calls a guest's worker makes to the server thread's capabilities: one
 * map of operation to arguments and result, shared by both ends, so that
 * `deno check` checks the caller's arguments and the handler's result. A call
 * says nothing of the engine that made it.
 *
 * @module
 */
import type { DatabaseCalls } from "./database/mod.ts";
import type { KeyValueCalls } from "./keyvalue/mod.ts";

/** One call's arguments and result. */
export interface CallSignature {
  args: unknown[];
  result: unknown;
}

/** Every capability call: operation → arguments → result. */
export type Calls = DatabaseCalls & KeyValueCalls;

/** A call's operation, such as `"kv.get"`. */
export type Op = keyof Calls;
/** The arguments of operation `O`. */
export type Args<O extends Op> = Calls[O]["args"];
/** The result of operation `O`. */
export type Result<O extends Op> = Calls[O]["result"];

/**
 * A call to the server thread's capabilities; rejects with the ABI's error
 * value for the guest.
 */
export type HostCall = <O extends Op>(op: O, args: Args<O>) => Promise<Result<O>>;
