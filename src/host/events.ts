/**
 * Typed host events with namespaced keys: the one source that logs (src/observability/) and
 * other listeners read. `emit` is guarded: a listener that throws does not reach the code that
 * emitted (a run's outcome, a timer, a load) nor stop the listeners after it; it becomes a
 * `host:error` event (a throwing `host:error` listener is dropped silently, so no loop).
 */
import { EventEmitter } from 'node:events';
import { errorMessage } from '../errors.ts';
import type { QuotaExhausted } from '../scheduler/fuel-windows.ts';
import type { RetryScheduled, StartedRun } from '../scheduler/scheduler.ts';
import type { HostLease, RunRecord, ScheduleRecord } from '../store/types.ts';
import type { ReconcileResult } from './reconcile.ts';
import type { HttpRequestRecord } from '../sandbox/http/guest-http.ts';

/** One outbound request of a guest, with the run it belongs to (null outside runs). */
export type GuestHttpRecord = HttpRequestRecord & { readonly runId: number | null };

export interface HostEventMap {
  'plugin:loaded': [{ pluginId: string; schedules: number; reconcile: ReconcileResult }];
  'plugin:failed': [{ pluginId: string; code: string; message: string }];
  'plugin:unloaded': [{ pluginId: string }];
  'run:started': [StartedRun];
  'run:finished': [RunRecord];
  /** A failed run's tick gets another attempt, due at `dueAt` (its `waiting` row is written). */
  'run:retrying': [RetryScheduled];
  /**
   * The breaker paused a schedule after `failures` failed ticks in a row (`note` is its pause
   * note); an operator's resume clears the count.
   */
  'schedule:tripped': [{ schedule: ScheduleRecord; failures: number; note: string }];
  'schedule:skipped': [
    {
      schedule: ScheduleRecord;
      status: 'skipped_overlap' | 'skipped_misfire' | 'cancelled' | 'quota_exhausted';
      reason: string;
    },
  ];
  'guest:log': [{ pluginId: string; level: string; message: string; runId?: number | null }];
  /** A guest's outbound HTTP request ended (answered, failed or refused); never its body. */
  'guest:http': [{ pluginId: string; tenant: string } & GuestHttpRecord];
  /**
   * A guest's host-function call was answered: `code` is `ok` or the error's code. Emitted
   * only while someone listens (the metrics). `fn` is the name the guest called, which may be
   * no host function (answered `invalid_argument`).
   */
  'host:call': [{ pluginId: string; tenant: string; fn: string; code: string }];
  /**
   * A tenant's fuel window is spent: its ticks are recorded `quota_exhausted` until
   * `windowEnd` (once per tenant and window; docs/schedules.md, "Fuel windows").
   */
  'tenant:quota_exhausted': [QuotaExhausted];
  'host:error': [{ message: string; cause: unknown }];
  /** A store write failed (disk full, I/O error): the host stopped firing and retries. */
  'store:failed': [{ code: string; message: string; cause: unknown }];
  /** Writes succeed again: the host reloaded its schedules from the store and fires again. */
  'store:recovered': [{ downMs: number }];
  /**
   * Retention deleted `count` finished runs of `tenant` (one round of its prune, src/host/
   * retention.ts; emitted only when it deleted some).
   */
  'runs:pruned': [{ tenant: string; count: number }];
  /** Another host took the store's lease: this host no longer fires (stop and restart it). */
  'lease:lost': [{ holder: HostLease | null }];
}

export class HostEvents extends EventEmitter<HostEventMap> {
  override emit<K extends keyof HostEventMap>(event: K, ...args: HostEventMap[K]): boolean {
    // Raw listeners: a `once` listener's wrapper removes itself when called.
    const listeners = this.rawListeners(event) as ((...a: HostEventMap[K]) => void)[];
    for (const listener of listeners) {
      try {
        listener.apply(this, args);
      } catch (err) {
        if (event !== 'host:error')
          this.emit('host:error', {
            message: `a ${event} listener threw: ${errorMessage(err)}`,
            cause: err,
          });
      }
    }
    return listeners.length > 0;
  }
}
