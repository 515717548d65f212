/**
 * Traffic split: the weighted choice among a route's backends (Gateway API `backendRefs`
 * weights, Linkerd's and Istio's canary splits).
 */
import type { Backend } from "../config/schema.ts";
import type { Random } from "../clock.ts";
import { MeshError } from "../errors.ts";
import type { Fetch } from "../fetch.ts";

/** Options of `split()`. */
export interface SplitOptions {
  /** Uniform numbers in [0, 1); `Math.random` when absent. */
  random?: Random;
  /** The route's name, for the error when it has nowhere to send traffic. */
  route?: string;
}

/**
 * Returns `pick()`, which names one of `backends` with probability weight / Σ weights: one
 * uniform draw against the cumulative weights, so the split is exact in expectation (90/10 is
 * 90/10, not a rounding of it). A backend of weight 0 is never picked. When every weight is 0
 * the route sends no traffic and each `pick()` throws `MeshError("no-endpoints")` (503),
 * as Linkerd answers when no backend of a route can take the request; the route alone
 * fails, not the whole table.
 */
export function split(backends: readonly Backend[], options: SplitOptions = {}): () => string {
  const random = options.random ?? Math.random;
  const live = backends.filter((backend) => backend.weight > 0);
  const first = live[0];
  if (first === undefined) {
    const route = options.route === undefined ? "the route" : `route ${options.route}`;
    return () => {
      throw new MeshError("no-endpoints", `${route} sends no traffic: every backend has weight 0`);
    };
  }
  if (live.length === 1) return () => first.service;
  const services = live.map((backend) => backend.service);
  const cumulative: number[] = [];
  let total = 0;
  for (const backend of live) cumulative.push((total += backend.weight));
  const last = services.length - 1;
  return () => {
    const draw = random() * total;
    for (let i = 0; i < last; i++) if (draw < cumulative[i]!) return services[i]!;
    return services[last]!;
  };
}

/** Options of `splitTo()`. */
export type SplitToOptions = SplitOptions;

/**
 * The bottom of a route's stack: sends each request to one of `backends`, drawn by weight
 * (`split`), through the `Fetch` that `backend` builds for it. Each backend service's `Fetch`
 * is built once, here, for backends of weight above 0.
 */
export function splitTo(backends: readonly Backend[], backend: (service: string) => Fetch, options: SplitToOptions = {}): Fetch {
  const fetches = new Map<string, Fetch>();
  for (const { service, weight } of backends) {
    if (weight > 0 && !fetches.has(service)) fetches.set(service, backend(service));
  }
  const pick = split(backends, options);
  return async (request) => fetches.get(pick())!(request);
}
