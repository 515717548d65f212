/**
 * The balancer: picks one ready endpoint of a set per request, by peak-EWMA
 * power-of-two-choices, smooth weighted round-robin or weighted random.
 */
import type { Clock, Random } from "../clock.ts";
import { systemClock } from "../clock.ts";
import type { AccrualState } from "../breaker/index.ts";
import { MeshError } from "../errors.ts";
import type { Fetch } from "../fetch.ts";
import type { Endpoint, EndpointSet } from "./endpoint-set.ts";
import { createPeakEwma, type PeakEwma } from "./peak-ewma.ts";

/** The balancing algorithms: SPEC.md's two, and plain random for comparison. */
export type Algorithm = "p2c-ewma" | "round-robin" | "random";

/**
 * The default algorithm: peak-EWMA P2C, Linkerd's only HTTP balancer
 * (linkerd.io/2-edge/reference/load-balancing) and SPEC.md's default `balancer`.
 */
export const DEFAULT_ALGORITHM: Algorithm = "p2c-ewma";

/** Options of `balance`. */
export interface BalanceOptions {
  /** How to pick (default `DEFAULT_ALGORITHM`). */
  algorithm?: Algorithm;
  clock?: Clock;
  random?: Random;
  /** RTT assumed for an endpoint not yet measured, ms (default `DEFAULT_RTT`, 30). */
  defaultRtt?: number;
  /** Decay time constant of the RTT estimate, ms (default `DEFAULT_DECAY`, 10 s). */
  decay?: number;
}

/** What a balancer knows of one endpoint, for inspection and metrics. */
export interface EndpointLoad {
  id: string;
  weight: number;
  state: AccrualState;
  /** Requests this balancer sent it that have not been answered (headers) yet. */
  pending: number;
  /** The peak-EWMA RTT estimate now, ms (`defaultRtt` until first used). */
  rtt: number;
}

/** A balancer: a `Fetch`, plus a look at its per-endpoint load. */
export interface Balancer extends Fetch {
  /** The load of each endpoint now in the set, in the set's order. */
  loads(): EndpointLoad[];
}

/** One balancer's view of one endpoint: its load estimate and its round-robin credit. */
interface Load {
  ewma: PeakEwma;
  /** Smooth weighted round-robin's running credit (nginx's `current_weight`). */
  current: number;
}

/**
 * Backend level (route → backend → endpoint): sends each request to one ready endpoint of
 * `set` and returns what that endpoint's stack returns, 5xx and thrown errors included.
 * State lives per process or isolate, in this balancer.
 *
 * - `p2c-ewma`: two distinct endpoints drawn at random (by weight); the lower
 *   cost ÷ weight wins, ties to the first, where cost = RTT estimate × (in flight + 1) and
 *   the RTT is measured to the response headers (Linkerd: to the first byte).
 * - `round-robin`: smooth weighted round-robin, as nginx does it.
 * - `random`: one endpoint drawn by weight.
 *
 * Only endpoints that are ready (not ejected; on probation only with no trial in flight)
 * and of weight above 0 are picked; an endpoint that answered 429 or gRPC RESOURCE_EXHAUSTED
 * is not ready until its `retry-after` has passed (failure accrual holds it out). With none,
 * it throws `MeshError("no-endpoints")` at once, never waiting for one, or `overloaded` (503,
 * `retry-after` the soonest return) when every endpoint is held out for overload. Endpoints added to the set later start at `defaultRtt`.
 */
export function balance(set: EndpointSet, options: BalanceOptions = {}): Balancer {
  const algorithm = options.algorithm ?? DEFAULT_ALGORITHM;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  // Keyed by the set's endpoint objects, which survive updates while their id stays.
  const loads = new WeakMap<Endpoint, Load>();

  const loadOf = (endpoint: Endpoint): Load => {
    let load = loads.get(endpoint);
    if (load === undefined) {
      load = { ewma: createPeakEwma({ clock, defaultRtt: options.defaultRtt, decay: options.decay }), current: 0 };
      loads.set(endpoint, load);
    }
    return load;
  };

  const pickers: Record<Algorithm, (ready: Endpoint[], total: number) => Endpoint> = {
    "p2c-ewma"(ready, total) {
      if (ready.length === 1) return ready[0]!;
      const a = weightedIndex(ready, total, random());
      const b = weightedIndex(ready, total - ready[a]!.weight, random(), a);
      const first = ready[a]!;
      const second = ready[b]!;
      return loadOf(second).ewma.cost() / second.weight < loadOf(first).ewma.cost() / first.weight ? second : first;
    },
    "round-robin"(ready, total) {
      let best: Endpoint | undefined;
      let bestLoad: Load | undefined;
      for (const endpoint of ready) {
        const load = loadOf(endpoint);
        load.current += endpoint.weight;
        if (bestLoad === undefined || load.current > bestLoad.current) {
          best = endpoint;
          bestLoad = load;
        }
      }
      bestLoad!.current -= total;
      return best!;
    },
    random: (ready, total) => ready[weightedIndex(ready, total, random())]!,
  };
  const pick = pickers[algorithm];
  if (pick === undefined) throw new TypeError(`unknown balancing algorithm ${String(algorithm)}`);

  const fetch: Fetch = async (request) => {
    const all = set.endpoints();
    const ready = all.filter((endpoint) => endpoint.weight > 0 && endpoint.ready());
    if (ready.length === 0) {
      // Every endpoint with weight is held out because it said it is overloaded (429): the
      // service is overloaded, and the caller is told when the first one takes traffic again.
      const weighted = all.filter((endpoint) => endpoint.weight > 0);
      const held = weighted.map((endpoint) => endpoint.accrual?.overloadedUntil());
      if (weighted.length > 0 && held.every((until) => until !== undefined)) {
        const waitMs = Math.min(...(held as number[])) - clock.now();
        throw new MeshError("overloaded", `all ${weighted.length} of the service's endpoints answered that they are overloaded (429)`, { retryAfter: Math.max(1, Math.ceil(waitMs / 1000)) });
      }
      const why =
        all.length === 0
          ? "the service has no endpoints"
          : `none of the service's ${all.length} endpoints can take a request (ejected by failure accrual, on probation, or of weight 0)`;
      throw new MeshError("no-endpoints", why);
    }
    const total = ready.reduce((sum, endpoint) => sum + endpoint.weight, 0);
    const endpoint = pick(ready, total);
    const { ewma } = loadOf(endpoint);
    const start = clock.now();
    ewma.pending++;
    try {
      const response = await endpoint.fetch(request);
      ewma.observe(clock.now() - start);
      return response;
    } finally {
      ewma.pending--;
    }
  };
  return Object.assign(fetch, {
    loads: () =>
      set.endpoints().map((endpoint) => {
        const { ewma } = loadOf(endpoint);
        return { id: endpoint.id, weight: endpoint.weight, state: endpoint.state(), pending: ewma.pending, rtt: ewma.peek() };
      }),
  });
}

/**
 * The index drawn by `draw` ∈ [0, 1) over `endpoints` in proportion to their weights, which
 * sum to `total`, leaving out the index `skip`.
 */
function weightedIndex(endpoints: readonly Endpoint[], total: number, draw: number, skip = -1): number {
  let left = draw * total;
  let last = -1;
  for (let i = 0; i < endpoints.length; i++) {
    if (i === skip) continue;
    left -= endpoints[i]!.weight;
    last = i;
    if (left < 0) return i;
  }
  // Floating-point sums can leave a sliver at the end; it belongs to the last one.
  return last;
}
