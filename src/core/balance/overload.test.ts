/**
 * 429-aware balancing (Linkerd 2.20): an endpoint that answers 429 or gRPC RESOURCE_EXHAUSTED
 * is held out for its `retry-after`, on the manual clock.
 */
import { describe, expect, it } from "vitest";
import { createManualClock, meshErrorOf, seededRandom } from "../../testing/index.ts";
import { stack, type Fetch } from "../fetch.ts";
import { createRetryBudget, retry } from "../retry/index.ts";
import { balance, createEndpointSet, type Algorithm } from "./index.ts";

const request = () => new Request("http://orders/items");

/** Two endpoints, `busy` answering `answer()` and `idle` answering 200; each counts its calls. */
function setup(algorithm: Algorithm, answer: () => Response) {
  const clock = createManualClock();
  const calls = { busy: 0, idle: 0 };
  const busy: Fetch = async () => {
    calls.busy++;
    return answer();
  };
  const idle: Fetch = async () => {
    calls.idle++;
    return new Response("idle");
  };
  const set = createEndpointSet([{ id: "busy", fetch: busy }, { id: "idle", fetch: idle }], { failureAccrual: { clock, random: () => 0 } });
  const balancer = balance(set, { algorithm, clock, random: seededRandom(7) });
  return { clock, calls, set, balancer };
}

const tooMany = (retryAfter?: string) => new Response("slow down", { status: 429, headers: retryAfter === undefined ? {} : { "retry-after": retryAfter } });

describe("balance: endpoints that answer 429", () => {
  for (const algorithm of ["p2c-ewma", "round-robin"] as const) {
    it(`${algorithm}: an endpoint answering 429 with retry-after: 2 gets no traffic for 2 s, then gets traffic again`, async () => {
      let overloaded = true;
      const { clock, calls, balancer } = setup(algorithm, () => (overloaded ? tooMany("2") : new Response("busy")));
      // Until it first answers, the busy endpoint is picked like any other.
      while (calls.busy === 0) expect((await balancer(request())).status).toBeLessThan(500);
      expect(calls.busy).toBe(1);
      overloaded = false;
      // 1.99 s of calls, every 10 ms: none reach it.
      for (let t = 0; t < 199; t++) {
        await balancer(request());
        await clock.advance(10);
      }
      expect(calls.busy).toBe(1);
      expect(calls.idle).toBeGreaterThanOrEqual(199);
      await clock.advance(10);
      // 2 s after its 429: back in the rotation, without a probation trial first.
      const before = calls.busy;
      for (let i = 0; i < 100; i++) await balancer(request());
      expect(calls.busy - before).toBeGreaterThan(20);
    });
  }

  it("holds out for 1 s (Linkerd's minimum penalty) when the 429 names no retry-after", async () => {
    const { clock, calls, set, balancer } = setup("round-robin", () => tooMany());
    while (calls.busy === 0) await balancer(request());
    expect(set.get("busy")!.state()).toBe("ejected");
    await clock.advance(999);
    expect(set.get("busy")!.ready()).toBe(false);
    await clock.advance(1);
    expect(set.get("busy")!.ready()).toBe(true);
  });

  it("treats gRPC RESOURCE_EXHAUSTED like a 429", async () => {
    const grpc = () => new Response(null, { status: 200, headers: { "content-type": "application/grpc", "grpc-status": "8", "retry-after": "3" } });
    const { clock, calls, set, balancer } = setup("round-robin", grpc);
    while (calls.busy === 0) await balancer(request());
    await clock.advance(2_999);
    expect(set.get("busy")!.ready()).toBe(false);
    await clock.advance(1);
    expect(set.get("busy")!.ready()).toBe(true);
  });

  it("does not hold out an endpoint whose sidecar refused a request as too large (gRPC RESOURCE_EXHAUSTED from the mesh)", async () => {
    const tooLarge = () => new Response(null, { status: 200, headers: { "content-type": "application/grpc", "grpc-status": "8", "weft-error": "payload-too-large" } });
    const { calls, set, balancer } = setup("round-robin", tooLarge);
    while (calls.busy === 0) await balancer(request());
    expect(set.get("busy")!.ready()).toBe(true);
  });

  it("does not count a 429 toward ejection, nor let it clear a failure streak", async () => {
    let status = 500;
    const { clock, set, balancer } = setup("round-robin", () => (status === 429 ? tooMany("1") : new Response("x", { status })));
    const busy = set.get("busy")!;
    // Six 5xx in a row (one short of Linkerd's seven), then a 429, then one more 5xx: ejected.
    let failures = 0;
    while (failures < 6) if ((await balancer(request())).status === 500) failures++;
    status = 429;
    while ((await balancer(request())).status !== 429);
    await clock.advance(1_000);
    status = 500;
    while ((await balancer(request())).status !== 500);
    expect(busy.accrual!.ejectedUntil()).toBeDefined();
  });

  it("answers overloaded with the soonest retry-after when every endpoint is held out", async () => {
    const clock = createManualClock();
    const answer: Fetch = async () => tooMany("5");
    const set = createEndpointSet([{ id: "a", fetch: answer }, { id: "b", fetch: answer }], { failureAccrual: { clock } });
    const balancer = balance(set, { algorithm: "round-robin", clock });
    expect((await balancer(request())).status).toBe(429);
    await clock.advance(2_000);
    expect((await balancer(request())).status).toBe(429);
    const error = await meshErrorOf(balancer(request()));
    expect(error.code).toBe("overloaded");
    expect(error.retryAfter).toBe(3);
  });

  it("caps a retry-after at the penalty's max, so an endpoint cannot hold itself out for a day", async () => {
    const clock = createManualClock();
    const answer: Fetch = async () => tooMany("86400");
    const set = createEndpointSet([{ id: "a", fetch: answer }], { failureAccrual: { clock, backoff: { max: 60_000 } } });
    const balancer = balance(set, { clock });
    await balancer(request());
    await clock.advance(59_999);
    expect(set.get("a")!.ready()).toBe(false);
    await clock.advance(1);
    expect(set.get("a")!.ready()).toBe(true);
  });

  it("a retried 429 waits its retry-after, then goes to an endpoint that is not held out, and only while the budget allows", async () => {
    for (const budgetLeft of [true, false]) {
      const { clock, calls, balancer } = setup("round-robin", () => tooMany("1"));
      const budget = createRetryBudget({ ratio: 0, minPerSecond: budgetLeft ? 10 : 0, ttl: 10_000, clock });
      const fetch = stack(balancer, retry({ limit: 1, on: ["429"], budget, clock, random: () => 0.5 }));
      // Round-robin starts on "busy": it answers 429, is held out, and the retry goes to "idle".
      const pending = fetch(new Request("http://orders/items"));
      await clock.advance(1_000);
      const response = await pending;
      expect(calls.busy).toBe(1);
      expect(response.status).toBe(budgetLeft ? 200 : 429);
      expect(calls.idle).toBe(budgetLeft ? 1 : 0);
    }
  });
});
