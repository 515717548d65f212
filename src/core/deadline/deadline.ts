/**
 * The deadline layers: `deadline()` fixes a request's absolute deadline as it enters a hop,
 * `timeout()` narrows it for one try, and `propagateDeadline()` writes what is left onto the
 * wire as the request leaves the hop.
 */
import { systemClock, type Clock } from "../clock.ts";
import { MeshError, isGrpc } from "../errors.ts";
import { derive, metaOf, withHeaders, withMeta, type Layer } from "../fetch.ts";
import { GRPC_TIMEOUT_HEADER, TIMEOUT_HEADER, budgetOf, formatGrpcTimeout } from "./header.ts";
import { raceTimer } from "./race.ts";

/** Options of `deadline()`. */
export interface DeadlineOptions {
  /** The route's request timeout in ms (Gateway API `timeouts.request`); 0 or absent: none. */
  timeout?: number;
  clock?: Clock;
}

/**
 * The route-level deadline layer, outermost of a hop's stack (before retry and the balancer).
 * It sets `metaOf(request).deadline` to the earliest of the deadline already set, now plus
 * the caller's budget (`weft-timeout-ms`, or `grpc-timeout` for gRPC; malformed values are
 * ignored), and now plus the route's `timeout`. A budget already spent fails fast with
 * `deadline-exceeded` (504) and no upstream call. Otherwise the request goes on with a signal
 * that aborts at the deadline or when the caller's own signal aborts, so cancellation reaches
 * the upstream call, and either becomes `MeshError("deadline-exceeded")`. The deadline bounds
 * the wait for the response's headers; the streaming body is left to the upstream, which was
 * given the same budget. With no budget and no timeout the request passes untouched.
 *
 * The inbound side uses the same pair: `deadline()` reads the caller's header as the request
 * arrives, and `propagateDeadline()`, last before the app, tells the app what is left.
 */
export function deadline(options: DeadlineOptions = {}): Layer {
  const clock = options.clock ?? systemClock;
  const timeout = options.timeout !== undefined && options.timeout > 0 ? options.timeout : undefined;
  return (next) => async (request) => {
    const now = clock.now();
    let at = metaOf(request).deadline;
    const budget = budgetOf(request);
    if (budget !== undefined) at = earliest(at, now + budget);
    if (timeout !== undefined) at = earliest(at, now + timeout);
    if (at === undefined) return next(request);
    const remaining = at - now;
    if (remaining <= 0) throw new MeshError("deadline-exceeded", "the request's time budget had run out before it was sent");
    const deadlineAt = at;
    return raceTimer(
      clock,
      remaining,
      request.signal,
      (signal) => next(withMeta(request, { deadline: deadlineAt, signal })),
      () => new DeadlineTimeoutError(`no response within the request's ${Math.ceil(remaining)} ms budget`),
    );
  };
}

/** Options of `timeout()`. */
export interface TimeoutOptions {
  clock?: Clock;
}

/** A deadline's timer fired while the call was out: the callee held it past its time. */
class DeadlineTimeoutError extends MeshError {
  constructor(message: string) {
    super("deadline-exceeded", message);
  }
}

/** A per-try timeout, told apart from the request's own deadline so retry may try again. */
class PerTryTimeoutError extends DeadlineTimeoutError {
  constructor(ms: number) {
    super(`the try got no response within its ${ms} ms timeout`);
  }
}

/**
 * True when `cause` says a deadline ran out while a call was waiting for its answer: the
 * error `deadline()` or `timeout()` throws when its timer fires, or the reason a signal
 * aborted with when a timer aborted it (a `TimeoutError`, the name the Web platform gives
 * `AbortSignal.timeout()`'s reason and the one these layers abort with). False for a caller
 * that went away (an `AbortError`) and for a budget found spent before the call was made.
 * Failure accrual reads an endpoint that held a call this long as a failed one.
 */
export function isTimeout(cause: unknown): boolean {
  if (cause instanceof DeadlineTimeoutError) return true;
  return (cause instanceof Error || cause instanceof DOMException) && cause.name === "TimeoutError";
}

/**
 * True when `error` is a per-try timeout from `timeout()`: the try ran out of time while the
 * request's own deadline had some left, so retry's `deadline-per-try` condition may retry it.
 */
export function isPerTryTimeout(error: unknown): boolean {
  return error instanceof PerTryTimeoutError;
}

/**
 * The per-try timeout layer (route `timeouts.backendRequest`, retry's `perTryTimeout`): sits
 * below retry, at the endpoint level, and gives one try `ms` to answer with headers. It
 * narrows `metaOf(request).deadline` for this try only (so `propagateDeadline()` sends the
 * try's budget), aborts the try when it fires and throws a `deadline-exceeded` `MeshError`
 * for which `isPerTryTimeout()` is true. When the request's own deadline comes first, the
 * layer steps aside and that deadline governs. `ms` of 0 or less means no per-try timeout.
 */
export function timeout(ms: number, options: TimeoutOptions = {}): Layer {
  const clock = options.clock ?? systemClock;
  return (next) => async (request) => {
    const now = clock.now();
    const overall = metaOf(request).deadline;
    if (!(ms > 0) || (overall !== undefined && overall <= now + ms)) return next(request);
    return raceTimer(
      clock,
      ms,
      request.signal,
      (signal) => next(derive(request, {}, { deadline: now + ms, signal })),
      () => new PerTryTimeoutError(ms),
    );
  };
}

/** Options of `propagateDeadline()`. */
export interface PropagateDeadlineOptions {
  clock?: Clock;
}

/**
 * The endpoint-level layer that sits last before the network (outbound) or the app
 * (inbound): it writes the time left until `metaOf(request).deadline` into
 * `weft-timeout-ms`, in whole milliseconds rounded down, so the next hop never believes it
 * has more time than this one (it times out first and answers, rather than being cut off),
 * and rewrites `grpc-timeout` to the same value for gRPC requests. Less than one whole
 * millisecond left fails fast with `deadline-exceeded` and no call. A request without a
 * deadline passes with its headers as they are.
 */
export function propagateDeadline(options: PropagateDeadlineOptions = {}): Layer {
  const clock = options.clock ?? systemClock;
  return (next) => async (request) => {
    const at = metaOf(request).deadline;
    if (at === undefined) return next(request);
    const ms = Math.floor(at - clock.now());
    if (ms <= 0) throw new MeshError("deadline-exceeded", "the request's time budget ran out before it was forwarded");
    const grpc = isGrpc(request.headers);
    return next(
      withHeaders(request, (headers) => {
        headers.set(TIMEOUT_HEADER, String(ms));
        if (grpc) headers.set(GRPC_TIMEOUT_HEADER, formatGrpcTimeout(ms));
      }),
    );
  };
}

function earliest(a: number | undefined, b: number): number {
  return a === undefined ? b : Math.min(a, b);
}
