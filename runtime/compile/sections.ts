/**
 * The framing WebAssembly binaries share, core modules and components alike:
 * an 8-byte preamble, then sections of an id byte, a LEB128 size and the
 * content.
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";

/** One section of a binary. */
export interface BinarySection {
  id: number;
  content: Uint8Array;
}

/** The bytes of the preamble (magic and version). */
export const PREAMBLE_BYTES = 8;

/** The unsigned LEB128 at `at` in `bytes`, and where it ends. */
export function readU32(bytes: Uint8Array, at: number): [value: number, next: number] {
  let result = 0;
  for (let shift = 0;; shift += 7) {
    if (at >= bytes.length) throw new Error("truncated module");
    const byte = bytes[at++];
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [result, at];
  }
}

/** `value` as an unsigned LEB128. */
export function leb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** The sections of `binary` after its preamble; throws on one that runs past the end. */
export function sectionsOf(binary: Uint8Array): BinarySection[] {
  const sections: BinarySection[] = [];
  for (let at = PREAMBLE_BYTES; at < binary.length;) {
    const id = binary[at];
    const [size, start] = readU32(binary, at + 1);
    if (start + size > binary.length) throw new Error("truncated module");
    sections.push({ id, content: binary.subarray(start, start + size) });
    at = start + size;
  }
  return sections;
}

/** A section's bytes: id, size, content. */
export function encodeSection(id: number, content: number[] | Uint8Array): Uint8Array {
  const head = [id, ...leb(content.length)];
  const out = new Uint8Array(head.length + content.length);
  out.set(head);
  out.set(content, head.length);
  return out;
}

/** A binary of `preamble` (the first bytes of the original) and `sections`. */
export function encodeBinary(preamble: Uint8Array, sections: BinarySection[]): Uint8Array {
  return concatBytes([
    preamble.subarray(0, PREAMBLE_BYTES),
    ...sections.map((s) => encodeSection(s.id, s.content)),
  ]);
}
