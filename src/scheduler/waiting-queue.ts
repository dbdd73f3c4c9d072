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
