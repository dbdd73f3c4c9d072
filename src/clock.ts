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

/**
 * How early the system clock's timer wakes before a due time, to finish the wait precisely.
 * Node's timers count whole milliseconds on libuv's monotonic loop clock, whose millisecond
 * boundaries are not `Date.now()`'s: a plain `setTimeout(due - Date.now())` wakes anywhere from
 * about 1 ms early (then nothing is due yet, and re-arming costs at least another millisecond)
 * to 2 ms late. So the timer wakes up to this much early and finishes the wait by yielding to
 * the event loop (`setImmediate`: I/O and results are still handled) until `Date.now()` reaches
 * the due time. The yielding costs CPU only in that last stretch before a due time: at 1,000
 * fires/s (bench/lateness.bench.ts, 10k schedules) the host's process used about 100% of a core
 * against 80% with plain timeouts, for p99 lateness 1.4–1.5 ms against 6–7 ms. Sleeping the
 * stretch in 0.2 ms `Atomics.wait` naps between turns cost 70–88% but gave 2.8–6.3 ms (the loop
 * is blocked while it naps), so the stretch yields instead.
 */
const EARLY_MS = 1;

/**
 * In that last stretch, each turn first busy-waits up to this long (checking `Date.now()`)
 * before yielding again. A turn that only yields allocates about 350 bytes (Node's `Immediate`
 * and its bookkeeping) and took ~2.5 µs, so the stretch made ~140 MB/s of garbage, and the
 * scheduler's thread scavenged three to four times as often as it does now (bench/lateness:
 * 592 against 142 GC pauses in 60 s), promoting run state that each scavenge caught alive.
 * Slices of 50 µs make ~10× less garbage; I/O waits at most a slice.
 */
const SPIN_SLICE_MS = 0.05;

/** Written by `spin` so that its loop is not optimised away. */
let spinSink = 0;

/** A few microseconds of work that allocates nothing: the busy-wait's step between clock reads. */
function spin(): void {
  let x = spinSink;
  for (let i = 0; i < 500; i++) x = (x * 31 + i) | 0;
  spinSink = x;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const at = Date.now() + ms;
    let timeout: NodeJS.Timeout | null = null;
    let immediate: NodeJS.Immediate | null = null;
    const check = (first: boolean): void => {
      timeout = immediate = null;
      let left = at - Date.now();
      if (left <= 0 && !first) return fn();
      if (left > EARLY_MS) {
        timeout = setTimeout(check, Math.min(left - EARLY_MS, MAX_TIMER_MS), false);
        timeout.unref?.();
        return;
      }
      if (!first) {
        const until = performance.now() + SPIN_SLICE_MS;
        do spin();
        while ((left = at - Date.now()) > 0 && performance.now() < until);
        if (left <= 0) return fn();
      }
      // Kept referenced: Node polls for I/O without a timeout while only unreferenced
      // immediates are pending, so one would wait for whatever wakes the loop next. It holds
      // the process for at most EARLY_MS. (It also keeps `fn` out of `setTimer` itself.)
      immediate = setImmediate(check, false);
    };
    check(true);
    return {
      cancel: () => {
        if (timeout) clearTimeout(timeout);
        if (immediate) clearImmediate(immediate);
        timeout = immediate = null;
      },
    };
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
