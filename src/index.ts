/**
 * Hourglass public API: what an embedding application uses (the host, configuration types and
 * parsers, stores, errors, the guest ABI types; the HTTP API, metrics, logs and hot reload that
 * `hourglass start` puts beside a host), exported by name. The fuel instrumenter is the
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
export { openHost, type OpenedHost } from './cluster/open-host.ts';
export { serveApi } from './api/serve.ts';
export type { RunningApi } from './api/server.ts';
export type { ApiConfig, ApiTokenConfig } from './config/host-config.ts';
export { HostMetrics } from './observability/metrics.ts';
export { createLogger, logHostEvents } from './observability/log.ts';
export { reloadConfig, type ReloadReport, type PluginChange } from './operator/hot-reload.ts';
