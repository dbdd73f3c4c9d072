/**
 * What every part of the store conformance suite shares: the store under test, a fixture that
 * reopens the same database, and row builders. Only the `Store` interface is used.
 *
 * Every store call is awaited, so a `Store` whose methods return promises runs this suite
 * unchanged; only `transaction(fn)` bodies are written synchronously (as the interface is today).
 */
import type { TestContext } from 'node:test';
import type {
  NewRun,
  RunFinish,
  RunRecord,
  ScheduleRecord,
  Store,
} from '../../../src/store/types.ts';
import { scheduleRow } from '../../unit/schedule-row.ts';

export { scheduleRow };

/** One store implementation, as the suite drives it. */
export interface StoreUnderTest {
  /** "sqlite", "postgres". */
  readonly name: string;
  /** A new, empty store; tenants the test will write rows for are listed up front. */
  open(tenants: readonly string[]): Promise<Store>;
  /** Closes `store` (after `await store.committed()`) and opens the SAME database again. */
  reopen(store: Store, tenants: readonly string[]): Promise<Store>;
  /** Drops everything `open` created. */
  cleanup(): Promise<void>;
}

/** 2026-01-15T10:00:00Z (the time of `scheduleRow`'s rows). */
export const T0 = Date.parse('2026-01-15T10:00:00Z');

/** The tenants every test may write rows for. */
export const TENANTS = ['acme', 'globex'] as const;

/** A store open on a database of its own, for one test. */
export class Fixture {
  #store: Store;
  readonly #sut: StoreUnderTest;

  constructor(sut: StoreUnderTest, store: Store) {
    this.#sut = sut;
    this.#store = store;
  }

  get store(): Store {
    return this.#store;
  }

  /** Closes the store (its writes committed first) and opens the same database again. */
  async reopen(): Promise<Store> {
    await this.#store.committed();
    this.#store = await this.#sut.reopen(this.#store, TENANTS);
    return this.#store;
  }

  /**
   * Runs `check` on the open store, then on the same database reopened: what a store promises
   * must be true in the database, not only in a cache.
   */
  async both(check: (store: Store) => Promise<void> | void): Promise<void> {
    await check(this.#store);
    await check(await this.reopen());
  }
}

/** A fixture on a new, empty store, dropped after the test. */
export async function setup(t: TestContext, make: () => StoreUnderTest): Promise<Fixture> {
  const sut = make();
  t.after(() => sut.cleanup());
  return new Fixture(sut, await sut.open(TENANTS));
}

/** A record without the store-kept `generation` (compared separately where it matters). */
export function plain(
  rec: ScheduleRecord | undefined,
): Omit<ScheduleRecord, 'generation'> | undefined {
  if (rec === undefined) return undefined;
  const { generation, ...rest } = rec;
  return rest;
}

/** Rows of `acme/<plugin>` (plugin `poller` unless given), active, next at T0 + 1 min. */
export function row(
  localId: string,
  fields: Parameters<typeof scheduleRow>[2] & { readonly tenant?: string } = {},
): ScheduleRecord {
  const { tenant = 'acme', ...rest } = fields;
  return scheduleRow(tenant, localId, { plugin: 'poller', nextAt: T0 + 60_000, ...rest });
}

/** A `running` run of `<tenant>/<plugin>/<localId>` scheduled at T0. */
export function runOf(scheduleKey: string, over: Partial<NewRun> = {}): Omit<RunRecord, 'id'> {
  const [tenant, plugin, localId] = scheduleKey.split('/') as [string, string, string];
  return {
    scheduleKey,
    pluginId: `${tenant}/${plugin}`,
    tenant,
    localId,
    trigger: 'schedule',
    status: 'running',
    reason: null,
    scheduledAt: T0,
    startedAt: T0 + 5,
    finishedAt: null,
    attempt: 1,
    error: null,
    outputBytes: null,
    fuelUsed: null,
    fuelBudget: null,
    result: null,
    ...over,
    coversUntil: over.coversUntil ?? null,
    pluginVersion: over.pluginVersion ?? null,
    wasmSha256: over.wasmSha256 ?? null,
    logTail: over.logTail ?? null,
  };
}

/** A successful outcome finished at `at`. */
export function succeeded(at: number): RunFinish {
  return {
    status: 'succeeded',
    reason: null,
    finishedAt: at,
    error: null,
    outputBytes: 0,
    fuelUsed: null,
    fuelBudget: null,
    result: null,
  };
}

/** The keys (or local ids) of listed schedules. */
export const keys = (rows: readonly ScheduleRecord[]): string[] => rows.map((r) => r.key);
export const localIds = (rows: readonly ScheduleRecord[]): string[] => rows.map((r) => r.localId);
