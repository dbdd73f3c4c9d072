/**
 * One behaviour of the hostile corpus (issue 9). Each area's cases live in
 * `test/integration/hostile-cases-<area>.ts`, which exports `CASES: readonly HostileCase[]`;
 * `hostile-corpus.test.ts` runs every case through the real worker pool on the real clock,
 * each in its own host beside a well-behaved tenant firing every second, and checks after each
 * case: the expected typed outcome, host RSS within its bound, the worker thread count back to
 * the pool size, `host.stop()` within the shutdown grace + 1 s, and the good tenant on time.
 *
 * The hostile plugin is `hostile/<name>` (the case name made a plugin name), in tenant
 * `hostile` with `CORPUS_QUOTAS` under the case's quotas; the host is built by
 * `hostile-host.ts`. Run some cases only: `HG_CORPUS=var-set,kernel node --import tsx --test
 * test/integration/hostile-corpus.test.ts` (substrings of case names or file names).
 */
import type { Capability } from '../../src/capabilities.ts';
import type { TenantQuotas } from '../../src/config/host-config.ts';
import type { Host } from '../../src/host/host.ts';
import type { RunRecord } from '../../src/store/types.ts';

export interface HostileCase {
  /** Short unique name of the behaviour, e.g. `var-set-bomb`. */
  readonly name: string;
  /** The issue-9 item(s) it covers, e.g. `2` or `3,13`; `corpus` for the older cases. */
  readonly item: string;
  /**
   * The guest: `wat` names `guest-examples/wat/<wat>.wat` (built to `build/<wat>.wasm`; it
   * declares its own schedules in `schedules()`); `proxy` runs the AssemblyScript proxy guest
   * with these declarations (its Extism config `schedules`) and optional `discovery_calls`.
   */
  readonly guest:
    | { readonly wat: string }
    | {
        readonly proxy: readonly Record<string, unknown>[];
        readonly discoveryCalls?: readonly unknown[];
      };
  /**
   * Manifest `limits` of the hostile plugin; what it leaves out takes the manifest defaults
   * (`DEFAULT_LIMITS`: 256 pages, 5 s, fuel 50 M discovery / 500 M run / 50 M cleanup; a
   * partial `fuel` keeps the defaults of the phases it does not name).
   */
  readonly limits?: Readonly<Record<string, unknown>>;
  /** Capabilities the plugin asks for (the tenant grants all). @defaultValue all */
  readonly capabilities?: readonly Capability[];
  /** Quotas of the hostile tenant (each case has its own tenant), over `CORPUS_QUOTAS`. */
  readonly quotas?: Partial<TenantQuotas>;
  /** Extra Extism config values for the plugin. */
  readonly config?: Readonly<Record<string, string>>;
  /**
   * Runs before the host starts, in the case's temporary folder: may return a path to use as
   * the manifest's `wasm` instead of the guest's (e.g. `/dev/zero`, a FIFO, a huge file).
   */
  readonly setup?: (dir: string) => { readonly wasm?: string } | void;
  /**
   * What must happen:
   * - `trigger`: the schedule with this local id is triggered `times` times (default 1), one
   *   after another, and every run ends with `status` (and `reason` when given);
   * - `loadFails`: the plugin fails to load with this `HG_` code, and the host runs on;
   * - `custom`: `check` drives the case itself.
   */
  readonly expect:
    | {
        readonly trigger: string;
        readonly times?: number;
        readonly status: string;
        readonly reason?: string;
      }
    | { readonly loadFails: string }
    | { readonly custom: true };
  /** Further assertions (and the driver of `custom` cases), after the expected outcome. */
  readonly check?: (ctx: HostileContext) => void | Promise<void>;
}

export interface HostileContext {
  readonly host: Host;
  /** The hostile plugin's id, `<tenant>/<name>`. */
  readonly pluginId: string;
  readonly tenant: string;
  /** The case's temporary folder. */
  readonly dir: string;
  /** Records of the hostile plugin's schedule `localId`, oldest first. */
  readonly runs: (localId: string) => RunRecord[];
  /** `plugin:failed` events of this host so far: plugin id → `HG_` code. */
  readonly failures: ReadonlyMap<string, string>;
  /**
   * Triggers the hostile plugin's schedule `localId` (once it is idle) and waits until that
   * manual run is recorded finished; rejects, naming the schedule, after 60 s.
   */
  readonly trigger: (localId: string) => Promise<RunRecord>;
}

/**
 * The hostile tenant's quotas unless the case says otherwise (the rest are the project's
 * defaults): one run in flight, below the pool size (2), so the well-behaved tenant always
 * finds a worker free.
 */
export const CORPUS_QUOTAS: Partial<TenantQuotas> = Object.freeze({ maxRunsInFlight: 1 });
