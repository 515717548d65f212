/**
 * The control plane's side of the metrics: it adds up the deltas hosts push and answers the
 * same `snapshot()` and `expose()` as a registry, for `GET /v1/stats` and `GET /metrics`.
 */
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { DEFAULT_MAX_ROUTES, DEFAULT_MAX_SERIES } from "./registry.ts";
import { createStore, exposeStore, mergeIntoStore, snapshotOf } from "./store.ts";
import type { MetricsDelta, Stats } from "./store.ts";

/**
 * How long a host that stops pushing keeps its `weft_config_version{host}` gauge: Linkerd
 * expires idle metrics after 10 minutes (`LINKERD2_PROXY_METRICS_RETAIN_IDLE`, linkerd2-proxy
 * `linkerd/app/src/env.rs`).
 */
export const DEFAULT_HOST_TTL_MS = 10 * 60_000;

/** Hosts whose config version is kept; our number, far above one mesh's routers and sidecars. */
export const DEFAULT_MAX_HOSTS = 10_000;

/** Options of `createAggregator`. */
export interface AggregatorOptions {
  /** The clock pushed window seconds are placed on. */
  clock?: Clock;
  /** Cap on series per metric family, summed over hosts (default `DEFAULT_MAX_SERIES`). */
  maxSeries?: number;
  /** Cap on routes with a window (default `DEFAULT_MAX_ROUTES`; the whole mesh's routes land here). */
  maxRoutes?: number;
  /** Cap on hosts with a config version gauge (default `DEFAULT_MAX_HOSTS`). */
  maxHosts?: number;
  /** How long a silent host's config version gauge stays (default `DEFAULT_HOST_TTL_MS`). */
  hostTtlMs?: number;
}

/** What `mergeDelta` made of a delta: merged (with a count of malformed entries skipped), or refused whole. */
export type MergeResult = { ok: true; ignored: number } | { ok: false; reason: string };

/** The mesh-wide sum of the deltas hosts push. */
export interface Aggregator {
  /**
   * Adds `delta`, pushed by the host `from` (e.g. `router/orders`, `sidecar/orders-7f9c`), to
   * the totals. Deltas are increments and are not deduplicated: a host sends each one once.
   */
  mergeDelta(delta: MetricsDelta, from: string): MergeResult;
  /** Success rate, RPS and latency quantiles per route over the last minute, mesh-wide. */
  snapshot(): Stats;
  /** The totals in the Prometheus text format 0.0.4; `weft_config_version` is labelled by `host`. */
  expose(): string;
}

/**
 * A new aggregator. Its state lives per isolate or per process of the control plane: a
 * control plane with several isolates answers from the pushes each one received.
 */
export function createAggregator(options: AggregatorOptions = {}): Aggregator {
  const clock = options.clock ?? systemClock;
  const store = createStore(clock, {
    maxSeries: options.maxSeries ?? DEFAULT_MAX_SERIES,
    maxRoutes: options.maxRoutes ?? DEFAULT_MAX_ROUTES,
  });
  const maxHosts = options.maxHosts ?? DEFAULT_MAX_HOSTS;
  const ttl = options.hostTtlMs ?? DEFAULT_HOST_TTL_MS;
  const seen = new Map<string, number>();

  const expireHosts = () => {
    const now = clock.now();
    // `seen` is in order of last push, so the expired hosts come first.
    for (const [host, at] of seen) {
      if (now - at < ttl) break;
      seen.delete(host);
      store.configVersions.delete(host);
    }
  };

  return {
    mergeDelta(delta, from) {
      if (typeof delta !== "object" || delta === null || delta.v !== 1) return { ok: false, reason: "not a metrics delta of format 1" };
      expireHosts();
      const ignored = mergeIntoStore(store, delta);
      const version = delta.configVersion;
      if (typeof version === "number" && Number.isFinite(version) && (seen.has(from) || seen.size < maxHosts)) {
        // Re-inserting keeps `seen` in order of last push.
        seen.delete(from);
        seen.set(from, clock.now());
        store.configVersions.set(from, version);
      }
      return { ok: true, ignored };
    },
    snapshot: () => snapshotOf(store),
    expose() {
      expireHosts();
      return exposeStore(store);
    },
  };
}
