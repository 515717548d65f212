import { describe, expect, it } from "vitest";
import { BUCKETS, LATENCY_BOUNDS_MS, bucketIndex, quantile } from "./histogram.ts";

function countsOf(latencies: number[]): Float64Array {
  const counts = new Float64Array(BUCKETS);
  for (const ms of latencies) counts[bucketIndex(ms)]! += 1;
  return counts;
}

describe("bucketIndex", () => {
  it("puts a value equal to a bound in that bound's bucket, as `le` means", () => {
    expect(bucketIndex(0)).toBe(0);
    expect(bucketIndex(1)).toBe(0);
    expect(bucketIndex(1.01)).toBe(1);
    expect(bucketIndex(10)).toBe(LATENCY_BOUNDS_MS.indexOf(10));
    expect(bucketIndex(10.5)).toBe(LATENCY_BOUNDS_MS.indexOf(20));
  });

  it("puts values beyond the last bound in the +Inf bucket", () => {
    expect(bucketIndex(50_000)).toBe(LATENCY_BOUNDS_MS.length - 1);
    expect(bucketIndex(50_001)).toBe(LATENCY_BOUNDS_MS.length);
    expect(BUCKETS).toBe(26);
  });
});

describe("quantile", () => {
  it("interpolates linearly inside the bucket that holds the rank, like histogram_quantile", () => {
    // 1..100 ms: 50 observations up to 50 ms, then 50 in (50, 100].
    const counts = countsOf(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(quantile(0.5, counts)).toBeCloseTo(50);
    expect(quantile(0.95, counts)).toBeCloseTo(95);
    expect(quantile(0.99, counts)).toBeCloseTo(99);
  });

  it("starts the first bucket at zero", () => {
    const counts = countsOf([0.5, 0.5, 0.5, 0.5]);
    expect(quantile(0.5, counts)).toBeCloseTo(0.5);
    expect(quantile(1, counts)).toBeCloseTo(1);
  });

  it("answers the largest finite bound when the rank falls in the +Inf bucket", () => {
    const counts = countsOf([5, 60_000, 70_000, 80_000]);
    expect(quantile(0.99, counts)).toBe(50_000);
    expect(quantile(0.1, counts)).toBeCloseTo(4 + (5 - 4) * 0.4);
  });

  it("answers undefined when nothing was observed", () => {
    expect(quantile(0.5, new Float64Array(BUCKETS))).toBeUndefined();
  });
});
