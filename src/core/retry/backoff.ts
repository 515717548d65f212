/** The wait between tries: fully jittered exponential backoff, and `retry-after` when given. */
import type { Random } from "../clock.ts";
import type { MeshResponse } from "../fetch.ts";

/** The bounds of the backoff between tries, in ms. */
export interface Backoff {
  /** The first retry waits up to this long. */
  base: number;
  /** No wait is longer than this. */
  max: number;
}

/**
 * 25 ms growing to at most 250 ms: Envoy's default base interval and its default max of
 * 10 × base (router_filter.rst, RetryBackOff), which Linkerd's route retries also use
 * (policy-controller `convert_retry`: 25 ms → 250 ms, jitter ratio 1.0).
 */
export const DEFAULT_BACKOFF: Backoff = { base: 25, max: 250 };

/**
 * The wait before retry number `retry` (1 for the first retry), fully jittered as Envoy does
 * it: uniform in [0, (2^retry − 1) × base), capped at `max`. Full jitter spreads the retries
 * of many callers that failed together, so they do not arrive together again.
 */
export function backoffDelay(retry: number, backoff: Backoff, random: Random): number {
  const ceiling = Math.min(backoff.max, backoff.base * (2 ** Math.max(1, retry) - 1));
  return random() * ceiling;
}

/**
 * How long `response` asks the caller to wait, from `retry-after` in delay-seconds or as an
 * HTTP-date (RFC 9110 section 10.2.3), in ms; undefined when absent or unreadable. A date is
 * measured against the response's own `date` header when present, so the two clocks that
 * matter are the same server's; otherwise against this runtime's wall clock.
 */
export function retryAfterMs(response: MeshResponse): number | undefined {
  const value = response.headers.get("retry-after")?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1_000;
  // An HTTP-date names a day and a month; this keeps "-1" from reading as the year -1.
  const at = /[a-z]/i.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(at)) return undefined;
  const sent = Date.parse(response.headers.get("date") ?? "");
  return Math.max(0, at - (Number.isNaN(sent) ? Date.now() : sent));
}
