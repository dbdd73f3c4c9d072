/** Typed host events with namespaced keys. */
import { EventEmitter } from 'node:events';
import type { StartedRun } from '../scheduler/scheduler.ts';
import type { RunRecord, ScheduleRecord } from '../store/types.ts';
import type { ReconcileResult } from './reconcile.ts';

export interface HostEventMap {
  'plugin:loaded': [{ pluginId: string; schedules: number; reconcile: ReconcileResult }];
  'plugin:failed': [{ pluginId: string; code: string; message: string }];
  'plugin:unloaded': [{ pluginId: string }];
  'run:started': [StartedRun];
  'run:finished': [RunRecord];
  'schedule:skipped': [
    {
      schedule: ScheduleRecord;
      status: 'skipped_overlap' | 'skipped_misfire' | 'cancelled';
      reason: string;
    },
  ];
  'guest:log': [{ pluginId: string; level: string; message: string }];
  'host:error': [{ message: string; cause: unknown }];
}

export class HostEvents extends EventEmitter<HostEventMap> {}
