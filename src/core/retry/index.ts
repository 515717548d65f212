/**
 * Retries: tries a request again on the failures a route names, with jittered backoff, a
 * per-destination budget that caps the extra load, bodies kept for replay up to 64 KiB, and
 * never past the request's deadline.
 */
export { ATTEMPT_HEADER, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_RETRY_AFTER, retry } from "./retry.ts";
export type { RetryObserver, RetryOptions } from "./retry.ts";
export { DEFAULT_RETRY_BUDGET, createRetryBudget } from "./budget.ts";
export type { RetryBudget, RetryBudgetOptions } from "./budget.ts";
export { DEFAULT_BACKOFF, backoffDelay, retryAfterMs } from "./backoff.ts";
export type { Backoff } from "./backoff.ts";
export { classify } from "./classify.ts";
export type { RetryOn } from "./classify.ts";
