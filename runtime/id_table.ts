/**
 * A table of what is in flight by integer id (requests, calls), for tables
 * that gain and lose an entry with every request: a `Map` there keeps every
 * value it ever held alive through each minor GC, until the next major one.
 *
 * Why: V8 replaces a `Map`'s hash table when it grows, shrinks, or fills up
 * with deleted entries (every few requests under steady churn), and the
 * table it replaced keeps its entries and a link to its successor (for
 * iterators). Once one table of the chain is in the old generation, as the
 * table in use is after any major GC, it holds the next one, and that one
 * the next, all alive to the scavenger until a major GC finds them
 * unreachable: with them every value they held (a request's promise, its
 * `Response`, its headers, its body). Measured on the server thread under
 * `wrk -c16` (WAT hello): ~950 bytes per request survived each scavenge
 * with `Map`s, ~210 with this table, and the scavenges' time per request fell
 * to a fifth. An object with integer keys keeps them in a dictionary with no
 * such chain: a dictionary it replaced holds only what it held then.
 *
 * Ids are iterated in ascending order (the way an object lists its
 * integer keys; ids beyond 2^32 - 2 follow in insertion order). The callers
 * give increasing ids, so that is the order in which the entries came.
 *
 * @module
 */

/** Entries by integer id; the subset of `Map`'s interface the request paths use. */
export class IdTable<V> {
  #entries: Record<number, V> = Object.create(null);
  #size = 0;

  /** Entries in the table. */
  get size(): number {
    return this.#size;
  }

  get(id: number): V | undefined {
    return this.#entries[id];
  }

  has(id: number): boolean {
    return id in this.#entries;
  }

  set(id: number, value: V): void {
    if (!(id in this.#entries)) this.#size++;
    this.#entries[id] = value;
  }

  /** Removes entry `id`; false if there was none. */
  delete(id: number): boolean {
    if (!(id in this.#entries)) return false;
    delete this.#entries[id];
    this.#size--;
    return true;
  }

  /** The ids, in ascending order (see the module's note). */
  ids(): number[] {
    return Object.keys(this.#entries).map(Number);
  }

  /** The entry with the lowest id (the oldest, see the module's note), if any. */
  first(): V | undefined {
    for (const id in this.#entries) return this.#entries[id];
    return undefined;
  }
}
