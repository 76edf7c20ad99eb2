/**
 * Makes a guest's loops stoppable from another thread. Deno 2.9.6 cannot stop
 * a worker that is busy (`terminate()` waits for its event loop, which a loop
 * never returns to), so each core module gets a one-page shared memory,
 * exported as {@link INTERRUPT_EXPORT}, and every `loop` starts by checking
 * its first word: once the server sets it, the guest traps at its next
 * iteration, the worker's stack unwinds and `terminate()` takes effect (as
 * wasmtime's epoch interruption does).
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { type BinarySection, encodeBinary, leb, readU32, sectionsOf } from "./sections.ts";

/** The export holding a module's interrupt flag (an Int32 at offset 0). */
export const INTERRUPT_EXPORT = "pier:interrupt";

const enum Section {
  Import = 2,
  Memory = 5,
  Export = 7,
  Code = 10,
}

/** Where each section goes, by id: a new one is inserted before the first with a higher rank. */
const SECTION_ORDER = [0, 1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

class Reader {
  constructor(readonly bytes: Uint8Array, public at = 0) {}
  byte(): number {
    if (this.at >= this.bytes.length) throw new Error("truncated module");
    return this.bytes[this.at++];
  }
  u32(): number {
    const [value, next] = readU32(this.bytes, this.at);
    this.at = next;
    return value;
  }
  /** Skips a signed or unsigned LEB128 of any width. */
  leb(): void {
    while (this.byte() & 0x80) { /* continue */ }
  }
  skip(n: number): void {
    this.at += n;
  }
  name(): void {
    this.skip(this.u32());
  }
}

/** A block type: empty (0x40), a value type (one byte, or a ref type with a heap type) or a type index. */
function blockType(r: Reader) {
  const first = r.bytes[r.at];
  if (first === 0x63 || first === 0x64) {
    r.skip(1);
    r.leb(); // (ref null? ht)
  } else r.leb(); // one byte or an s33 type index
}

function memarg(r: Reader) {
  const align = r.u32();
  if (align & 0x40) r.u32(); // memory index (multi-memory)
  r.leb(); // offset
}

/** SIMD (0xFD) sub-opcodes by immediates. */
function simd(r: Reader, op: number) {
  if (op <= 11 || op === 92 || op === 93) memarg(r);
  else if (op === 12 || op === 13) r.skip(16);
  else if (op >= 21 && op <= 34) r.skip(1);
  else if (op >= 84 && op <= 91) {
    memarg(r);
    r.skip(1);
  }
}

/** Bulk memory, tables and saturating truncation (0xFC). */
function misc(r: Reader, op: number) {
  if (op <= 7) return;
  if (op === 8 || op === 10 || op === 12 || op === 14) {
    r.u32();
    r.u32();
  } else if (op <= 17) r.u32();
}

/**
 * Offsets, within one function's code, just after each `loop`'s block type:
 * where the check goes. Throws on an opcode it does not know.
 */
function loopStarts(r: Reader, end: number): number[] {
  const starts: number[] = [];
  while (r.at < end) {
    const op = r.byte();
    switch (op) {
      case 0x03:
        blockType(r);
        starts.push(r.at);
        break;
      case 0x02:
      case 0x04:
      case 0x06:
        blockType(r);
        break;
      case 0x1f: { // try_table
        blockType(r);
        for (let n = r.u32(); n > 0; n--) {
          const kind = r.byte();
          if (kind === 0 || kind === 1) r.u32();
          r.u32();
        }
        break;
      }
      case 0x0e: // br_table
        for (let n = r.u32() + 1; n > 0; n--) r.u32();
        break;
      case 0x11:
      case 0x13: // call_indirect, return_call_indirect
        r.u32();
        r.u32();
        break;
      case 0x1c: // select t*
        for (let n = r.u32(); n > 0; n--) r.leb();
        break;
      case 0x41:
      case 0x42:
        r.leb();
        break;
      case 0x43:
        r.skip(4);
        break;
      case 0x44:
        r.skip(8);
        break;
      case 0xd0: // ref.null ht
        r.leb();
        break;
      case 0xfc:
        misc(r, r.u32());
        break;
      case 0xfd:
        simd(r, r.u32());
        break;
      case 0xfe: { // atomics
        const sub = r.u32();
        if (sub === 3) r.skip(1);
        else memarg(r);
        break;
      }
      default:
        if (op >= 0x28 && op <= 0x3e) memarg(r);
        else if (
          (op >= 0x0c && op <= 0x0d) || (op >= 0x07 && op <= 0x09) || op === 0x10 ||
          op === 0x12 || op === 0x14 || op === 0x15 || op === 0x18 || (op >= 0x20 && op <= 0x26) ||
          op === 0x3f || op === 0x40 || op === 0xd2 || op === 0xd5 || op === 0xd6
        ) r.u32();
        else if (op === 0xfb) throw new Error("GC instructions are not supported");
        else if (
          !(op <= 0x01 || op === 0x05 || op === 0x0a || op === 0x0b || op === 0x0f ||
            op === 0x19 || op === 0x1a || op === 0x1b || (op >= 0x45 && op <= 0xc4) ||
            op === 0xd1 || op === 0xd3 || op === 0xd4)
        ) throw new Error(`unknown opcode 0x${op.toString(16)} at ${r.at - 1}`);
    }
  }
  return starts;
}

/** The check at a loop's start: `if (i32.load memN 0) unreachable`. */
function check(memory: number): number[] {
  return [0x41, 0x00, 0x28, 0x42, ...leb(memory), 0x00, 0x04, 0x40, 0x00, 0x0b];
}

/** Counts the memories a module imports. */
function importedMemories(content: Uint8Array): number {
  const r = new Reader(content);
  let memories = 0;
  for (let n = r.u32(); n > 0; n--) {
    r.name();
    r.name();
    const kind = r.byte();
    if (kind === 0) r.u32();
    else if (kind === 1) {
      r.leb(); // ref type (one byte, or 0x63/0x64 + heap type)
      if (content[r.at - 1] === 0x63 || content[r.at - 1] === 0x64) r.leb();
      const flags = r.byte();
      r.leb();
      if (flags & 1) r.leb();
    } else if (kind === 2) {
      memories++;
      const flags = r.byte();
      r.leb();
      if (flags & 1) r.leb();
    } else if (kind === 3) {
      r.leb();
      r.byte();
    } else if (kind === 4) {
      r.byte();
      r.u32();
    } else throw new Error(`unknown import kind ${kind}`);
  }
  return memories;
}

/** The code section with the check inserted at every loop's start, and how many loops it has. */
function instrumentCode(content: Uint8Array, memory: number): [Uint8Array, number] {
  const r = new Reader(content);
  const bytes = check(memory);
  const parts: Uint8Array[] = [];
  const count = r.u32();
  let loops = 0;
  parts.push(new Uint8Array(leb(count)));
  for (let f = 0; f < count; f++) {
    const size = r.u32();
    const start = r.at;
    const end = start + size;
    for (let n = r.u32(); n > 0; n--) {
      r.u32();
      r.leb(); // value type (a ref type's heap type follows)
      if (content[r.at - 1] === 0x63 || content[r.at - 1] === 0x64) r.leb();
    }
    const starts = loopStarts(r, end);
    loops += starts.length;
    const body: Uint8Array[] = [];
    let from = start;
    for (const at of starts) {
      body.push(content.subarray(from, at), new Uint8Array(bytes));
      from = at;
    }
    body.push(content.subarray(from, end));
    const newSize = size + starts.length * bytes.length;
    parts.push(new Uint8Array(leb(newSize)), ...body);
    r.at = end;
  }
  return [concatBytes(parts), loops];
}

/**
 * Returns `module` with its interrupt flag (see the module doc); a module
 * without loops is returned as it is.
 */
export function instrumentLoops(module: Uint8Array): Uint8Array {
  const sections = sectionsOf(module);
  const imports = sections.find((s) => s.id === Section.Import);
  const memories = sections.find((s) => s.id === Section.Memory);
  const memory = (imports ? importedMemories(imports.content) : 0) +
    (memories ? new Reader(memories.content).u32() : 0);
  const code = sections.find((s) => s.id === Section.Code);
  if (!code) return module;
  const [instrumented, loops] = instrumentCode(code.content, memory);
  if (loops === 0) return module;
  code.content = instrumented;
  // One page, shared (so the server thread can set it), never grown.
  appendEntry(sections, Section.Memory, [0x03, 0x01, 0x01]);
  const name = new TextEncoder().encode(INTERRUPT_EXPORT);
  appendEntry(sections, Section.Export, [...leb(name.length), ...name, 0x02, ...leb(memory)]);
  return encodeBinary(module, sections);
}

/** Appends `entry` to the vector section `id`, creating the section if need be. */
function appendEntry(sections: BinarySection[], id: number, entry: number[]) {
  const existing = sections.find((s) => s.id === id);
  if (!existing) return insert(sections, { id, content: new Uint8Array([1, ...entry]) });
  const r = new Reader(existing.content);
  const count = r.u32();
  existing.content = new Uint8Array([
    ...leb(count + 1),
    ...existing.content.subarray(r.at),
    ...entry,
  ]);
}

function insert(sections: BinarySection[], added: BinarySection) {
  const rank = (id: number) => SECTION_ORDER.indexOf(id);
  const at = sections.findIndex((s) => s.id !== 0 && rank(s.id) > rank(added.id));
  sections.splice(at === -1 ? sections.length : at, 0, added);
}
