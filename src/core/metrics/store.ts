/**
 * The state behind a registry and an aggregator: counter and histogram series with their
 * label sets, the per-second sliding windows behind `snapshot()`, the Prometheus exposition,
 * and the delta format hosts push to the control plane.
 */
import type { Clock } from "../clock.ts";
import { isErrorCode } from "../errors.ts";
import type { ErrorCode } from "../errors.ts";
import type { Classification } from "./classify.ts";
import { familyHeader, labelPairs, sample } from "./exposition.ts";
import { BUCKETS, LATENCY_BOUNDS_MS, quantile } from "./histogram.ts";

/** Which side of the mesh saw the call: `inbound` (a router/sidecar in front of its service) or `outbound`. */
export type Direction = "inbound" | "outbound";

/** The labels `snapshot()` groups by: one row of `weft stat` per direction, service and route. */
export interface RouteLabels {
  direction: Direction;
  dst_service: string;
  /** The route's name, or "" when the call matched none. */
  route: string;
}

/** The labels of `weft_request_total`: everything known before the response. */
export interface RequestLabels extends RouteLabels {
  /** The caller's identity (`spiffe://...`), or "" when unauthenticated or unknown. */
  src: string;
}

/** The labels of `weft_response_total` and `weft_response_latency_seconds`. */
export interface ResponseLabels extends RequestLabels {
  status_code: number;
  classification: Classification;
  error: ErrorCode | "";
}

/** The labels of `weft_retry_total` and `weft_retry_budget_exhausted_total`. */
export interface ServiceLabels {
  dst_service: string;
}

/** The labels of `weft_endpoint_ejections_total`. */
export interface EndpointLabels {
  dst_service: string;
  /** The endpoint's id from the config (SPEC.md section 3). */
  endpoint: string;
}

/**
 * The labels of `weft_mirror_total` (issue 16): one route's mirrored copies by what became of
 * them: `completed` (the mirror answered, any status below 500), `failed` (5xx, error or its
 * timeout), `dropped-in-flight` (too many copies already in flight), `dropped-body` (a body
 * over the filter's limit, or of unknown length).
 */
export interface MirrorLabels {
  dst_service: string;
  route: string;
  /** The service the copies go to. */
  mirror: string;
  outcome: "completed" | "failed" | "dropped-in-flight" | "dropped-body";
}

/** The labels of `weft_fault_injected_total` (issue 16): faults a route's filter injected. */
export interface FaultLabels {
  dst_service: string;
  route: string;
  fault: "delay" | "abort";
}

/** Golden metrics of one direction, service and route over the last minute. */
export interface RouteStats extends RouteLabels {
  /** Calls that completed (answered or failed) in the window. */
  requests: number;
  successes: number;
  failures: number;
  /** `successes / requests`, or null when there were no calls. */
  successRate: number | null;
  /** Completed calls per second over the window (or over the time since start, if shorter). */
  rps: number;
  /** Latency quantiles in ms, estimated from histogram buckets; null when there were no calls. */
  latencyMs: { p50: number | null; p95: number | null; p99: number | null };
}

/** What `snapshot()` answers: every route with calls in the last `windowSeconds`. */
export interface Stats {
  windowSeconds: number;
  routes: RouteStats[];
}

/** A count since the last delta, for one label set. */
export interface CountDelta<L> {
  labels: L;
  count: number;
}

/** Non-zero latency buckets as `[bucket index, count]` pairs (index into `LATENCY_BOUNDS_MS`, then `+Inf`). */
export type SparseBuckets = [index: number, count: number][];

/** Responses since the last delta for one label set, with their latency histogram. */
export interface ResponseDelta {
  labels: ResponseLabels;
  count: number;
  sumMs: number;
  buckets: SparseBuckets;
}

/** One second of one route's window: `ago` whole seconds before the delta was taken (0 = that second). */
export interface SecondDelta {
  ago: number;
  requests: number;
  successes: number;
  buckets: SparseBuckets;
}

/** The window data of one route since the last delta, for seconds still inside the window. */
export interface WindowDelta {
  labels: RouteLabels;
  seconds: SecondDelta[];
}

