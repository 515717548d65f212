import { describe, expect, it } from "vitest";
import { createManualClock, fakeUpstream } from "../../testing/index.ts";
import { MeshError, errorResponse } from "../errors.ts";
import { stack } from "../fetch.ts";
import { createRateLimiter, rateLimit } from "./index.ts";

/** A manual clock whose time a long simulation sets directly (the limiter reads only `now()`). */
const steppedClock = () => {
  const time = { ms: 0 };
  return { time, clock: { ...createManualClock(), now: () => time.ms } };
};

const admitted = (take: () => { ok: boolean }, n: number) => {
  let ok = 0;
  for (let i = 0; i < n; i++) if (take().ok) ok++;
  return ok;
};

describe("createRateLimiter", () => {
  it("admits burst + 1 requests at once, then one per 1/rps", async () => {
    const clock = createManualClock(1_000);
    const limiter = createRateLimiter({ rps: 10, burst: 4, clock });
    expect(admitted(() => limiter.take(), 20)).toBe(5);
    await clock.advance(99);
    expect(limiter.take().ok).toBe(false);
    await clock.advance(1);
    expect(limiter.take().ok).toBe(true);
    expect(limiter.take().ok).toBe(false);
  });

  it("with burst 0 admits exactly rps: requests spaced 1/rps apart and never two at once", () => {
    const { time, clock } = steppedClock();
    const limiter = createRateLimiter({ rps: 4, burst: 0, clock });
    let ok = 0;
    for (time.ms = 0; time.ms < 10_000; time.ms += 5) {
      if (limiter.take().ok) ok++;
      if (limiter.take().ok) ok++;
    }
    expect(ok).toBe(40);
  });

  it("holds the steady rate over a long run at a fractional interval", () => {
    const { time, clock } = steppedClock();
    const limiter = createRateLimiter({ rps: 3, burst: 2, clock });
    let ok = 0;
    // One request a millisecond for 60 s: the 3 of the initial burst, then one every
    // 333.3 ms, the last of them at 59,666.7 ms.
    for (time.ms = 0; time.ms < 60_000; time.ms += 1) if (limiter.take().ok) ok++;
    expect(ok).toBe(3 + 3 * 60 - 1);
  });

  it("refills after idling up to the burst and no further", async () => {
    const clock = createManualClock();
    const limiter = createRateLimiter({ rps: 1, burst: 2, clock });
    expect(admitted(() => limiter.take(), 10)).toBe(3);
    await clock.advance(60_000);
    expect(admitted(() => limiter.take(), 10)).toBe(3);
  });

  it("does not spend capacity on refused requests", async () => {
    const clock = createManualClock();
    const limiter = createRateLimiter({ rps: 1, clock });
    expect(limiter.take().ok).toBe(true);
    for (let i = 0; i < 100; i++) expect(limiter.take().ok).toBe(false);
    await clock.advance(1_000);
    expect(limiter.take().ok).toBe(true);
  });

  it("says how long to wait, in whole seconds rounded up and at least 1", async () => {
    const clock = createManualClock();
    const fast = createRateLimiter({ rps: 100, clock });
    fast.take();
    expect(fast.take()).toEqual({ ok: false, retryAfter: 1, waitMs: 10 });
    const slow = createRateLimiter({ rps: 0.4, clock });
    slow.take();
    await clock.advance(500);
    expect(slow.take()).toEqual({ ok: false, retryAfter: 2, waitMs: 2_000 });
    await clock.advance(2_000);
    expect(slow.take().ok).toBe(true);
  });

  it("rejects a rate or burst the schema would not have let through", () => {
    expect(() => createRateLimiter({ rps: 0 })).toThrow(TypeError);
    expect(() => createRateLimiter({ rps: Number.NaN })).toThrow(TypeError);
    expect(() => createRateLimiter({ rps: 1, burst: -1 })).toThrow(TypeError);
    expect(() => createRateLimiter({ rps: 1, burst: 1.5 })).toThrow(TypeError);
  });
});

describe("rateLimit", () => {
  it("passes admitted requests and refuses the rest with rate-limited before the upstream", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([200]);
    const fetch = stack(upstream, rateLimit({ rps: 2, burst: 1, clock }));
    expect((await fetch(new Request("http://orders/"))).status).toBe(200);
    expect((await fetch(new Request("http://orders/"))).status).toBe(200);
    const refused = await fetch(new Request("http://orders/")).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(MeshError);
    expect((refused as MeshError).code).toBe("rate-limited");
    expect((refused as MeshError).retryAfter).toBe(1);
    expect(upstream.calls()).toBe(2);
  });

  it("becomes a 429 with retry-after in whole seconds", async () => {
    const clock = createManualClock();
    const limiter = createRateLimiter({ rps: 0.25, clock });
    const fetch = stack(fakeUpstream([200]), rateLimit(limiter));
    await fetch(new Request("http://orders/"));
    await clock.advance(1_500);
    const response = await fetch(new Request("http://orders/")).catch((error: unknown) => errorResponse(error));
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toBe("3");
    expect(response.headers.get("weft-error")).toBe("rate-limited");
  });

  it("shares one limiter between the layers given it", async () => {
    const clock = createManualClock();
    const limiter = createRateLimiter({ rps: 1, clock });
    const a = stack(fakeUpstream([200]), rateLimit(limiter));
    const b = stack(fakeUpstream([200]), rateLimit(limiter));
    expect((await a(new Request("http://orders/"))).status).toBe(200);
    await expect(b(new Request("http://orders/"))).rejects.toThrow(MeshError);
  });
});
