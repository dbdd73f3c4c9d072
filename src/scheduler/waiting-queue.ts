/**
 * A tenant's ticks waiting for a run slot, oldest first: take from the front in O(1) (a head
 * index over an array, compacted once half of it is taken), instead of `Array.shift()` which
 * moves every remaining element (measurable in a burst of 20k waiting ticks). Removing from the
 * middle (a schedule paused while its tick waits, a held plugin's tick skipped) stays O(n):
 * it is rare.
 */
export class WaitingQueue<T> {
  #items: T[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** The `i`-th waiting item (0: the oldest). */
  at(i: number): T | undefined {
    return this.#items[this.#head + i];
  }

  /** Removes and returns the `i`-th item; O(1) for the oldest. */
  removeAt(i: number): T | undefined {
    if (i < 0 || i >= this.length) return undefined;
    if (i > 0) return this.#items.splice(this.#head + i, 1)[0];
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined as T;
    this.#head++;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Puts an item back at position `i` (a start that could not be written). */
  insertAt(i: number, item: T): void {
    if (i === 0 && this.#head > 0) this.#items[--this.#head] = item;
    else this.#items.splice(this.#head + i, 0, item);
  }

  indexWhere(pred: (item: T) => boolean): number {
    for (let i = this.#head; i < this.#items.length; i++)
      if (pred(this.#items[i] as T)) return i - this.#head;
    return -1;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i] as T;
  }
}

/** What `PriorityWaiting` orders by: the schedule's priority and when the tick began waiting. */
export interface Waiter {
  readonly priority: number;
  /** When the tick began waiting (ms; a tick taken up at restart: its `waiting` row's start). */
  readonly since: number;
}

/** Where an item of a `PriorityWaiting` is: its level (priority) and index in that level. */
export interface WaitingSlot {
  readonly level: number;
  readonly index: number;
}

/**
 * A tenant's ticks waiting for a run slot, in priority order with aging (docs/schedules.md,
 * "Priorities"): one FIFO per priority level (0..`levels`-1), oldest first in each. The next tick
 * to start is the head with the highest effective priority, its level plus one per `agingMs` it
 * has waited (uncapped); ties go to the tick that has waited longest, then to the higher level.
 * Within a level the head has waited longest, so it has the level's highest effective priority:
 * a take compares the heads only (O(levels)), and a low-priority tick outranks a stream of newer
 * high-priority ones once it has waited `agingMs` per level between them.
 */
export class PriorityWaiting<T extends Waiter> {
  readonly #levels: WaitingQueue<T>[];
  readonly #agingMs: number;
  #length = 0;

  constructor(levels: number, agingMs: number) {
    this.#levels = Array.from({ length: levels }, () => new WaitingQueue<T>());
    this.#agingMs = agingMs;
  }

  get length(): number {
    return this.#length;
  }

  #levelOf(priority: number): WaitingQueue<T> {
    const i = Math.min(this.#levels.length - 1, Math.max(0, Math.trunc(priority)));
    return this.#levels[i] as WaitingQueue<T>;
  }

  /**
   * Adds an item: at the back of its level, or (a tick taken up at restart that began waiting
   * before the level's last) before the items that began waiting after it.
   */
  push(item: T): void {
    const q = this.#levelOf(item.priority);
    let i = q.length;
    while (i > 0 && (q.at(i - 1) as T).since > item.since) i--;
    if (i === q.length) q.push(item);
    else q.insertAt(i, item);
    this.#length++;
  }

  /**
   * The slot of the item to start next at `now`: the best head by effective priority, skipping
   * items `skip` holds (a level's first item it does not skip is its head); null: none.
   */
  next(now: number, skip?: (item: T) => boolean): WaitingSlot | null {
    let best: WaitingSlot | null = null;
    let bestRank = -Infinity;
    let bestSince = Infinity;
    for (let level = this.#levels.length - 1; level >= 0; level--) {
      const q = this.#levels[level] as WaitingQueue<T>;
      if (q.length === 0) continue;
      const index = skip === undefined ? 0 : q.indexWhere((x) => !skip(x));
      if (index < 0) continue;
      const item = q.at(index) as T;
      const rank = level + Math.floor(Math.max(0, now - item.since) / this.#agingMs);
      // Levels are visited from the highest: on a full tie the higher level keeps its place.
      if (rank > bestRank || (rank === bestRank && item.since < bestSince)) {
        best = { level, index };
        bestRank = rank;
        bestSince = item.since;
      }
    }
    return best;
  }

  at(slot: WaitingSlot): T | undefined {
    return this.#levels[slot.level]?.at(slot.index);
  }

  removeAt(slot: WaitingSlot): T | undefined {
    const item = this.#levels[slot.level]?.removeAt(slot.index);
    if (item !== undefined) this.#length--;
    return item;
  }

  /** Puts an item back where it was (a start that could not be written). */
  insertAt(slot: WaitingSlot, item: T): void {
    this.#levels[slot.level]?.insertAt(slot.index, item);
    this.#length++;
  }

  /** The slot of the first item (by level, then age) for which `pred` holds; null: none. */
  find(pred: (item: T) => boolean): WaitingSlot | null {
    for (let level = 0; level < this.#levels.length; level++) {
      const index = (this.#levels[level] as WaitingQueue<T>).indexWhere(pred);
      if (index >= 0) return { level, index };
    }
    return null;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (const q of this.#levels) yield* q;
  }
}