/**
 * Everything a registry counted since its previous delta, as plain JSON, for a host to push to
 * the control plane. Counts are increments, so the receiver adds them; window seconds are
 * relative (`ago`), since hosts' clocks are not comparable.
 */
export interface MetricsDelta {
  /** The format of this object; a receiver refuses others. */
  v: 1;
  requests: CountDelta<RequestLabels>[];
  responses: ResponseDelta[];
  retries: CountDelta<ServiceLabels>[];
  retryBudgetExhausted: CountDelta<ServiceLabels>[];
  ejections: CountDelta<EndpointLabels>[];
  /** The sender's current config version, when it has one. */
  configVersion?: number;
  window: WindowDelta[];
  /** Observations the sender dropped at its series caps, per metric name. */
  dropped: CountDelta<{ metric: string }>[];
}

/** Seconds of history behind `snapshot()`: Linkerd's golden metrics use a 1-minute window (`linkerd viz stat -t 1m`). */
export const WINDOW_SECONDS = 60;

/** Caps on what a store keeps, so memory stays bounded whatever the label values. */
export interface Limits {
  /** Series per metric family; observations for new label sets beyond it are dropped and counted. */
  maxSeries: number;
  /** Routes (direction, service, route) with a sliding window; an idle one is reused first. */
  maxRoutes: number;
}

const NAMES = {
  request: "weft_request_total",
  response: "weft_response_total",
  latency: "weft_response_latency_seconds",
  retry: "weft_retry_total",
  budget: "weft_retry_budget_exhausted_total",
  ejection: "weft_endpoint_ejections_total",
  mirror: "weft_mirror_total",
  fault: "weft_fault_injected_total",
  config: "weft_config_version",
  dropped: "weft_metrics_dropped_total",
} as const;

/** The metric families whose series are capped, by the name their drops are counted under. */
export type CappedMetric =
  | typeof NAMES.request
  | typeof NAMES.response
  | typeof NAMES.retry
  | typeof NAMES.budget
  | typeof NAMES.ejection
  | typeof NAMES.mirror
  | typeof NAMES.fault
  | "window";

const CAPPED: readonly CappedMetric[] = [NAMES.request, NAMES.response, NAMES.retry, NAMES.budget, NAMES.ejection, NAMES.mirror, NAMES.fault, "window"];

/** A counter series: its labels, its label text for exposition, its value and what was last sent. */
export interface CounterSeries<L> {
  labels: L;
  pairs: string;
  value: number;
  sent: number;
}

/**
 * A response series: `weft_response_total` is its count, `weft_response_latency_seconds` its
 * histogram (kept in milliseconds: `sum` and the buckets of `LATENCY_BOUNDS_MS`).
 */
export interface ResponseSeries {
  labels: ResponseLabels;
  pairs: string;
  count: number;
  sum: number;
  buckets: Float64Array;
  sentCount: number;
  sentSum: number;
  sentBuckets: Float64Array | undefined;
}

/** One second of a route's window. */
export interface Slot {
  sec: number;
  requests: number;
  successes: number;
  buckets: Float64Array;
  sentRequests: number;
  sentSuccesses: number;
  sentBuckets: Float64Array | undefined;
}

/** A route's ring of per-second slots; `live` turns false when the store evicts it. */
export interface RouteWindow {
  labels: RouteLabels;
  slots: (Slot | undefined)[];
  /** The newest second recorded, for finding idle windows to evict. */
  last: number;
  live: boolean;
}

/** The state shared by a registry and an aggregator. */
export interface Store {
  clock: Clock;
  /** When the store began, on `clock`, so the first minute's RPS divides by the time elapsed. */
  start: number;
  limits: Limits;
  requests: Map<string, CounterSeries<RequestLabels>>;
  responses: Map<string, ResponseSeries>;
  retries: Map<string, CounterSeries<ServiceLabels>>;
  budget: Map<string, CounterSeries<ServiceLabels>>;
  ejections: Map<string, CounterSeries<EndpointLabels>>;
  /** Traffic tools' counters (issue 16): exposed locally, not pushed to the control plane. */
  mirrors: Map<string, CounterSeries<MirrorLabels>>;
  faults: Map<string, CounterSeries<FaultLabels>>;
  windows: Map<string, RouteWindow>;
  /** Config versions by host label ("" for the store's own, unlabelled gauge). */
  configVersions: Map<string, number>;
  dropped: Map<CappedMetric, { value: number; sent: number }>;
  /** The second of the last full scan for an idle window, so a full table is scanned at most once a second. */
  evictScan: number;
}

