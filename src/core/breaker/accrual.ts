/**
 * Linkerd's consecutive-failures breaker for one endpoint: counts failures in a row, ejects
 * the endpoint for a penalty that grows with each failed probation, then lets exactly one
 * real request decide whether it comes back.
 */
import type { Clock, Random } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { grpcStatusOf } from "../errors.ts";
import type { Ended, MeshRequest } from "../fetch.ts";

/**
 * Failures in a row that eject an endpoint: Linkerd's
 * `failure-accrual-consecutive-max-failures` default (policy-controller
 * `parse_consecutive_params`; linkerd.io/2-edge/reference/circuit-breaking).
 */
export const DEFAULT_CONSECUTIVE_FAILURES = 7;

/**
 * The ejection penalty in ms: 1 s doubling to 1 min, plus up to half again at random.
 * Linkerd's `failure-accrual-consecutive-{min,max}-penalty` (1s, 1m) and `-jitter-ratio` (0.5).
 */
export const DEFAULT_PENALTY_BACKOFF: PenaltyBackoff = { min: 1_000, max: 60_000, jitter: 0.5 };

/** Where an endpoint stands with its breaker. */
export type AccrualState =
  /** Takes requests; failures are being counted. */
  | "available"
  /** Tripped: takes no requests until its penalty has passed. */
  | "ejected"
  /** Penalty over: takes one request at a time, and the first answer decides. */
  | "probation";

/** What a finished request tells the breaker. `ignored` says nothing (the caller gave up). */
export type Outcome = "success" | "failure" | "ignored";

/**
 * gRPC's RESOURCE_EXHAUSTED, the status a gRPC server sheds load with: treated as an HTTP 429
 * (Linkerd 2.20's balancer and failure accrual do both).
 */
export const GRPC_RESOURCE_EXHAUSTED = 8;

/**
 * How long an endpoint that answered 429 without `retry-after` is held out, ms: Linkerd's
 * minimum failure-accrual penalty (1 s), the shortest hold-out its breaker knows.
 */
export const DEFAULT_OVERLOAD_HOLD_MS = 1_000;

/** How a request ended: the response it got (any status), or what was thrown instead. */
export type Result = Ended;

/** Decides whether a finished request counts as a failure of the endpoint. */
export type Classify = (result: Result, request: MeshRequest) => boolean;

/** The penalty schedule: `min` ms doubling per failed probation up to `max`, jittered. */
export interface PenaltyBackoff {
  /** The first penalty, ms. */
  min: number;
  /** The longest penalty, ms; jitter never takes a penalty past it. */
  max: number;
  /** Up to this fraction of the base penalty is added at random (Linkerd's jitter ratio). */
  jitter: number;
}

/** Options of `createFailureAccrual`; the numbers mirror SPEC.md's `FailureAccrual`. */
export interface FailureAccrualOptions {
  /** Failures in a row that eject the endpoint (default `DEFAULT_CONSECUTIVE_FAILURES`). */
  consecutiveFailures?: number;
  /** Penalty schedule, ms (default `DEFAULT_PENALTY_BACKOFF`). */
  backoff?: Partial<PenaltyBackoff>;
  /** What counts as a failure (default `isFailure`: thrown, 5xx, failing gRPC status). */
  classify?: Classify;
  clock?: Clock;
  random?: Random;
  /** Hooks for metrics (`weft_endpoint_ejections_total`) and logs. */
  observe?: {
    /** The endpoint was ejected (first trip or a failed probation). */
    ejected?(id: string): void;
    /** The endpoint passed probation and takes traffic again. */
    restored?(id: string): void;
  };
}

/** Records the outcome of the one request it was issued for; later calls do nothing. */
export type Ticket = (outcome: Outcome) => void;

/** One endpoint's breaker: per process or isolate, in memory, like Linkerd's. */
export interface FailureAccrual {
  /** The endpoint's id, passed to the `observe` hooks. */
  readonly id: string;
  /** What counts as a failure for this endpoint. */
  readonly classify: Classify;
  /** The state now; an ejected endpoint turns to probation by itself once its penalty passes. */
  state(): AccrualState;
  /** True when a request may be sent now: available, or on probation with no trial in flight. */
  ready(): boolean;
  /**
   * Admits one request: returns the ticket to report its outcome with, or undefined when the
   * endpoint takes no request now. On probation the admitted request is the trial.
   */
  admit(): Ticket | undefined;
  /** When an ejected endpoint goes on probation, on the clock; undefined when not ejected. */
  ejectedUntil(): number | undefined;
  /**
   * The endpoint said it is overloaded (a 429 or gRPC RESOURCE_EXHAUSTED): it takes no
   * request for `ms` (its `retry-after`; `DEFAULT_OVERLOAD_HOLD_MS` without one; at most the
   * penalty's `max`), then takes traffic again without probation. Its failure streak is
   * left as it was: overload is not a fault.
   */
  overloaded(ms?: number): void;
  /** Until when, on the clock, an overloaded endpoint is held out; undefined when it is not. */
  overloadedUntil(): number | undefined;
}

