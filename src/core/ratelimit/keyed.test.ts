import { describe, expect, it } from "vitest";
import { createManualClock, fakeUpstream } from "../../testing/index.ts";
import { errorResponse } from "../errors.ts";
import { OwnedRequest, stack, withMeta } from "../fetch.ts";
import { HeaderList } from "../headers.ts";
import { createKeyedLimiter, keyedRateLimit, rateLimitKeyOf } from "./index.ts";

/** A manual clock whose time a long simulation sets directly (the limiters read only `now()`). */
const steppedClock = () => {
  const time = { ms: 0 };
  return { time, clock: { ...createManualClock(), now: () => time.ms } };
};

describe("createKeyedLimiter: Linkerd's fairness", () => {
  it("gives three callers at 3× their share each their share, and never limits a caller under its share", async () => {
    const { time, clock } = steppedClock();
    // Total 40/s, 10/s per caller: four callers' worth, so the quiet caller always fits.
    const limiter = createKeyedLimiter({ total: { rps: 40 }, perKey: { rps: 10 }, clock });
    const admitted = new Map<string, number>();
    let quietRefused = 0;
    // 60 s; the greedy callers send 30/s each (every 1/30 s), the quiet one 5/s.
    for (let step = 0; step < 60 * 30; step++) {
      time.ms = (step * 1000) / 30;
      for (const caller of ["a", "b", "c"]) if ((await limiter.take(caller)).ok) admitted.set(caller, (admitted.get(caller) ?? 0) + 1);
      if (step % 6 === 0 && !(await limiter.take("quiet")).ok) quietRefused++;
    }
    for (const caller of ["a", "b", "c"]) expect(admitted.get(caller)! / 60).toBeCloseTo(10, 0);
    expect(quietRefused).toBe(0);
  });

  it("lets the total bound all callers together, and a refused request takes from neither bucket", async () => {
    const { time, clock } = steppedClock();
    const limiter = createKeyedLimiter({ total: { rps: 10 }, perKey: { rps: 10 }, clock });
    let ok = 0;
    for (let step = 0; step < 10 * 100; step++) {
      time.ms = step * 10;
      for (const caller of ["a", "b", "c", "d"]) if ((await limiter.take(caller)).ok) ok++;
    }
    // 10 s at 10/s, plus the first second's worth at once.
    expect(ok).toBeGreaterThanOrEqual(100);
    expect(ok).toBeLessThanOrEqual(110);
  });

  it("gives an override its own rate", async () => {
    const clock = createManualClock();
    const limiter = createKeyedLimiter({ total: { rps: 1000 }, perKey: { rps: 2 }, overrides: [{ keys: ["vip"], rate: { rps: 20 } }], clock });
    let vip = 0;
    let plain = 0;
    for (let i = 0; i < 50; i++) {
      if ((await limiter.take("vip")).ok) vip++;
      if ((await limiter.take("plain")).ok) plain++;
    }
    expect(vip).toBe(20);
    expect(plain).toBe(2);
  });

  it("forgets the least recently seen keys past its bound, and the total still holds", async () => {
    const clock = createManualClock();
    const limiter = createKeyedLimiter({ total: { rps: 5 }, perKey: { rps: 1 }, maxKeys: 2, clock });
    let ok = 0;
    for (let i = 0; i < 100; i++) if ((await limiter.take(`k${i}`)).ok) ok++;
    expect(ok).toBe(5);
  });
});

describe("rateLimitKeyOf and keyedRateLimit", () => {
  const request = (headers: Record<string, string> = {}) => new OwnedRequest("GET", "http://api/", HeaderList.from(new Headers(headers)), null);

  it("keys by the end user, else the workload identity, else everyone unauthenticated together", () => {
    const key = { type: "client" } as const;
    expect(rateLimitKeyOf(request(), key)).toBe("");
    expect(rateLimitKeyOf(withMeta(request(), { client: "spiffe://t/ns/a/sa/b" }), key)).toBe("id:spiffe://t/ns/a/sa/b");
    const user = { issuer: "https://login", subject: "alice", audiences: [], claims: {} };
    expect(rateLimitKeyOf(withMeta(request(), { client: "spiffe://t/ns/a/sa/b", endUser: user }), key)).toBe("user:https://login alice");
  });

  it("keys by the host's client address before any cf-connecting-ip a client sent, and by a header", () => {
    expect(rateLimitKeyOf(withMeta(request({ "cf-connecting-ip": "1.1.1.1" }), { clientAddress: "10.0.0.7" }), { type: "ip" })).toBe("10.0.0.7");
    expect(rateLimitKeyOf(request({ "cf-connecting-ip": "1.1.1.1" }), { type: "ip" })).toBe("1.1.1.1");
    expect(rateLimitKeyOf(request({ "x-api-key": "k1" }), { type: "header", name: "x-api-key" })).toBe("k1");
  });

  it("refuses over the share with 429, retry-after and weft-error: rate-limited, per key", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([200]);
    const fetch = stack(upstream, keyedRateLimit(createKeyedLimiter({ total: { rps: 100 }, perKey: { rps: 1 }, clock }), { type: "header", name: "x-api-key" }));
    expect((await fetch(request({ "x-api-key": "a" }))).status).toBe(200);
    const refused = await fetch(request({ "x-api-key": "a" })).catch((error: unknown) => errorResponse(error));
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(refused.headers.get("weft-error")).toBe("rate-limited");
    expect((await fetch(request({ "x-api-key": "b" }))).status).toBe(200);
    expect(upstream.calls()).toBe(2);
  });
});