/** A new, empty store. */
export function createStore(clock: Clock, limits: Limits): Store {
  return {
    clock,
    start: clock.now(),
    limits,
    requests: new Map(),
    responses: new Map(),
    retries: new Map(),
    budget: new Map(),
    ejections: new Map(),
    mirrors: new Map(),
    faults: new Map(),
    windows: new Map(),
    configVersions: new Map(),
    dropped: new Map(CAPPED.map((m) => [m, { value: 0, sent: 0 }])),
    evictScan: -Infinity,
  };
}

/** A map key for a label set; only built when a series is looked up by labels, not per request. */
export function keyOf(...values: (string | number)[]): string {
  return JSON.stringify(values);
}

/** Counts `count` observations lost to a cap on `metric`. */
export function drop(store: Store, metric: CappedMetric, count = 1): void {
  store.dropped.get(metric)!.value += count;
}

function counter<L>(store: Store, map: Map<string, CounterSeries<L>>, key: string, labels: L, pairs: () => string): CounterSeries<L> | undefined {
  let series = map.get(key);
  if (series === undefined) {
    if (map.size >= store.limits.maxSeries) return undefined;
    series = { labels, pairs: pairs(), value: 0, sent: 0 };
    map.set(key, series);
  }
  return series;
}

/** The `weft_request_total` series for `labels`, or undefined when the family is full. */
export function requestSeries(store: Store, labels: RequestLabels): CounterSeries<RequestLabels> | undefined {
  const { direction, src, dst_service, route } = labels;
  return counter(store, store.requests, keyOf(direction, src, dst_service, route), { direction, src, dst_service, route }, () =>
    labelPairs([
      ["direction", direction],
      ["src", src],
      ["dst_service", dst_service],
      ["route", route],
    ]),
  );
}

/** The response series for `labels`, or undefined when the family is full. */
export function responseSeries(store: Store, labels: ResponseLabels): ResponseSeries | undefined {
  const { direction, src, dst_service, route, status_code, classification, error } = labels;
  const key = keyOf(direction, src, dst_service, route, status_code, classification, error);
  let series = store.responses.get(key);
  if (series === undefined) {
    if (store.responses.size >= store.limits.maxSeries) return undefined;
    const pairs = labelPairs([
      ["direction", direction],
      ["src", src],
      ["dst_service", dst_service],
      ["route", route],
      ["status_code", String(status_code)],
      ["classification", classification],
      ["error", error],
    ]);
    series = {
      labels: { direction, src, dst_service, route, status_code, classification, error },
      pairs,
      count: 0,
      sum: 0,
      buckets: new Float64Array(BUCKETS),
      sentCount: 0,
      sentSum: 0,
      sentBuckets: undefined,
    };
    store.responses.set(key, series);
  }
  return series;
}

/** The `weft_retry_total` series for `labels`, or undefined when the family is full. */
export function retrySeries(store: Store, labels: ServiceLabels): CounterSeries<ServiceLabels> | undefined {
  return serviceCounter(store, store.retries, labels);
}

/** The `weft_retry_budget_exhausted_total` series for `labels`, or undefined when the family is full. */
export function budgetSeries(store: Store, labels: ServiceLabels): CounterSeries<ServiceLabels> | undefined {
  return serviceCounter(store, store.budget, labels);
}

function serviceCounter(store: Store, map: Map<string, CounterSeries<ServiceLabels>>, { dst_service }: ServiceLabels) {
  return counter(store, map, keyOf(dst_service), { dst_service }, () => labelPairs([["dst_service", dst_service]]));
}

/** The `weft_endpoint_ejections_total` series for `labels`, or undefined when the family is full. */
export function ejectionSeries(store: Store, labels: EndpointLabels): CounterSeries<EndpointLabels> | undefined {
  const { dst_service, endpoint } = labels;
  return counter(store, store.ejections, keyOf(dst_service, endpoint), { dst_service, endpoint }, () =>
    labelPairs([
      ["dst_service", dst_service],
      ["endpoint", endpoint],
    ]),
  );
}