/** gRPC statuses Linkerd's breaker counts as failures: DEADLINE_EXCEEDED, PERMISSION_DENIED, INTERNAL, UNAVAILABLE, DATA_LOSS. */
const GRPC_FAILURES = new Set([4, 7, 13, 14, 15]);

/**
 * The default classifier: a thrown error, a 5xx status, or a trailers-only gRPC response
 * with one of the statuses Linkerd's breaker counts (docs: reference/circuit-breaking).
 */
export const isFailure: Classify = (result) => {
  if (result.response === undefined) return true;
  const grpc = grpcStatusOf(result.response);
  return result.response.status >= 500 || (grpc !== undefined && GRPC_FAILURES.has(grpc));
};

/**
 * The penalty after `failedProbations` failed probations (0 for the first trip): Linkerd's
 * exponential backoff (linkerd-exp-backoff): base = min·2ⁿ capped at max, plus a uniform
 * [0, jitter·base), never past max.
 */
export function penalty(backoff: PenaltyBackoff, failedProbations: number, random: Random): number {
  // The exponent is capped so a long-dead endpoint's count cannot overflow to Infinity.
  const base = Math.min(backoff.min * 2 ** Math.min(failedProbations, 64), backoff.max);
  return base + Math.min(base * backoff.jitter * random(), backoff.max - base);
}

/**
 * A new breaker for the endpoint `id`, per process or isolate. State changes happen only
 * when outcomes are reported and when time passes; no timers run.
 */
export function createFailureAccrual(options: FailureAccrualOptions = {}, id = ""): FailureAccrual {
  const limit = options.consecutiveFailures ?? DEFAULT_CONSECUTIVE_FAILURES;
  const backoff = { ...DEFAULT_PENALTY_BACKOFF, ...options.backoff };
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError("consecutiveFailures must be a whole number of at least 1");
  if (!(backoff.min >= 0 && backoff.max > 0 && backoff.min <= backoff.max)) throw new RangeError("backoff needs 0 <= min <= max and max > 0");
  if (!(backoff.jitter >= 0 && Number.isFinite(backoff.jitter))) throw new RangeError("backoff jitter must be a finite number >= 0");
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;

  let failures = 0;
  let failedProbations = 0;
  /** Set while ejected or on probation: when the penalty ends. */
  let until: number | undefined;
  let trialInFlight = false;
  // Every ejection starts a new epoch, so answers to requests sent before it say nothing.
  let epoch = 0;

  /** Set while an overloaded endpoint is held out (`overloaded()`): when it may take traffic again. */
  let heldUntil = Number.NEGATIVE_INFINITY;
  const breakerState = (): AccrualState => (until === undefined ? "available" : clock.now() < until ? "ejected" : "probation");
  // Held out for overload counts as ejected to the balancer; the breaker's own state resumes after.
  const state = (): AccrualState => (clock.now() < heldUntil ? "ejected" : breakerState());

  const eject = () => {
    until = clock.now() + penalty(backoff, failedProbations, random);
    failures = 0;
    trialInFlight = false;
    epoch++;
    options.observe?.ejected?.(id);
  };

  const ready = () => {
    const now = state();
    return now === "available" || (now === "probation" && !trialInFlight);
  };

  return {
    id,
    classify: options.classify ?? isFailure,
    state,
    ready,
    ejectedUntil: () => (breakerState() === "ejected" ? until : undefined),
    overloaded(ms) {
      const hold = Math.min(Math.max(0, ms ?? DEFAULT_OVERLOAD_HOLD_MS), backoff.max);
      heldUntil = Math.max(heldUntil, clock.now() + hold);
    },
    overloadedUntil: () => (clock.now() < heldUntil ? heldUntil : undefined),
    admit() {
      if (!ready()) return undefined;
      const trial = breakerState() === "probation";
      if (trial) trialInFlight = true;
      const issued = epoch;
      let used = false;
      return (outcome) => {
        if (used) return;
        used = true;
        if (issued !== epoch) return;
        if (trial) {
          trialInFlight = false;
          if (outcome === "success") {
            until = undefined;
            failures = 0;
            failedProbations = 0;
            options.observe?.restored?.(id);
          } else if (outcome === "failure") {
            failedProbations++;
            eject();
          }
          return;
        }
        // A request admitted while available, answered while still in the same epoch.
        if (outcome === "success") failures = 0;
        else if (outcome === "failure" && ++failures >= limit) eject();
      };
    },
  };
}
