/**
 * The endpoints of one backend, as discovery last described them, each behind its own
 * failure-accrual breaker; the set can change while requests to it are in flight.
 */
import type { AccrualState, FailureAccrual, FailureAccrualOptions } from "../breaker/index.ts";
import { createFailureAccrual, failureAccrual } from "../breaker/index.ts";
import type { Fetch } from "../fetch.ts";

/** An endpoint as discovery gives it: its id, relative weight and its endpoint-level stack. */
export interface EndpointInit {
  /** Stable across updates: an endpoint that keeps its id keeps its load and breaker state. */
  id: string;
  /** Share of traffic relative to the others (default 1); 0 sends it nothing. */
  weight?: number;
  /** The endpoint's own stack (per-try timeout, identity header, the connection). */
  fetch: Fetch;
}

/** An endpoint in the set, as the balancer sees it. */
export interface Endpoint {
  readonly id: string;
  readonly weight: number;
  /** The endpoint's stack behind its failure-accrual layer (when accrual is on). */
  readonly fetch: Fetch;
  /** The endpoint's breaker; undefined when failure accrual is off. */
  readonly accrual: FailureAccrual | undefined;
  /** `available`, `ejected` or `probation`; always `available` without a breaker. */
  state(): AccrualState;
  /** True when the balancer may send it a request now (weight aside). */
  ready(): boolean;
}

/** Options of `createEndpointSet`. */
export interface EndpointSetOptions {
  /**
   * Failure accrual for each endpoint (one breaker per endpoint, sharing these options);
   * on with Linkerd's defaults unless `false`.
   */
  failureAccrual?: FailureAccrualOptions | false;
}

/** A mutable set of endpoints, per process or isolate. */
export interface EndpointSet {
  /** The endpoints now in the set, in the order of the last update. */
  endpoints(): readonly Endpoint[];
  /** The endpoint with `id`, when it is in the set. */
  get(id: string): Endpoint | undefined;
  /**
   * Replaces the set's contents with `endpoints`. An endpoint whose id stays keeps its load
   * and breaker state (taking the new weight and fetch); a removed one is no longer picked,
   * but requests already sent to it complete normally; a new one starts fresh. A later
   * entry with an id already listed replaces the earlier one.
   */
  update(endpoints: readonly EndpointInit[]): void;
}

interface Entry extends Endpoint {
  weight: number;
  fetch: Fetch;
}

function weightOf(init: EndpointInit): number {
  const weight = init.weight ?? 1;
  if (!(weight >= 0 && Number.isFinite(weight))) throw new RangeError(`endpoint ${init.id} has an invalid weight`);
  return weight;
}

/**
 * A set holding `endpoints`, per process or isolate. The balancer (`balance(set)`) picks from
 * it; discovery calls `update()` with each new list.
 */
export function createEndpointSet(endpoints: readonly EndpointInit[] = [], options: EndpointSetOptions = {}): EndpointSet {
  let entries = new Map<string, Entry>();

  const create = (init: EndpointInit): Entry => {
    const accrual = options.failureAccrual === false ? undefined : createFailureAccrual(options.failureAccrual, init.id);
    return {
      id: init.id,
      weight: weightOf(init),
      fetch: accrual ? failureAccrual(accrual)(init.fetch) : init.fetch,
      accrual,
      state: () => accrual?.state() ?? "available",
      ready: () => accrual?.ready() ?? true,
    };
  };

  const set: EndpointSet = {
    endpoints: () => [...entries.values()],
    get: (id) => entries.get(id),
    update(next) {
      const weights = next.map(weightOf);
      const updated = new Map<string, Entry>();
      next.forEach((init, i) => {
        const kept = entries.get(init.id) ?? updated.get(init.id);
        if (kept === undefined) {
          updated.set(init.id, create(init));
          return;
        }
        kept.weight = weights[i]!;
        kept.fetch = kept.accrual ? failureAccrual(kept.accrual)(init.fetch) : init.fetch;
        updated.delete(init.id);
        updated.set(init.id, kept);
      });
      entries = updated;
    },
  };
  set.update(endpoints);
  return set;
}
