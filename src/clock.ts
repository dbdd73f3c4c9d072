/**
 * Time source for the scheduler. The system clock in production; a manual clock in tests so
 * that cron and interval schedules can be driven through hours of virtual time instantly.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Calls `fn` once, `ms` from now (never sooner). */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

/** Node's setTimeout caps delays at 2^31-1 ms; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that only moves when told to. `advance` fires due timers in time order. */
export class ManualClock implements Clock {
  #now: number;
  #timers: ManualTimer[] = [];
  #seq = 0;

  constructor(start: number | Date) {
    this.#now = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = {
      at: this.#now + Math.max(0, ms),
      seq: this.#seq++,
      fn,
      cancelled: false,
    };
    this.#timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Moves time forward to `now + ms`, firing each due timer at its own time. */
  advance(ms: number): void {
    this.set(this.#now + ms);
  }

  set(target: number): void {
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      const due = this.#timers
        .filter((t) => t.at <= target)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = Math.max(this.#now, target);
  }
}
