/**
 * The outbound stack: what a workload's calls to another service go through, level by level
 * as in Linkerd's `linkerd/app/outbound` (route → backend → endpoint), each level one
 * `stack(...)` that lists its layers outermost first. docs/architecture.md states the same order.
 */
import type { Clock, Random } from "../core/clock.ts";
import { durationMs, type Route } from "../core/config/index.ts";
import { deadline, propagateDeadline, timeout } from "../core/deadline/index.ts";
import { stack, withHeaders, type Fetch, type Layer } from "../core/fetch.ts";
import { metrics, type Registry } from "../core/metrics/index.ts";
import { ATTEMPT_HEADER, retry, type RetryBudget } from "../core/retry/index.ts";
import { createMirrorPool, fault, headerFilters, mirror, splitTo, type MirrorPool } from "../core/route/index.ts";
import { traceAttempt, type AttemptOptions } from "../core/trace/index.ts";
import { attachIdentity, type TokenSource } from "../identity/index.ts";

/** What the route level of one destination needs besides the route itself. */
export interface RouteLevel {
  /** The destination service the routes belong to (`dst_service`). */
  destination: string;
  registry: Registry;
  /** This workload's SPIFFE ID, the `src` label of its outbound metrics. */
  src?: string;
  /** The destination's retry budget for a route's retry config (shared by its routes). */
  budget: (retry: NonNullable<Route["retry"]>) => RetryBudget;
  /** The backend level of one backend service: its balancer over its endpoints. */
  backend: (service: string) => Fetch;
  clock: Clock;
  random: Random;
  /** Mirrored copies in flight, shared by the workload's routes (traffic tools, issue 16). */
  mirrors?: MirrorPool;
}

/** Without retries, every call is the first try: `weft-attempt: 1` (SPEC.md section 1). */
const firstAttempt: Layer = (next) => (request) => next(withHeaders(request, (headers) => headers.set(ATTEMPT_HEADER, "1")));

const msOf = (duration: string | undefined): number => (duration === undefined ? 0 : durationMs(duration));

/**
 * The route level: one route's stack, built once per route and snapshot.
 *
 *   metrics → deadline (caller's budget ∧ `timeouts.request`) → header filters → mirror
 *     → retry → fault injection → per-try timeout (`timeouts.backendRequest`) → split
 *     → backend level
 *
 * The backend level (`level.backend`) is the backend service's balancer (peak-EWMA P2C by
 * default) over its endpoint set; the set applies each endpoint's failure accrual, the
 * endpoint level's outermost layer, since a breaker's state belongs to the endpoint and
 * outlives config updates; `endpointStack` is the rest of the endpoint level.
 *
 * Metrics are outermost so a call counts once however many tries it took (Linkerd's route
 * stats) and sees the route's own 504s; retry sits inside the request deadline so all tries
 * fit it (Gateway API), and outside the per-try timeout and the split, so each try gets its
 * own timeout and its own backend pick. A timeout of "0s" or none is no limit there.
 */
export function routeStack(r: Route, level: RouteLevel): Fetch {
  const { clock, random } = level;
  const perTry = msOf(r.timeouts?.backendRequest);
  const retryConfig = r.retry !== undefined && r.retry.limit > 0 ? r.retry : undefined;
  return stack(
    splitTo(r.backends, level.backend, { random, route: r.name }),
    metrics({ registry: level.registry, direction: "outbound", dst_service: level.destination, route: r.name, clock, ...(level.src !== undefined && { src: level.src }) }),
    deadline({ timeout: msOf(r.timeouts?.request), clock }),
    headerFilters(r.filters),
    // Traffic tools (issue 16): mirror once per call; faults per try, so retries see them.
    ...trafficMirrors(r, level),
    retryConfig
      ? retry({
          limit: retryConfig.limit,
          on: retryConfig.on,
          budget: level.budget(retryConfig),
          backoff: { base: durationMs(retryConfig.backoff.base), max: durationMs(retryConfig.backoff.max) },
          clock,
          random,
          observe: {
            retry: () => level.registry.countRetry({ dst_service: level.destination }),
            budgetExhausted: () => level.registry.countRetryBudgetExhausted({ dst_service: level.destination }),
          },
        })
      : firstAttempt,
    ...trafficFaults(r, level),
    perTry > 0 && timeout(perTry, { clock }),
  );
}

const sharedMirrors = new WeakMap<RouteLevel, MirrorPool>();

/** The route's RequestMirror filters as layers (docs/traffic.md). */
function trafficMirrors(r: Route, level: RouteLevel): Layer[] {
  const layers: Layer[] = [];
  for (const filter of r.filters ?? []) {
    if (filter.type !== "RequestMirror") continue;
    const m = filter.requestMirror;
    let pool = level.mirrors ?? sharedMirrors.get(level);
    if (pool === undefined) sharedMirrors.set(level, (pool = createMirrorPool()));
    const share = m.fraction !== undefined ? m.fraction.numerator / m.fraction.denominator : (m.percent ?? 100) / 100;
    const labels = { dst_service: level.destination, route: r.name, mirror: m.backendRef.service };
    layers.push(
      mirror({
        service: m.backendRef.service,
        send: (request) => level.backend(m.backendRef.service)(request),
        share,
        ...(m.maxBodyBytes !== undefined && { maxBodyBytes: m.maxBodyBytes }),
        ...(m.timeout !== undefined && { timeoutMs: durationMs(m.timeout) }),
        pool,
        clock: level.clock,
        random: level.random,
        observe: (outcome) => level.registry.countMirror({ ...labels, outcome }),
      }),
    );
  }
  return layers;
}

/** The route's FaultInjection filters as layers (docs/traffic.md). */
function trafficFaults(r: Route, level: RouteLevel): Layer[] {
  const layers: Layer[] = [];
  for (const filter of r.filters ?? []) {
    if (filter.type !== "FaultInjection") continue;
    const f = filter.faultInjection;
    layers.push(
      fault({
        delay: f.delay && { ms: durationMs(f.delay.fixedDelay), percent: f.delay.percent },
        abort: f.abort,
        header: f.header,
        clock: level.clock,
        random: level.random,
        observe: (kind) => level.registry.countFault({ dst_service: level.destination, route: r.name, fault: kind }),
      }),
    );
  }
  return layers;
}

/** What the endpoint level needs. */
export interface EndpointLevel {
  /** The destination's audience for identity tokens (its service name). */
  audience: string;
  /** Outbound identity; without it calls go without `weft-identity`. */
  tokens?: TokenSource | undefined;
  clock: Clock;
  /** Tracing: a span per try (src/core/trace), when on. */
  trace?: AttemptOptions | undefined;
}

/**
 * The endpoint level below failure accrual: one endpoint's stack over the host's connection
 * to it.
 *
 *   try span (tracing) → identity (`weft-identity` for the destination's audience)
 *     → deadline propagation (`weft-timeout-ms`) → the network
 *
 * Innermost, so every try carries a token valid when it is sent and the budget left when it
 * leaves. The try span is the level's outermost layer: one per try, naming the endpoint,
 * and its id is the parent the next hop's context names.
 */
export function endpointStack(connect: Fetch, level: EndpointLevel): Fetch {
  return stack(
    connect,
    level.trace !== undefined && traceAttempt(level.trace),
    level.tokens !== undefined && attachIdentity({ tokens: level.tokens, audience: level.audience }),
    propagateDeadline({ clock: level.clock }),
  );
}
