/**
 * Caps the linear memory of a core WebAssembly module by rewriting the
 * maximum in its memory section: past the cap `memory.grow` fails inside
 * the guest (its allocator then traps), so a guest that eats memory fails
 * its own request instead of the worker.
 *
 * @module
 */

const PAGE_BYTES = 65536;
const MEMORY_SECTION = 5;
const HEADER_BYTES = 8;

function readLeb(bytes: Uint8Array, offset: number): [value: bigint, next: number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const byte = bytes[offset++];
    if (byte === undefined) throw new Error("truncated module");
    result |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) return [result, offset];
  }
}

function writeLeb(value: bigint): number[] {
  const out: number[] = [];
  do {
    let byte = Number(value & 0x7fn);
    value >>= 7n;
    if (value !== 0n) byte |= 0x80;
    out.push(byte);
  } while (value !== 0n);
  return out;
}

/** Bytes of a maximum written padded: room for any page count, so a cap is set in place. */
const PADDED_BYTES = 5;

function writePaddedLeb(value: bigint): number[] {
  const out: number[] = [];
  for (let i = 0; i < PADDED_BYTES; i++) {
    out.push(Number(value & 0x7fn) | (i < PADDED_BYTES - 1 ? 0x80 : 0));
    value >>= 7n;
  }
  return out;
}

/** A module whose declared memories need more than the cap from the start. */
export class MemoryLimitError extends Error {}

/**
 * Returns `module` with every memory it defines limited to `maxBytes`
 * (an existing smaller maximum is kept). Modules without a memory section
 * are returned as they are. The maximum is written padded, so that limiting
 * the result again changes it in place instead of copying the module (the
 * compile cache stores its core modules so).
 */
export function limitMemory(module: Uint8Array, maxBytes: number): Uint8Array {
  const capPages = BigInt(Math.floor(maxBytes / PAGE_BYTES));
  let offset = HEADER_BYTES;
  while (offset < module.length) {
    const id = module[offset];
    const [size, contentStart] = readLeb(module, offset + 1);
    const contentEnd = contentStart + Number(size);
    if (id !== MEMORY_SECTION) {
      offset = contentEnd;
      continue;
    }
    let [count, cursor] = readLeb(module, contentStart);
    const content: number[] = writeLeb(count);
    /** Where each padded maximum starts, and its new value. */
    const inPlace: [at: number, max: bigint][] = [];
    for (; count > 0n; count--) {
      const flags = module[cursor++];
      let min: bigint;
      [min, cursor] = readLeb(module, cursor);
      let max = capPages;
      if (flags & 1) {
        const at = cursor;
        let declared: bigint;
        [declared, cursor] = readLeb(module, cursor);
        if (declared < max) max = declared;
        if (cursor - at === PADDED_BYTES) inPlace.push([at, max]);
      }
      if (min > capPages) {
        throw new MemoryLimitError(
          `the component needs ${(Number(min) * PAGE_BYTES) / 2 ** 20} MB of memory at start, ` +
            `over its limit of ${maxBytes / 2 ** 20} MB (raise limits.memoryMb)`,
        );
      }
      content.push(flags | 1, ...writeLeb(min), ...writePaddedLeb(max));
    }
    if (inPlace.length === Number(readLeb(module, contentStart)[0])) {
      for (const [at, max] of inPlace) module.set(writePaddedLeb(max), at);
      return module;
    }
    const section = [MEMORY_SECTION, ...writeLeb(BigInt(content.length)), ...content];
    const out = new Uint8Array(offset + section.length + (module.length - contentEnd));
    out.set(module.subarray(0, offset));
    out.set(section, offset);
    out.set(module.subarray(contentEnd), offset + section.length);
    return out;
  }
  return module;
}
