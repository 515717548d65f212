/**
 * The latency histogram's bucket bounds and the two operations on bucket counts: which bucket
 * an observation falls in, and a quantile estimated from counts as Prometheus estimates it.
 */

/**
 * Upper bounds (inclusive) of the latency buckets, in milliseconds, plus an implicit `+Inf`
 * bucket: Linkerd's `response_latency_ms` bounds (linkerd2-proxy
 * `linkerd/metrics/src/latency.rs` `BOUNDS`), 1 ms to 50 s. Latency is kept in milliseconds
 * inside Weft (stats, pushed deltas); the exposition writes these bounds in seconds as the
 * `le` labels of `weft_response_latency_seconds` (see `exposeStore`).
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
];

/** How many buckets a latency histogram holds: one per bound and one for `+Inf`. */
export const BUCKETS = LATENCY_BOUNDS_MS.length + 1;

/** The bucket `ms` falls in: the first bound it does not exceed, or the `+Inf` bucket. */
export function bucketIndex(ms: number): number {
  const bounds = LATENCY_BOUNDS_MS;
  // Most requests land in the first few buckets, so a forward scan beats a binary search.
  for (let i = 0; i < bounds.length; i++) if (ms <= bounds[i]!) return i;
  return bounds.length;
}

/**
 * The `q` quantile (0..1) of the observations counted in `counts` (per bucket, not
 * cumulative, `BUCKETS` long), or undefined when there are none. Interpolates linearly inside
 * the bucket holding the rank, exactly as Prometheus' `histogram_quantile` does
 * (prometheus/promql/quantile.go `bucketQuantile`): the first bucket starts at 0; a rank in the
 * `+Inf` bucket answers the largest finite bound, since nothing better is known. (For `q = 0`
 * Prometheus answers NaN when the first bucket is empty; this answers the lower edge of the first
 * non-empty bucket.)
 */
export function quantile(q: number, counts: ArrayLike<number>): number | undefined {
  const bounds = LATENCY_BOUNDS_MS;
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return undefined;
  const rank = Math.min(1, Math.max(0, q)) * total;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    const inBucket = counts[i]!;
    if (below + inBucket >= rank && inBucket > 0) {
      const start = i === 0 ? 0 : bounds[i - 1]!;
      return start + (bounds[i]! - start) * ((rank - below) / inBucket);
    }
    below += inBucket;
  }
  return bounds[bounds.length - 1]!;
}
