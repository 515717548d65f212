/**
 * The registry a host keeps its golden metrics in: cheap recording on the request path,
 * `/metrics` exposition, last-minute stats, and deltas to push to the control plane.
 */
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import type { Outcome } from "./classify.ts";
import { bucketIndex } from "./histogram.ts";
import {
  budgetSeries,
  createStore,
  drop,
  ejectionSeries,
  exposeStore,
  faultSeries,
  keyOf,
  mirrorSeries,
  requestSeries,
  responseSeries,
  retrySeries,
  routeWindow,
  secondOf,
  slotFor,
  snapshotOf,
  takeStoreDelta,
} from "./store.ts";
import type { CounterSeries, EndpointLabels, FaultLabels, MetricsDelta, MirrorLabels, RequestLabels, ResponseSeries, RouteWindow, ServiceLabels, Stats, Store } from "./store.ts";

/**
 * Series kept per metric family before new label sets are dropped (and counted in
 * `weft_metrics_dropped_total`). Our number: Linkerd caps nothing and instead expires series
 * idle for 10 minutes (`LINKERD2_PROXY_METRICS_RETAIN_IDLE`); a Worker isolate has 128 MB, so
 * we bound memory instead. A response series is about 0.7 KB, so 2,000 is about 1.4 MB.
 */
export const DEFAULT_MAX_SERIES = 2_000;

/**
 * Routes (direction, service, route) with a one-minute window; when full, a route idle for a
 * minute gives up its place. Our number: a busy window is about 30 KB (60 one-second slots of
 * 26 buckets, plus what was last sent), so 200 is about 6 MB at worst.
 */
export const DEFAULT_MAX_ROUTES = 200;

/** Options of `createRegistry`. */
export interface RegistryOptions {
  /** The clock windows are kept on; the metrics layer measures latency on it too by default. */
  clock?: Clock;
  /** Cap on series per metric family (default `DEFAULT_MAX_SERIES`). */
  maxSeries?: number;
  /** Cap on routes with a window (default `DEFAULT_MAX_ROUTES`). */
  maxRoutes?: number;
}

/**
 * The recording handle of one (direction, src, dst_service, route): it holds its series, so
 * recording through it builds no label keys. The metrics layer keeps one per caller.
 */
export interface SeriesHandle {
  /** Counts a request in `weft_request_total`, when it starts. */
  request(): void;
  /** Records a completed call: `weft_response_total`, the latency histogram and the window. */
  response(outcome: Outcome, latencyMs: number): void;
}

/** A host's golden metrics (SPEC.md section 7). */
export interface Registry {
  /** The clock the registry's windows follow. */
  readonly clock: Clock;
  /** The recording handle for `labels`; cache it where the labels are fixed. */
  series(labels: RequestLabels): SeriesHandle;
  /** Counts one request (a shortcut for `series(labels).request()`). */
  countRequest(labels: RequestLabels): void;
  /** Records one completed call (a shortcut for `series(labels).response(...)`). */
  recordResponse(labels: RequestLabels, outcome: Outcome, latencyMs: number): void;
  /** Counts `count` retries (attempts after the first) to a service. */
  countRetry(labels: ServiceLabels, count?: number): void;
  /** Counts a retry that the retry budget refused. */
  countRetryBudgetExhausted(labels: ServiceLabels): void;
  /** Counts an ejection of an endpoint by failure accrual. */
  countEjection(labels: EndpointLabels): void;
  /** Counts a mirrored copy by its outcome (`weft_mirror_total`). */
  countMirror(labels: MirrorLabels): void;
  /** Counts an injected fault (`weft_fault_injected_total`). */
  countFault(labels: FaultLabels): void;
  /** Sets `weft_config_version` to the snapshot version in use. */
  setConfigVersion(version: number): void;
  /** Every metric in the Prometheus text format 0.0.4, for `GET /metrics`. */
  expose(): string;
  /** Success rate, RPS and latency quantiles per route over the last minute. */
  snapshot(): Stats;
  /**
   * Everything counted since the previous `takeDelta()` (or since creation), as plain JSON to
   * push to the control plane; taking it marks it sent. A push that fails loses that delta
   * (best effort): the local exposition is unaffected.
   */
  takeDelta(): MetricsDelta;
}

