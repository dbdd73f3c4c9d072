/**
 * `hourglass/operator`: what `hourglass start` puts beside a host, for an application that
 * does the same: a host opened on its config's store (`openHost`: the SQLite file, or
 * PostgreSQL with its cluster of hosts), the HTTP API (`serveApi`), Prometheus metrics
 * (`HostMetrics`), logs (`createLogger`, `logHostEvents`) and hot reload (`reloadConfig`).
 * Apart from the main entry (src/index.ts), which loads none of their dependencies.
 */
export { openHost, type OpenedHost } from '../cluster/open-host.ts';
export { serveApi } from '../api/serve.ts';
export type { RunningApi } from '../api/server.ts';
export type { ApiConfig, ApiTokenConfig } from '../config/host-config.ts';
export { HostMetrics } from '../observability/metrics.ts';
export { createLogger, logHostEvents } from '../observability/log.ts';
export { reloadConfig, type ReloadReport, type PluginChange } from './hot-reload.ts';
