/**
 * The `Stats` Durable Object: one instance (named `stats`) adds up the metric deltas that
 * routers and sidecars push, and answers `GET /v1/stats` and `GET /metrics` for the mesh.
 * Its totals live in memory only: stats are best-effort and cover the last minute, so an
 * evicted object simply starts counting again.
 */
import { DurableObject } from "cloudflare:workers";
import { createAggregator } from "../../../src/core/metrics/index.ts";
import type { Aggregator, MergeResult, MetricsDelta, Stats as MeshStats } from "../../../src/core/metrics/index.ts";

/** The mesh-wide metrics aggregator. */
export class Stats extends DurableObject {
  readonly #aggregator: Aggregator = createAggregator();

  /** Adds one pushed delta from host `from`. */
  async push(delta: MetricsDelta, from: string): Promise<MergeResult> {
    return this.#aggregator.mergeDelta(delta, from);
  }

  /** Success rate, RPS and latency quantiles per service and route over the last minute. */
  async stats(): Promise<MeshStats> {
    return this.#aggregator.snapshot();
  }

  /** The same totals in the Prometheus text format. */
  async expose(): Promise<string> {
    return this.#aggregator.expose();
  }
}