/** The `weft_mirror_total` series for `labels`, or undefined when the family is full. */
export function mirrorSeries(store: Store, labels: MirrorLabels): CounterSeries<MirrorLabels> | undefined {
  const { dst_service, route, mirror, outcome } = labels;
  return counter(store, store.mirrors, keyOf(dst_service, route, mirror, outcome), { dst_service, route, mirror, outcome }, () =>
    labelPairs([
      ["dst_service", dst_service],
      ["route", route],
      ["mirror", mirror],
      ["outcome", outcome],
    ]),
  );
}

/** The `weft_fault_injected_total` series for `labels`, or undefined when the family is full. */
export function faultSeries(store: Store, labels: FaultLabels): CounterSeries<FaultLabels> | undefined {
  const { dst_service, route, fault } = labels;
  return counter(store, store.faults, keyOf(dst_service, route, fault), { dst_service, route, fault }, () =>
    labelPairs([
      ["dst_service", dst_service],
      ["route", route],
      ["fault", fault],
    ]),
  );
}

/** The whole second `ms` falls in. */
export function secondOf(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * The sliding window of the route `labels` (key `keyOf(direction, dst_service, route)`); when
 * the table is full an idle window (no calls for a whole window) is evicted to make room, and
 * without one this answers undefined.
 */
export function routeWindow(store: Store, key: string, labels: RouteLabels): RouteWindow | undefined {
  let window = store.windows.get(key);
  if (window !== undefined) return window;
  if (store.windows.size >= store.limits.maxRoutes && !evictIdle(store)) return undefined;
  const { direction, dst_service, route } = labels;
  window = { labels: { direction, dst_service, route }, slots: new Array(WINDOW_SECONDS), last: -Infinity, live: true };
  store.windows.set(key, window);
  return window;
}

function evictIdle(store: Store): boolean {
  const now = secondOf(store.clock.now());
  if (store.evictScan === now) return false;
  store.evictScan = now;
  for (const [key, window] of store.windows) {
    if (window.last <= now - WINDOW_SECONDS) {
      window.live = false;
      store.windows.delete(key);
      return true;
    }
  }
  return false;
}

/** The slot for second `sec` of `window`, recycling the ring position of an expired second. */
export function slotFor(window: RouteWindow, sec: number): Slot | undefined {
  const index = ((sec % WINDOW_SECONDS) + WINDOW_SECONDS) % WINDOW_SECONDS;
  let slot = window.slots[index];
  if (slot === undefined) {
    slot = { sec, requests: 0, successes: 0, buckets: new Float64Array(BUCKETS), sentRequests: 0, sentSuccesses: 0, sentBuckets: undefined };
    window.slots[index] = slot;
  } else if (slot.sec !== sec) {
    // The position holds a newer second only if `sec` is already out of the window.
    if (slot.sec > sec) return undefined;
    slot.sec = sec;
    slot.requests = 0;
    slot.successes = 0;
    slot.buckets.fill(0);
    slot.sentRequests = 0;
    slot.sentSuccesses = 0;
    slot.sentBuckets?.fill(0);
  }
  if (sec > window.last) window.last = sec;
  return slot;
}

/** Golden metrics per route over the last `WINDOW_SECONDS`, routes without calls left out. */
export function snapshotOf(store: Store): Stats {
  const now = store.clock.now();
  const nowSec = secondOf(now);
  const oldest = nowSec - WINDOW_SECONDS + 1;
  // The window runs from the start of its oldest second to now; a store younger than that
  // divides by its age, and never by less than a second.
  const seconds = Math.max(1, (now - Math.max(store.start, oldest * 1000)) / 1000);
  const routes: RouteStats[] = [];
  const buckets = new Float64Array(BUCKETS);
  for (const window of store.windows.values()) {
    let requests = 0;
    let successes = 0;
    buckets.fill(0);
    for (const slot of window.slots) {
      if (slot === undefined || slot.sec < oldest || slot.sec > nowSec) continue;
      requests += slot.requests;
      successes += slot.successes;
      for (let i = 0; i < BUCKETS; i++) buckets[i]! += slot.buckets[i]!;
    }
    if (requests === 0) continue;
    routes.push({
      ...window.labels,
      requests,
      successes,
      failures: requests - successes,
      successRate: successes / requests,
      rps: requests / seconds,
      latencyMs: { p50: quantile(0.5, buckets) ?? null, p95: quantile(0.95, buckets) ?? null, p99: quantile(0.99, buckets) ?? null },
    });
  }
  routes.sort((a, b) => compare(a.direction, b.direction) || compare(a.dst_service, b.dst_service) || compare(a.route, b.route));
  return { windowSeconds: WINDOW_SECONDS, routes };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const HELP = {
  request: "Requests received (inbound) or sent (outbound) by the mesh, counted when the request starts.",
  response: "Calls completed, counted at response headers (or at the error), with their status and classification.",
  latency: "Time from the request to its response headers (or error), in seconds.",
  retry: "Retries sent to a service: attempts after the first.",
  budget: "Retries not sent because the service's retry budget was exhausted.",
  ejection: "Times failure accrual ejected an endpoint from load balancing.",
  mirror: "Copies of requests a route's RequestMirror filter made, by what became of them.",
  fault: "Delays and aborts a route's FaultInjection filter injected.",
  config: "Version of the config snapshot in use.",
  dropped: "Observations not recorded because a series cap was reached, by metric (window: the last-minute stats).",
};

// Prometheus and OpenTelemetry name base units (seconds), and promtool refuses `_ms`; Weft
// counts in milliseconds and converts here, where the text is written.
const MS_PER_SECOND = 1000;
const LE = [...LATENCY_BOUNDS_MS.map((ms) => String(ms / MS_PER_SECOND)), "+Inf"].map((bound) => `le="${bound}"`);

/** The store in the Prometheus text format 0.0.4, every family with HELP and TYPE. */
export function exposeStore(store: Store): string {
  const out: string[] = [];
  counterFamily(out, NAMES.request, HELP.request, store.requests.values());
  out.push(familyHeader(NAMES.response, "counter", HELP.response));
  for (const s of store.responses.values()) out.push(sample(NAMES.response, s.pairs, s.count));
  out.push(familyHeader(NAMES.latency, "histogram", HELP.latency));
  for (const s of store.responses.values()) {
    const prefix = s.pairs === "" ? "" : `${s.pairs},`;
    let cumulative = 0;
    for (let i = 0; i < BUCKETS; i++) {
      cumulative += s.buckets[i]!;
      out.push(sample(`${NAMES.latency}_bucket`, prefix + LE[i]!, cumulative));
    }
    out.push(sample(`${NAMES.latency}_sum`, s.pairs, s.sum / MS_PER_SECOND));
    out.push(sample(`${NAMES.latency}_count`, s.pairs, s.count));
  }
  counterFamily(out, NAMES.retry, HELP.retry, store.retries.values());
  counterFamily(out, NAMES.budget, HELP.budget, store.budget.values());
  counterFamily(out, NAMES.ejection, HELP.ejection, store.ejections.values());
  counterFamily(out, NAMES.mirror, HELP.mirror, store.mirrors.values());
  counterFamily(out, NAMES.fault, HELP.fault, store.faults.values());
  out.push(familyHeader(NAMES.config, "gauge", HELP.config));
  for (const [host, version] of store.configVersions) out.push(sample(NAMES.config, host === "" ? "" : labelPairs([["host", host]]), version));
  out.push(familyHeader(NAMES.dropped, "counter", HELP.dropped));
  for (const [metric, { value }] of store.dropped) out.push(sample(NAMES.dropped, labelPairs([["metric", metric]]), value));
  return out.join("");
}

function counterFamily(out: string[], name: string, help: string, series: Iterable<CounterSeries<unknown>>): void {
  out.push(familyHeader(name, "counter", help));
  for (const s of series) out.push(sample(name, s.pairs, s.value));
}

function sparse(now: Float64Array, sent: Float64Array | undefined): SparseBuckets {
  const pairs: SparseBuckets = [];
  for (let i = 0; i < BUCKETS; i++) {
    const n = now[i]! - (sent === undefined ? 0 : sent[i]!);
    if (n !== 0) pairs.push([i, n]);
  }
  return pairs;
}

function takeCounters<L>(map: Map<string, CounterSeries<L>>): CountDelta<L>[] {
  const deltas: CountDelta<L>[] = [];
  for (const s of map.values()) {
    if (s.value === s.sent) continue;
    deltas.push({ labels: { ...s.labels }, count: s.value - s.sent });
    s.sent = s.value;
  }
  return deltas;
}

/** Everything counted since the previous call, marking it sent. */
export function takeStoreDelta(store: Store): MetricsDelta {
  const responses: ResponseDelta[] = [];
  for (const s of store.responses.values()) {
    if (s.count === s.sentCount) continue;
    responses.push({ labels: { ...s.labels }, count: s.count - s.sentCount, sumMs: s.sum - s.sentSum, buckets: sparse(s.buckets, s.sentBuckets) });
    s.sentCount = s.count;
    s.sentSum = s.sum;
    if (s.sentBuckets === undefined) s.sentBuckets = new Float64Array(BUCKETS);
    s.sentBuckets.set(s.buckets);
  }
  const nowSec = secondOf(store.clock.now());
  const window: WindowDelta[] = [];
  for (const w of store.windows.values()) {
    const seconds: SecondDelta[] = [];
    for (const slot of w.slots) {
      if (slot === undefined || slot.sec <= nowSec - WINDOW_SECONDS || slot.sec > nowSec) continue;
      if (slot.requests === slot.sentRequests) continue;
      seconds.push({
        ago: nowSec - slot.sec,
        requests: slot.requests - slot.sentRequests,
        successes: slot.successes - slot.sentSuccesses,
        buckets: sparse(slot.buckets, slot.sentBuckets),
      });
      slot.sentRequests = slot.requests;
      slot.sentSuccesses = slot.successes;
      if (slot.sentBuckets === undefined) slot.sentBuckets = new Float64Array(BUCKETS);
      slot.sentBuckets.set(slot.buckets);
    }
    if (seconds.length > 0) window.push({ labels: { ...w.labels }, seconds: seconds.sort((a, b) => b.ago - a.ago) });
  }
  const dropped: CountDelta<{ metric: string }>[] = [];
  for (const [metric, d] of store.dropped) {
    if (d.value === d.sent) continue;
    dropped.push({ labels: { metric }, count: d.value - d.sent });
    d.sent = d.value;
  }
  const delta: MetricsDelta = {
    v: 1,
    requests: takeCounters(store.requests),
    responses,
    retries: takeCounters(store.retries),
    retryBudgetExhausted: takeCounters(store.budget),
    ejections: takeCounters(store.ejections),
    window,
    dropped,
  };
  const version = store.configVersions.get("");
  if (version !== undefined) delta.configVersion = version;
  return delta;
}

// Checks on a delta that arrived over the network: a receiver keeps what is well-formed and
// counts the rest, so one bad entry cannot poison the aggregate.

function isCount(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

function isText(s: unknown): s is string {
  return typeof s === "string" && s.length <= 1024;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function asRoute(value: unknown): RouteLabels | undefined {
  if (!isObject(value)) return undefined;
  const { direction, dst_service, route } = value;
  if ((direction !== "inbound" && direction !== "outbound") || !isText(dst_service) || !isText(route)) return undefined;
  return { direction, dst_service, route };
}

function asRequest(value: unknown): RequestLabels | undefined {
  const route = asRoute(value);
  if (route === undefined || !isText((value as Record<string, unknown>).src)) return undefined;
  return { ...route, src: (value as { src: string }).src };
}

function asResponse(value: unknown): ResponseLabels | undefined {
  const request = asRequest(value);
  if (request === undefined) return undefined;
  const { status_code, classification, error } = value as Record<string, unknown>;
  if (!Number.isInteger(status_code) || (status_code as number) < 100 || (status_code as number) > 999) return undefined;
  if (classification !== "success" && classification !== "failure") return undefined;
  if (error !== "" && !isErrorCode(error)) return undefined;
  return { ...request, status_code: status_code as number, classification, error };
}

function asService(value: unknown): ServiceLabels | undefined {
  return isObject(value) && isText(value.dst_service) ? { dst_service: value.dst_service } : undefined;
}

function asEndpoint(value: unknown): EndpointLabels | undefined {
  return isObject(value) && isText(value.dst_service) && isText(value.endpoint) ? { dst_service: value.dst_service, endpoint: value.endpoint } : undefined;
}

function asBuckets(value: unknown): SparseBuckets | undefined {
  if (!Array.isArray(value) || value.length > BUCKETS) return undefined;
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2 || !Number.isInteger(pair[0]) || pair[0] < 0 || pair[0] >= BUCKETS || !isCount(pair[1])) return undefined;
  }
  return value as SparseBuckets;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/**
 * Adds `delta` to the store, placing its window seconds relative to the store's clock. Answers
 * how many entries were malformed and skipped; the caller has checked `v`.
 */
export function mergeIntoStore(store: Store, delta: MetricsDelta): number {
  let ignored = 0;
  const counts = <L>(entries: unknown, labelsOf: (v: unknown) => L | undefined, seriesOf: (l: L) => CounterSeries<L> | undefined, metric: CappedMetric) => {
    for (const entry of list(entries)) {
      const labels = isObject(entry) ? labelsOf(entry.labels) : undefined;
      const count = isObject(entry) ? entry.count : undefined;
      if (labels === undefined || !isCount(count)) {
        ignored++;
        continue;
      }
      const series = seriesOf(labels);
      if (series === undefined) drop(store, metric, count);
      else series.value += count;
    }
  };
  counts(delta.requests, asRequest, (l) => requestSeries(store, l), NAMES.request);
  counts(delta.retries, asService, (l) => retrySeries(store, l), NAMES.retry);
  counts(delta.retryBudgetExhausted, asService, (l) => budgetSeries(store, l), NAMES.budget);
  counts(delta.ejections, asEndpoint, (l) => ejectionSeries(store, l), NAMES.ejection);

  for (const entry of list(delta.responses)) {
    const labels = isObject(entry) ? asResponse(entry.labels) : undefined;
    const buckets = isObject(entry) ? asBuckets(entry.buckets) : undefined;
    const { count, sumMs } = isObject(entry) ? entry : {};
    if (labels === undefined || buckets === undefined || !isCount(count) || typeof sumMs !== "number" || !(sumMs >= 0 && sumMs < Infinity)) {
      ignored++;
      continue;
    }
    const series = responseSeries(store, labels);
    if (series === undefined) {
      drop(store, NAMES.response, count);
      continue;
    }
    series.count += count;
    series.sum += sumMs;
    for (const [i, n] of buckets) series.buckets[i]! += n;
  }

  const nowSec = secondOf(store.clock.now());
  for (const entry of list(delta.window)) {
    const labels = isObject(entry) ? asRoute(entry.labels) : undefined;
    if (labels === undefined || !isObject(entry)) {
      ignored++;
      continue;
    }
    const window = routeWindow(store, keyOf(labels.direction, labels.dst_service, labels.route), labels);
    for (const second of list(entry.seconds)) {
      const buckets = isObject(second) ? asBuckets(second.buckets) : undefined;
      if (!isObject(second) || buckets === undefined || !isCount(second.ago) || !isCount(second.requests) || !isCount(second.successes) || second.successes > second.requests) {
        ignored++;
        continue;
      }
      // Seconds that have left the window by the time they arrive no longer count.
      if (second.ago >= WINDOW_SECONDS) continue;
      if (window === undefined) {
        drop(store, "window", second.requests);
        continue;
      }
      const slot = slotFor(window, nowSec - second.ago);
      if (slot === undefined) continue;
      slot.requests += second.requests;
      slot.successes += second.successes;
      for (const [i, n] of buckets) slot.buckets[i]! += n;
    }
  }

  for (const entry of list(delta.dropped)) {
    const metric = isObject(entry) && isObject(entry.labels) ? entry.labels.metric : undefined;
    if (!CAPPED.includes(metric as CappedMetric) || !isObject(entry) || !isCount(entry.count)) {
      ignored++;
      continue;
    }
    drop(store, metric as CappedMetric, entry.count);
  }
  return ignored;
}
