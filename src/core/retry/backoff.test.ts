import { describe, expect, it } from "vitest";
import { DEFAULT_BACKOFF, backoffDelay, retryAfterMs } from "./index.ts";

describe("backoffDelay", () => {
  it("defaults to 25 ms growing to 250 ms", () => {
    expect(DEFAULT_BACKOFF).toEqual({ base: 25, max: 250 });
  });

  it("draws uniformly below (2^n − 1) × base for retry n, capped at max", () => {
    const top = () => 1;
    expect([1, 2, 3, 4, 10, 2_000].map((n) => backoffDelay(n, DEFAULT_BACKOFF, top))).toEqual([25, 75, 175, 250, 250, 250]);
  });

  it("is fully jittered: the random draw scales the whole wait, down to zero", () => {
    expect(backoffDelay(2, DEFAULT_BACKOFF, () => 0)).toBe(0);
    expect(backoffDelay(2, DEFAULT_BACKOFF, () => 0.5)).toBe(37.5);
  });
});

describe("retryAfterMs", () => {
  const with429 = (headers: Record<string, string>) => new Response(null, { status: 429, headers });

  it("reads delay-seconds", () => {
    expect(retryAfterMs(with429({ "retry-after": "3" }))).toBe(3_000);
  });

  it("reads an HTTP-date against the response's own date", () => {
    const response = with429({ "retry-after": "Wed, 21 Oct 2026 07:28:05 GMT", date: "Wed, 21 Oct 2026 07:28:00 GMT" });
    expect(retryAfterMs(response)).toBe(5_000);
  });

  it("treats a date already past as no wait", () => {
    const response = with429({ "retry-after": "Wed, 21 Oct 2026 07:27:00 GMT", date: "Wed, 21 Oct 2026 07:28:00 GMT" });
    expect(retryAfterMs(response)).toBe(0);
  });

  it("is undefined when absent or unreadable", () => {
    expect(retryAfterMs(with429({}))).toBeUndefined();
    expect(retryAfterMs(with429({ "retry-after": "soon" }))).toBeUndefined();
    expect(retryAfterMs(with429({ "retry-after": "-1" }))).toBeUndefined();
  });
});
