/**
 * The `Stats` Durable Object: one instance (named `stats`) adds up the metric deltas that
 * routers and sidecars push, and answers `GET /v1/stats` and `GET /metrics` for the mesh.
 * Its totals live in memory only: stats are best-effort and cover the last minute, so an
 * evicted object simply starts counting again.
 */
import { DurableObject } from "cloudflare:workers";
import { createAggregator } from "../../../src/core/metrics/index.ts";
import type { Aggregator, MergeResult, MetricsDelta, Stats as MeshStats } from "../../../src/core/metrics/index.ts";
import { createHistory, type Edge, type ServiceSeries } from "./history.ts";
import { createSessions, type Session } from "./sessions.ts";
import { createTapHub, type TapPage } from "./tap-hub.ts";

/** The mesh-wide metrics aggregator. */
export class Stats extends DurableObject {
  readonly #aggregator: Aggregator = createAggregator();
  readonly #history = createHistory();
  readonly #taps = createTapHub();
  readonly #sessions = createSessions();

  /** Adds one pushed delta from host `from`. */
  async push(delta: MetricsDelta, from: string): Promise<MergeResult> {
    const result = this.#aggregator.mergeDelta(delta, from);
    if (result.ok) this.#history.add(delta.responses, Date.now());
    return result;
  }

  /** The dashboard's figures: the topology's edges over the last minute and, for `service`, per-second series. */
  async history(service?: string): Promise<{ edges: Edge[]; series?: ServiceSeries }> {
    const now = Date.now();
    return { edges: this.#history.edges(now), ...(service !== undefined && { series: this.#history.series(service, now) }) };
  }

  /** Tap events pushed by a data plane. */
  async tapPush(batch: unknown): Promise<{ accepted: number; ignored: number }> {
    return this.#taps.push(batch);
  }

  /** A tap session's events after `after`, held up to `waitMs` for new ones. */
  async tapRead(id: string, after: number, waitMs: number): Promise<TapPage> {
    return this.#taps.read(id, after, waitMs);
  }

  /** Drops a tap session's buffered events. */
  async tapClose(id: string): Promise<void> {
    this.#taps.close(id);
  }

  /** Starts a dashboard session for a credential of `kind`. */
  async sessionStart(kind: Session["kind"]): Promise<{ id: string; session: Session }> {
    return this.#sessions.start(kind, Date.now());
  }

  /** A live dashboard session, or undefined. */
  async sessionGet(id: string): Promise<Session | undefined> {
    return this.#sessions.get(id, Date.now());
  }

  /** Ends a dashboard session. */
  async sessionEnd(id: string): Promise<void> {
    this.#sessions.end(id);
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