/**
 * A new registry. Its state lives per isolate (Worker) or per process (sidecar): each isolate
 * counts only what it served, and the control plane adds their deltas up.
 */
export function createRegistry(options: RegistryOptions = {}): Registry {
  const clock = options.clock ?? systemClock;
  const store = createStore(clock, {
    maxSeries: options.maxSeries ?? DEFAULT_MAX_SERIES,
    maxRoutes: options.maxRoutes ?? DEFAULT_MAX_ROUTES,
  });
  const handles = new Map<string, SeriesHandle>();

  const series = (labels: RequestLabels): SeriesHandle => {
    const key = keyOf(labels.direction, labels.src, labels.dst_service, labels.route);
    let handle = handles.get(key);
    if (handle === undefined) {
      handle = createHandle(store, labels);
      // Past the cap the handle only feeds the window, so it is not worth keeping.
      if (handles.size < store.limits.maxSeries) handles.set(key, handle);
    }
    return handle;
  };

  const add = <L>(series: CounterSeries<L> | undefined, metric: Parameters<typeof drop>[1], count: number) => {
    if (series === undefined) drop(store, metric, count);
    else series.value += count;
  };

  return {
    clock,
    series,
    countRequest: (labels) => series(labels).request(),
    recordResponse: (labels, outcome, latencyMs) => series(labels).response(outcome, latencyMs),
    countRetry: (labels, count = 1) => add(retrySeries(store, labels), "weft_retry_total", count),
    countRetryBudgetExhausted: (labels) => add(budgetSeries(store, labels), "weft_retry_budget_exhausted_total", 1),
    countEjection: (labels) => add(ejectionSeries(store, labels), "weft_endpoint_ejections_total", 1),
    countMirror: (labels) => add(mirrorSeries(store, labels), "weft_mirror_total", 1),
    countFault: (labels) => add(faultSeries(store, labels), "weft_fault_injected_total", 1),
    setConfigVersion(version) {
      store.configVersions.set("", version);
    },
    expose: () => exposeStore(store),
    snapshot: () => snapshotOf(store),
    takeDelta: () => takeStoreDelta(store),
  };
}

function createHandle(store: Store, labels: RequestLabels): SeriesHandle {
  const { direction, src, dst_service, route } = labels;
  // Resolved on first use, so a handle that only records responses adds no request series.
  let request: CounterSeries<RequestLabels> | null | undefined;
  const windowKey = keyOf(direction, dst_service, route);
  let window: RouteWindow | undefined;
  // Response series by status and classification (`status * 2 + failed`), for calls without
  // an error code, and per error code otherwise; null marks a label set dropped at the cap.
  const plain = new Map<number, ResponseSeries | null>();
  const errors = new Map<string, Map<number, ResponseSeries | null>>();

  return {
    request() {
      if (request === undefined) request = requestSeries(store, labels) ?? null;
      if (request === null) drop(store, "weft_request_total");
      else request.value++;
    },
    response(outcome, latencyMs) {
      if (!(latencyMs >= 0)) latencyMs = 0;
      const failed = outcome.classification === "failure";
      const code = outcome.status_code * 2 + (failed ? 1 : 0);
      let byStatus = plain;
      if (outcome.error !== "") {
        byStatus = errors.get(outcome.error) ?? new Map();
        if (byStatus.size === 0) errors.set(outcome.error, byStatus);
      }
      let series = byStatus.get(code);
      if (series === undefined) {
        series = responseSeries(store, { direction, src, dst_service, route, ...outcome }) ?? null;
        byStatus.set(code, series);
      }
      const bucket = bucketIndex(latencyMs);
      if (series === null) drop(store, "weft_response_total");
      else {
        series.count++;
        series.sum += latencyMs;
        series.buckets[bucket]!++;
      }
      if (window === undefined || !window.live) window = routeWindow(store, windowKey, { direction, dst_service, route });
      const slot = window && slotFor(window, secondOf(store.clock.now()));
      if (slot === undefined) return drop(store, "window");
      slot.requests++;
      if (!failed) slot.successes++;
      slot.buckets[bucket]!++;
    },
  };
}
