/**
 * Local rate limiting: a per-isolate GCRA limiter of `rps` with a `burst`, and the layer that
 * refuses what it does not admit with `rate-limited` (429) and `retry-after`.
 */
export { DEFAULT_BURST, createRateLimiter, rateLimit } from "./limiter.ts";
export type { RateLimitDecision, RateLimiter, RateLimiterOptions } from "./limiter.ts";
export { ANONYMOUS_KEY, DEFAULT_RATE_LIMIT_KEY, MAX_RATE_LIMIT_KEYS, createKeyedLimiter, keyedRateLimit, rateLimitKeyOf } from "./keyed.ts";
export type { KeyedLimiter, KeyedLimiterOptions, Rate, RateLimitKey } from "./keyed.ts";
