/**
 * SQLite values between JavaScript and the guest ABI's `value` variant
 * (`null`, `text`, `blob`, `integer`, `real`).
 *
 * @module
 */

/**
 * A SQLite value as the SDK hands it to you: `null`, text, a real or an
 * integer, or a blob. Integers are `number`s when a double holds them exactly
 * (|n| <= 2^53 - 1) and `bigint`s beyond, so 64-bit integers stay exact.
 */
export type Value = null | string | number | bigint | Uint8Array;

/**
 * What you may pass as a SQL parameter or return from a SQL function: a
 * {@link Value}, a boolean (stored as 1 or 0) or `undefined` (stored as NULL).
 * An integral `number` is bound as an integer, any other number as a real.
 */
export type Param = Value | boolean | undefined;

/** The ABI's `value` variant, as componentize-js binds it. */
export type WitValue =
  | { tag: "null" }
  | { tag: "text"; val: string }
  | { tag: "blob"; val: Uint8Array }
  | { tag: "integer"; val: bigint }
  | { tag: "real"; val: number };

const MIN_I64 = -(2n ** 63n);
const MAX_I64 = 2n ** 63n - 1n;

/** A 64-bit integer as a `number` when that is exact, else as a `bigint`. */
export function exactInteger(value: bigint): number | bigint {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
}

/**
 * Bytes from a WIT call as a `Uint8Array` of the guest's own realm:
 * componentize-js hands out byte lists that fail `instanceof Uint8Array`.
 */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
}

/** A JavaScript value as the ABI's `value`; throws a `TypeError` for anything else. */
export function toWit(value: Param): WitValue {
  if (value === null || value === undefined) return { tag: "null" };
  switch (typeof value) {
    case "string":
      return { tag: "text", val: value };
    case "boolean":
      return { tag: "integer", val: value ? 1n : 0n };
    case "number":
      return Number.isSafeInteger(value)
        ? { tag: "integer", val: BigInt(value) }
        : { tag: "real", val: value };
    case "bigint":
      if (value < MIN_I64 || value > MAX_I64) {
        throw new RangeError(`${value} does not fit in a 64-bit SQLite integer`);
      }
      return { tag: "integer", val: value };
  }
  if (value instanceof Uint8Array) return { tag: "blob", val: value };
  throw new TypeError(`not a SQLite value: ${Object.prototype.toString.call(value)}`);
}

/** The ABI's `value` as a JavaScript {@link Value}. */
export function fromWit(value: WitValue): Value {
  switch (value.tag) {
    case "null":
      return null;
    case "integer":
      return exactInteger(value.val);
    case "blob":
      return ownBytes(value.val);
    default:
      return value.val;
  }
}
