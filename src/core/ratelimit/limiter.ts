/**
 * A local rate limit as GCRA (the generic cell rate algorithm): the same decisions as a
 * token bucket that refills continuously, kept as one number, the theoretical arrival time.
 */
import { systemClock, type Clock } from "../clock.ts";
import { MeshError } from "../errors.ts";
import type { Layer } from "../fetch.ts";

/**
 * Requests allowed above the steady rate when none is given: none. The schema's default too;
 * Envoy's local rate limit has no default bucket size, and a burst of 0 is the strictest.
 */
export const DEFAULT_BURST = 0;

/** Options of `createRateLimiter()` (the `rateLimit` of a service, SPEC.md section 3). */
export interface RateLimiterOptions {
  /** Sustained requests per second; may be fractional (0.5 is one request every 2 s). */
  rps: number;
  /** Requests allowed at once above the steady rate, back to back; 0 spaces every request 1/rps apart. */
  burst?: number;
  clock?: Clock;
}

/** The verdict on one request: go, or wait `retryAfter` whole seconds (at least 1). */
export type RateLimitDecision = { ok: true } | { ok: false; retryAfter: number; waitMs: number };

/** A rate limiter: each `take()` asks to admit one request now. */
export interface RateLimiter {
  take(): RateLimitDecision;
  /** What `take()` would answer now, without taking anything. */
  peek?(): RateLimitDecision;
}

/**
 * A local rate limiter; its state lives per isolate or process, like Envoy's local rate
 * limit (one bucket per Envoy process), so N isolates or pods admit up to N times `rps`.
 *
 * It behaves as a token bucket of `burst + 1` tokens, full at the start (Envoy's
 * `max_tokens` is also the initial fill), refilled at `rps` tokens a second, one token per
 * request: so `burst` requests above the first may go back to back, and with `burst` 0
 * requests must be spaced 1/rps apart. A refused request takes no token. `retryAfter` is
 * the wait until a request would be admitted, rounded up to whole seconds and at least 1
 * (the `retry-after` header takes whole seconds; rounding down would invite a retry that is
 * refused again); `waitMs` is the exact wait.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { rps } = options;
  const burst = options.burst ?? DEFAULT_BURST;
  if (!(rps > 0) || !Number.isFinite(rps)) throw new TypeError(`rate limit rps must be a positive number, not ${rps}`);
  if (!(burst >= 0) || !Number.isInteger(burst)) throw new TypeError(`rate limit burst must be a whole number ≥ 0, not ${burst}`);
  const clock = options.clock ?? systemClock;
  const interval = 1000 / rps; // ms between requests at the steady rate (GCRA's T)
  const tolerance = burst * interval; // how far ahead of schedule a request may be (GCRA's τ)
  // Floating point: rps 3 gives T = 333.33…; three steps of it must still land on 1000.
  const slack = interval * 1e-9;
  let tat = -Infinity; // theoretical arrival time of the next request at the steady rate
  const decide = (commit: boolean): RateLimitDecision => {
    const now = clock.now();
    const start = Math.max(tat, now);
    const early = start - now - tolerance;
    if (early > slack) {
      return { ok: false, retryAfter: Math.max(1, Math.ceil(early / 1000)), waitMs: early };
    }
    if (commit) tat = start + interval;
    return { ok: true };
  };
  return { take: () => decide(true), peek: () => decide(false) };
}

/**
 * The inbound rate-limit layer, after identity and authorization and before the app (SPEC.md
 * section 5), so refused callers cost the app nothing: each request takes from `limiter` (or
 * from a new limiter built from `options`, one per call of `rateLimit()`), and a refused
 * request throws `MeshError("rate-limited")` (429) with `retryAfter` in whole seconds, which
 * `errorResponse` writes as `retry-after`.
 */
export function rateLimit(limiter: RateLimiter | RateLimiterOptions): Layer {
  const bucket = "take" in limiter ? limiter : createRateLimiter(limiter);
  return (next) => async (request) => {
    const decision = bucket.take();
    if (!decision.ok) {
      throw new MeshError("rate-limited", `over the local rate limit; retry in ${decision.retryAfter} s`, { retryAfter: decision.retryAfter });
    }
    return next(request);
  };
}
