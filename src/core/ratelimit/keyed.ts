/**
 * Rate limits with fairness (Linkerd 2.17's HTTPLocalRateLimitPolicy): a total for the
 * service or route, a share per caller (by verified identity, end-user subject, client
 * address or a header), and per-caller overrides; and the layer that applies one.
 */
import { systemClock, type Clock } from "../clock.ts";
import { MeshError } from "../errors.ts";
import { metaOf, type Layer, type MeshRequest } from "../fetch.ts";
import { createRateLimiter, type RateLimitDecision, type RateLimiter } from "./limiter.ts";

/** What a request's rate-limit key is (SPEC.md section 3, `rateLimit.key`). */
export type RateLimitKey =
  /** The verified caller: the end user (`iss` and `sub`) when a token was verified, else the workload's SPIFFE ID, else everyone unauthenticated together (Linkerd). */
  | { type: "client" }
  /** The client's address: the socket's peer (sidecar) or `cf-connecting-ip` (router). */
  | { type: "ip" }
  /** A request header's value; requests without it share one key. */
  | { type: "header"; name: string };

/** Linkerd's fairness default: keyed by the verified caller. */
export const DEFAULT_RATE_LIMIT_KEY: RateLimitKey = { type: "client" };

/**
 * Keys a limiter remembers, per isolate or process: 10,000. Past that the least recently
 * seen go, and their next request starts with a full bucket; a caller that cycles through
 * keys to get fresh buckets still meets the total.
 */
export const MAX_RATE_LIMIT_KEYS = 10_000;

/** The key shared by callers with none (no verified identity, no such header). */
export const ANONYMOUS_KEY = "";

/** The key of `request` under `key`. */
export function rateLimitKeyOf(request: MeshRequest, key: RateLimitKey): string {
  const meta = metaOf(request);
  switch (key.type) {
    case "client":
      if (meta.endUser !== undefined) return `user:${meta.endUser.issuer} ${meta.endUser.subject}`;
      return meta.client !== undefined ? `id:${meta.client}` : ANONYMOUS_KEY;
    case "ip":
      return meta.clientAddress ?? request.headers.get("cf-connecting-ip") ?? ANONYMOUS_KEY;
    case "header":
      return request.headers.get(key.name) ?? ANONYMOUS_KEY;
  }
}

/** A rate: sustained requests per second and a burst above it. */
export interface Rate {
  rps: number;
  burst?: number;
}

/** Options of `createKeyedLimiter`. */
export interface KeyedLimiterOptions {
  /** The limit on all callers together; none when absent. */
  total?: Rate;
  /** Each caller's share; none when absent. */
  perKey?: Rate;
  /** Callers with a share of their own, by key. */
  overrides?: readonly { keys: readonly string[]; rate: Rate }[];
  clock?: Clock;
  /** Keys remembered (`MAX_RATE_LIMIT_KEYS`). */
  maxKeys?: number;
}

/** A limiter by key: each `take(key)` asks to admit one request of that caller now. */
export interface KeyedLimiter {
  take(key: string): RateLimitDecision | Promise<RateLimitDecision>;
}

/**
 * Linkerd's local rate limit with fairness, per isolate or process: a request is admitted
 * when its caller's bucket (its override, else the per-key share) and the total both have
 * room; a refused request takes from neither. Each bucket is `createRateLimiter`'s GCRA,
 * with Linkerd's burst of one second's worth plus `burst`.
 */
export function createKeyedLimiter(options: KeyedLimiterOptions): KeyedLimiter {
  const clock = options.clock ?? systemClock;
  const maxKeys = options.maxKeys ?? MAX_RATE_LIMIT_KEYS;
  const make = (rate: Rate): RateLimiter => createRateLimiter({ rps: rate.rps, burst: Math.ceil(rate.rps) - 1 + (rate.burst ?? 0), clock });
  const total = options.total && make(options.total);
  const overrides = new Map<string, Rate>();
  for (const o of options.overrides ?? []) for (const key of o.keys) overrides.set(key, o.rate);
  // A Map iterates in insertion order: re-inserting on use keeps the least recent first.
  const buckets = new Map<string, RateLimiter>();
  const bucketOf = (key: string): RateLimiter | undefined => {
    const rate = overrides.get(key) ?? options.perKey;
    if (rate === undefined) return undefined;
    let bucket = buckets.get(key);
    if (bucket === undefined) {
      bucket = make(rate);
      if (buckets.size >= maxKeys) buckets.delete(buckets.keys().next().value!);
    } else buckets.delete(key);
    buckets.set(key, bucket);
    return bucket;
  };
  return {
    take(key) {
      const own = bucketOf(key);
      const mine = own?.peek?.() ?? { ok: true as const };
      if (!mine.ok) return mine;
      const all = total?.take() ?? { ok: true as const };
      if (!all.ok) return all;
      return own?.take() ?? { ok: true };
    },
  };
}

/**
 * The inbound rate-limit layer with fairness, after identity and authorization (so `client`
 * keys are verified ones) and before the app: each request takes from `limiter` under its
 * key, and a refused one throws `MeshError("rate-limited")` (429) with `retry-after`.
 */
export function keyedRateLimit(limiter: KeyedLimiter, key: RateLimitKey = DEFAULT_RATE_LIMIT_KEY): Layer {
  return (next) => async (request) => {
    const decision = await limiter.take(rateLimitKeyOf(request, key));
    if (!decision.ok) {
      throw new MeshError("rate-limited", `over the rate limit; retry in ${decision.retryAfter} s`, { retryAfter: decision.retryAfter });
    }
    return next(request);
  };
}
