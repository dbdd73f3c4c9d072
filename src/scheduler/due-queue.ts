/**
 * A binary min-heap of (due time, schedule key) with lazy invalidation: changing or removing
 * a schedule gives it a new sequence number, and stale entries are dropped when they reach the top.
 * One queue and one timer serve every schedule (100k schedules cost 100k small objects, not
 * 100k timers). Entries due at the same time leave in the order they were set (ties go by
 * sequence number), so what fires first does not depend on the heap's shape.
 */

interface Entry {
  readonly dueAt: number;
  readonly key: string;
  readonly gen: number;
}

/** `a` leaves the queue before `b`. */
function before(a: Entry, b: Entry): boolean {
  return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.gen < b.gen);
}

export class DueQueue {
  readonly #heap: Entry[] = [];
  /** The live entry's sequence number per key. Sequence numbers are never reused, so an old
   * entry can never pass for a newer one after its key was deleted and set again. */
  readonly #gen = new Map<string, number>();
  #seq = 0;

  get size(): number {
    return this.#gen.size;
  }

  /** Schedules `key` at `dueAt`, replacing any earlier entry for it. */
  set(key: string, dueAt: number): void {
    const gen = ++this.#seq;
    this.#gen.set(key, gen);
    this.#push({ dueAt, key, gen });
  }

  delete(key: string): void {
    this.#gen.delete(key);
  }

  has(key: string): boolean {
    return this.#gen.has(key);
  }

  /** The earliest live due time, or null. */
  peekTime(): number | null {
    this.#dropStale();
    return this.#heap[0]?.dueAt ?? null;
  }

  /** Removes and returns every live entry due at or before `now`, earliest first. */
  popDue(now: number): { key: string; dueAt: number }[] {
    const out: { key: string; dueAt: number }[] = [];
    for (;;) {
      this.#dropStale();
      const top = this.#heap[0];
      if (!top || top.dueAt > now) break;
      this.#pop();
      this.#gen.delete(top.key);
      out.push({ key: top.key, dueAt: top.dueAt });
    }
    return out;
  }

  #dropStale(): void {
    for (;;) {
      const top = this.#heap[0];
      if (!top || this.#gen.get(top.key) === top.gen) return;
      this.#pop();
    }
  }

  #push(e: Entry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p] as Entry)) break;
      h[i] = h[p] as Entry;
      i = p;
    }
    h[i] = e;
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop() as Entry;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && before(h[r] as Entry, h[l] as Entry) ? r : l;
      if (!before(h[c] as Entry, last)) break;
      h[i] = h[c] as Entry;
      i = c;
    }
    h[i] = last;
  }
}
