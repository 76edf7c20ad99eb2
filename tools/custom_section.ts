/**
 * WebAssembly custom sections: how the build tool stamps a `.wasm` with its
 * build's hash, and how the bench gives copies of one guest keys of their own.
 * Kept apart from `componentize.ts` so that the launcher, which imports the
 * build tool, does not load the engines.
 *
 * @module
 */

/** `n` in unsigned LEB128, how a module encodes sizes. */
function leb128(n: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    bytes.push(byte);
  } while (n);
  return bytes;
}

/** The bytes of a WebAssembly custom section named `name` holding `payload`. */
export function customSection(name: string, payload: string): number[] {
  const encoder = new TextEncoder();
  const nameBytes = encoder.encode(name);
  const content = [...leb128(nameBytes.length), ...nameBytes, ...encoder.encode(payload)];
  return [0, ...leb128(content.length), ...content];
}
