/**
 * SQLite values as the guest ABI spells them: the WIT `value` variant
 * (`null`, `text`, `blob`, `integer`, `real`, in that order) and the
 * externally tagged JSON of the in-band `__sqlite` calls.
 *
 * @module
 */
import type { SQLInputValue, SQLOutputValue } from "node:sqlite";

/** The WIT `value` variant as jco passes it. */
export type WitValue =
  | { tag: "null" }
  | { tag: "text"; val: string }
  | { tag: "blob"; val: Uint8Array }
  | { tag: "integer"; val: bigint }
  | { tag: "real"; val: number };

/** A value the guest sent that cannot be used. */
export class ValueError extends Error {}

/** A WIT value as a SQLite parameter. */
export function fromWit(value: WitValue): SQLInputValue {
  switch (value?.tag) {
    case "null":
      return null;
    case "text":
    case "real":
    case "integer":
      return value.val;
    case "blob":
      return value.val;
    default:
      throw new ValueError(`not a SQLite value: ${JSON.stringify(value)}`);
  }
}

/** A SQLite result (read with big integers) as a WIT value. */
export function toWit(value: SQLOutputValue): WitValue {
  if (value === null || value === undefined) return { tag: "null" };
  if (typeof value === "bigint") return { tag: "integer", val: value };
  if (typeof value === "number") return { tag: "real", val: value };
  if (typeof value === "string") return { tag: "text", val: value };
  return { tag: "blob", val: value as Uint8Array };
}

/** The in-band JSON form: `"Null"`, `{"Integer": 5}`, `{"Text": "x"}`, ... */
export type JsonValue =
  | "Null"
  | { Integer: number | string }
  | { Real: number }
  | { Text: string }
  | { Blob: { Array: number[] } | { Base64UrlSafe: string } | { Hex: string } };

function decodeBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) throw new ValueError("Base64UrlSafe blob is not valid");
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function encodeBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_");
}

/** A JSON-tagged value as a SQLite parameter. */
export function fromJson(value: JsonValue): SQLInputValue {
  if (value === "Null") return null;
  if (typeof value !== "object" || value === null) {
    throw new ValueError(`not a SQLite value: ${JSON.stringify(value)}`);
  }
  if ("Integer" in value) {
    // Large integers arrive as JSON numbers: take them from the text to stay exact.
    return BigInt(value.Integer);
  }
  if ("Real" in value && typeof value.Real === "number") return value.Real;
  if ("Text" in value && typeof value.Text === "string") return value.Text;
  if ("Blob" in value) {
    const blob = value.Blob as Record<string, unknown>;
    if (Array.isArray(blob.Array)) return Uint8Array.from(blob.Array as number[]);
    if (typeof blob.Base64UrlSafe === "string") return decodeBase64Url(blob.Base64UrlSafe);
    if (typeof blob.Hex === "string" && /^([0-9a-fA-F]{2})*$/.test(blob.Hex)) {
      return Uint8Array.from(blob.Hex.match(/../g) ?? [], (h) => parseInt(h, 16));
    }
    throw new ValueError(`blob encoding not understood: ${Object.keys(blob).join(", ")}`);
  }
  throw new ValueError(`not a SQLite value: ${JSON.stringify(value)}`);
}

/** A SQLite result as a JSON-tagged value (blobs as Base64UrlSafe). */
export function toJson(value: SQLOutputValue): JsonValue {
  if (value === null || value === undefined) return "Null";
  if (typeof value === "bigint") return { Integer: value as unknown as number };
  if (typeof value === "number") return { Real: value };
  if (typeof value === "string") return { Text: value };
  return { Blob: { Base64UrlSafe: encodeBase64Url(value as Uint8Array) } };
}

/** Stands in for a bigint inside JSON text; random, so no guest text can forge it. */
const BIGINT_MARKER = `bigint-${crypto.randomUUID()}:`;

/**
 * JSON text with big integers written as exact numbers (JSON.stringify
 * cannot write a bigint).
 */
export function stringifyExact(value: unknown): string {
  return JSON.stringify(value, (_, v) => typeof v === "bigint" ? `${BIGINT_MARKER}${v}` : v)
    .replace(new RegExp(`"${BIGINT_MARKER}(-?\\d+)"`, "g"), "$1");
}

/**
 * Parses JSON keeping integers that do not fit a double exact, as strings
 * (so `fromJson` turns them into bigints).
 */
export function parseExact(text: string): unknown {
  return JSON.parse(text, (_key, value, context?: { source?: string }) => {
    if (
      typeof value === "number" && !Number.isSafeInteger(value) && context?.source &&
      /^-?\d+$/.test(context.source)
    ) {
      return context.source;
    }
    return value;
  });
}
