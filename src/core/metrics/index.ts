/**
 * Golden metrics (SPEC.md section 7): the `metrics()` layer records each call into a
 * per-isolate registry, which exposes Prometheus text, answers last-minute stats and hands out
 * deltas that the control plane's aggregator adds up into the same stats mesh-wide.
 */
export { metrics } from "./layer.ts";
export type { MetricsOptions } from "./layer.ts";
export { createRegistry, DEFAULT_MAX_ROUTES, DEFAULT_MAX_SERIES } from "./registry.ts";
export type { Registry, RegistryOptions, SeriesHandle } from "./registry.ts";
export { createAggregator, DEFAULT_HOST_TTL_MS, DEFAULT_MAX_HOSTS } from "./aggregator.ts";
export type { Aggregator, AggregatorOptions, MergeResult } from "./aggregator.ts";
export { classify, GRPC_FAILURE_CODES } from "./classify.ts";
export type { Classification, Outcome } from "./classify.ts";
export { LATENCY_BOUNDS_MS, quantile } from "./histogram.ts";
export { EXPOSITION_CONTENT_TYPE } from "./exposition.ts";
export { WINDOW_SECONDS } from "./store.ts";
export type {
  CountDelta,
  Direction,
  EndpointLabels,
  FaultLabels,
  MetricsDelta,
  MirrorLabels,
  RequestLabels,
  ResponseDelta,
  ResponseLabels,
  RouteLabels,
  RouteStats,
  SecondDelta,
  ServiceLabels,
  SparseBuckets,
  Stats,
  WindowDelta,
} from "./store.ts";
