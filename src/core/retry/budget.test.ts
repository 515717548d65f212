import { describe, expect, it } from "vitest";
import { createManualClock } from "../../testing/index.ts";
import { DEFAULT_RETRY_BUDGET, createRetryBudget } from "./index.ts";

function withdrawals(budget: { withdraw(): boolean }, tries = 10_000): number {
  let n = 0;
  while (n < tries && budget.withdraw()) n++;
  return n;
}

describe("createRetryBudget", () => {
  it("defaults to Linkerd's budget: 20% extra, 10 retries a second, over 10 s", () => {
    expect(DEFAULT_RETRY_BUDGET).toEqual({ ratio: 0.2, minPerSecond: 10, ttl: 10_000 });
  });

  it("refuses every retry when there is no reserve and nothing was deposited", () => {
    const budget = createRetryBudget({ ratio: 1, minPerSecond: 0, ttl: 1_000, clock: createManualClock() });
    expect(budget.withdraw()).toBe(false);
  });

  it("always allows minPerSecond × ttl retries in a window, without deposits", () => {
    const budget = createRetryBudget({ ratio: 0.2, minPerSecond: 5, ttl: 1_000, clock: createManualClock() });
    expect(withdrawals(budget)).toBe(5);
    const longer = createRetryBudget({ ratio: 0.2, minPerSecond: 10, ttl: 10_000, clock: createManualClock() });
    expect(withdrawals(longer)).toBe(100);
  });

  it("allows ratio retries per deposit", () => {
    const budget = createRetryBudget({ ratio: 0.2, minPerSecond: 0, ttl: 1_000, clock: createManualClock() });
    for (let i = 0; i < 4; i++) budget.deposit();
    expect(budget.withdraw()).toBe(false);
    budget.deposit();
    expect(budget.withdraw()).toBe(true);
    expect(budget.withdraw()).toBe(false);
  });

  it("keeps ratios that are not a whole fraction exact", () => {
    const budget = createRetryBudget({ ratio: 0.3, minPerSecond: 0, ttl: 1_000, clock: createManualClock() });
    for (let i = 0; i < 100; i++) budget.deposit();
    expect(withdrawals(budget)).toBe(30);
  });

  it("allows several retries per deposit with a ratio above 1", () => {
    const budget = createRetryBudget({ ratio: 2, minPerSecond: 0, ttl: 1_000, clock: createManualClock() });
    budget.deposit();
    expect(withdrawals(budget)).toBe(2);
  });

  it("allows only the reserve with a ratio of 0", () => {
    const budget = createRetryBudget({ ratio: 0, minPerSecond: 1, ttl: 2_000, clock: createManualClock() });
    for (let i = 0; i < 100; i++) budget.deposit();
    expect(withdrawals(budget)).toBe(2);
  });

  it("forgets deposits once they leave the window", async () => {
    const clock = createManualClock();
    const budget = createRetryBudget({ ratio: 1, minPerSecond: 0, ttl: 1_000, clock });
    budget.deposit();
    await clock.advance(3_000);
    expect(budget.withdraw()).toBe(false);
  });

  it("expires deposits slot by slot, as Tower's TpsBudget does", async () => {
    const clock = createManualClock();
    const budget = createRetryBudget({ ratio: 0.5, minPerSecond: 0, ttl: 1_000, clock });
    budget.deposit();
    budget.deposit();
    await clock.advance(901);
    expect(budget.withdraw()).toBe(true);

    await clock.advance(2_001);
    budget.deposit();
    await clock.advance(301);
    budget.deposit();
    await clock.advance(801);
    budget.deposit();
    // The first of these three has left the window; the second and third still make one retry.
    expect(budget.withdraw()).toBe(true);
    expect(budget.withdraw()).toBe(false);
  });

  it("gives retries back once the window has passed since they were taken", async () => {
    const clock = createManualClock();
    const budget = createRetryBudget({ ratio: 0.2, minPerSecond: 2, ttl: 1_000, clock });
    expect(withdrawals(budget)).toBe(2);
    await clock.advance(500);
    expect(budget.withdraw()).toBe(false);
    await clock.advance(1_100);
    expect(withdrawals(budget)).toBe(2);
  });

  it("holds retries to ratio × requests + minPerSecond × ttl under steady failure", () => {
    // The budget reads only now(), so a bare counter stands in for the manual clock here.
    let now = 0;
    const clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} };
    const budget = createRetryBudget({ ...DEFAULT_RETRY_BUDGET, clock });
    let retries = 0;
    // 100 requests a second for 30 s, every one of them asking for a retry.
    for (; now < 30_000; now += 10) {
      budget.deposit();
      if (budget.withdraw()) retries++;
    }
    expect(retries).toBeLessThanOrEqual(0.2 * 3_000 + 10 * 30);
    expect(retries).toBeGreaterThan(0.2 * 3_000);
  });

  it.each([
    [{ ttl: 999 }, /ttl/],
    [{ ttl: 60_001 }, /ttl/],
    [{ ratio: -0.1 }, /ratio/],
    [{ ratio: 1_000.5 }, /ratio/],
    [{ minPerSecond: -1 }, /minPerSecond/],
  ])("refuses %j, outside the bounds Linkerd accepts", (options, message) => {
    expect(() => createRetryBudget(options)).toThrow(message);
  });
});
