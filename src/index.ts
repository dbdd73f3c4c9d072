/**
 * Hourglass public API: what an embedding application uses (the host, configuration types and
 * parsers, stores, errors, the guest ABI types), exported by name. The HTTP API, metrics, logs,
 * hot reload and the PostgreSQL cluster that `hourglass start` puts beside a host are the
 * sub-path `hourglass/operator` (src/operator/index.ts), so that a host embedded without them
 * does not load fastify, pg, prom-client and pino (~11 MB of RSS); the fuel instrumenter is the
 * sub-path `hourglass/fuel`; the CLI's plumbing (`check`, `instrument`) stays private.
 */
export { Host, type HostOptions, type LoadedPlugin } from './host/host.ts';
export type { HostEventMap } from './host/events.ts';
export {
  loadHostConfig,
  parseHostConfig,
  defaultHostConfig,
  DEFAULT_QUOTAS,
  type HostConfig,
  type StoreConfig,
  type TenantConfig,
  type TenantQuotas,
  type PluginEntry,
} from './config/host-config.ts';
export {
  loadManifest,
  parseManifest,
  DEFAULT_LIMITS,
  type PluginManifest,
  type PluginLimits,
} from './plugin/manifest.ts';
export { CAPABILITIES, type Capability } from './capabilities.ts';
export { systemClock, ManualClock, type Clock, type TimerHandle } from './clock.ts';
export {
  HourglassError,
  ConfigError,
  ErrorCodes,
  isHourglassError,
  type ErrorCode,
} from './errors.ts';
export { SqliteStore } from './store/sqlite-store.ts';
export type {
  Store,
  ScheduleRecord,
  RunRecord,
  RunStatus,
  RunTrigger,
  PluginRecord,
  JobContractRecord,
  ScheduleState,
  HostLease,
  LeaseClaim,
  LeaseResult,
} from './store/types.ts';
export type { StoreHealth } from './host/store-supervisor.ts';
export { InThreadSandbox } from './sandbox/in-thread-sandbox.ts';
export { WorkerPoolSandbox, type WorkerPoolOptions } from './sandbox/pool/worker-pool-sandbox.ts';
export type {
  Sandbox,
  CallOutcome,
  CallRequest,
  CallerContext,
  GuestSpec,
  GuestInfo,
  HostCallAnswer,
  HostCallHandler,
  Phase,
} from './sandbox/types.ts';
export { parseDeclaration, type ParsedDeclaration } from './schedule/declaration.ts';
export type { RunContext } from './host/run-executor.ts';
