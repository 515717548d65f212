import { describe, expect, it } from "vitest";
import { RateLimitSchema } from "../../src/core/config/index.ts";
import { createKeyedLimiter } from "../../src/core/ratelimit/index.ts";
import { createManualClock } from "../../src/testing/index.ts";
import { bindingLimiter } from "./rate-limit.ts";

/** A stand-in for the Rate Limiting binding: `limit` per key, one window, every key it saw. */
function fakeBinding(limit: number) {
  const counts = new Map<string, number>();
  return {
    keys: counts,
    async limit({ key }: { key: string }) {
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      return { success: n <= limit };
    },
  };
}

describe("bindingLimiter", () => {
  const config = RateLimitSchema.parse({ rps: 1000, perKey: { rps: 1 }, overrides: [{ keys: ["vip"], rps: 3 }] });
  const setup = (perKey: { limit(o: { key: string }): Promise<{ success: boolean }> }) => {
    const clock = createManualClock();
    const local = createKeyedLimiter({ total: { rps: 1000 }, perKey: { rps: 1 }, overrides: [{ keys: ["vip"], rate: { rps: 3 } }], clock });
    return bindingLimiter("api/items", config, local, { perKey, period: 10, now: () => 23_500 });
  };

  it("counts each key under its scope in the binding, and says to retry at the window's end", async () => {
    const binding = fakeBinding(2);
    const limiter = setup(binding);
    expect((await limiter.take("alice")).ok).toBe(true);
    expect((await limiter.take("alice")).ok).toBe(true);
    expect(await limiter.take("alice")).toEqual({ ok: false, retryAfter: 7, waitMs: 6_500 });
    expect([...binding.keys.keys()]).toEqual(["api/items|alice"]);
  });

  it("keeps an overridden key per isolate at its own rate, out of the binding", async () => {
    const binding = fakeBinding(1);
    const limiter = setup(binding);
    let ok = 0;
    for (let i = 0; i < 10; i++) if ((await limiter.take("vip")).ok) ok++;
    expect(ok).toBe(3);
    expect(binding.keys.size).toBe(0);
  });

  it("falls back to the per-isolate count when the binding fails", async () => {
    const limiter = setup({ limit: async () => Promise.reject(new Error("binding unavailable")) });
    expect((await limiter.take("bob")).ok).toBe(true);
    expect((await limiter.take("bob")).ok).toBe(false);
  });
});
