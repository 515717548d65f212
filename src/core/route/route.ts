/**
 * The route level of a hop: match the request to a route, then run that route's stack
 * (request timeout, header filters, the host's route layers, per-try timeout, traffic split)
 * down to the chosen backend's `Fetch`. Each route's stack is built once.
 */
import type { Route } from "../config/schema.ts";
import { durationMs } from "../config/duration.ts";
import { systemClock, type Clock, type Random } from "../clock.ts";
import { deadline, timeout } from "../deadline/index.ts";
import { MeshError } from "../errors.ts";
import { stack, type Fetch, type Layer } from "../fetch.ts";
import { headerFilters } from "./filters.ts";
import { split } from "./split.ts";
import type { RouteTable } from "./table.ts";

/** Options of `route()`. */
export interface RouteOptions {
  /** The compiled routes of the destination service (`createRouteTable`). */
  table: RouteTable;
  /**
   * The backend level for one backend service of one route: typically that service's
   * balancer over its endpoints. Called once per route and backend service, when `route()`
   * is built, never per request.
   */
  backend: (service: string, route: Route) => Fetch;
  /**
   * Route-level layers of the host, outermost of each route's stack, outside its request
   * timeout: where route-labelled metrics go, so they also see the route's 504s.
   */
  outer?: (route: Route) => Layer[];
  /**
   * Route-level layers of the host inside the request timeout and the header filters, and
   * outside the per-try timeout and the split: where retry goes, so every attempt gets its
   * own per-try timeout and its own backend pick (a retry may land on another backend, as in
   * Linkerd), and all attempts fit the request timeout (Gateway API).
   */
  inner?: (route: Route) => Layer[];
  clock?: Clock;
  random?: Random;
}

/**
 * The route level, the top of a hop's outbound stack below the hop's own entry layers
 * (identity, the caller's deadline): it matches each request against `table`, answers
 * `MeshError("unknown-service")` (404) when the service has routes but none matches (Gateway
 * API answers an unmatched request with 404; our one 404 code names the route miss in its
 * message), and otherwise hands the request to the matched route's stack:
 *
 *   outer(route) → deadline(timeouts.request) → headerFilters(filters) → inner(route)
 *     → timeout(timeouts.backendRequest) → split(backends) → backend(service, route)
 *
 * The deadline layer is there on every route: it bounds the request by the earliest of the
 * caller's budget and the route's request timeout. A timeout of "0s" or none means no limit
 * there (Gateway API: 0s disables a timeout; Linkerd sets no default timeouts). Every stack,
 * split and backend `Fetch` is built here, once.
 */
export function route(options: RouteOptions): Fetch {
  const clock = options.clock ?? systemClock;
  const stacks = new Map<Route, Fetch>();
  for (const r of options.table.routes) stacks.set(r, routeStack(r, options, clock));
  const service = options.table.service;
  return async (request) => {
    const matched = options.table.match(request);
    if (matched === undefined) {
      throw new MeshError("unknown-service", `no route of ${service} matches ${request.method} ${new URL(request.url).pathname}`);
    }
    return stacks.get(matched.route)!(request);
  };
}

function routeStack(r: Route, options: RouteOptions, clock: Clock): Fetch {
  const backends = new Map<string, Fetch>();
  for (const { service, weight } of r.backends) {
    if (weight > 0 && !backends.has(service)) backends.set(service, options.backend(service, r));
  }
  const pick = split(r.backends, { random: options.random, route: r.name });
  const dispatch: Fetch = async (request) => backends.get(pick())!(request);
  const layers: Layer[] = [...(options.outer?.(r) ?? [])];
  // Always there, timeout or not: the caller's budget (`weft-timeout-ms`) bounds the request
  // too, and what is left of it is what the next hop is told.
  layers.push(deadline({ timeout: msOf(r.timeouts?.request), clock }));
  layers.push(headerFilters(r.filters));
  layers.push(...(options.inner?.(r) ?? []));
  const perTry = msOf(r.timeouts?.backendRequest);
  if (perTry > 0) layers.push(timeout(perTry, { clock }));
  return stack(dispatch, ...layers);
}

function msOf(duration: string | undefined): number {
  return duration === undefined ? 0 : durationMs(duration);
}
