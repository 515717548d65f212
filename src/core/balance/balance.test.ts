import { describe, expect, it } from "vitest";
import { createManualClock, fakeUpstream, seededRandom, sequenceRandom, webResponse, type ManualClock } from "../../testing/index.ts";
import type { MeshResponse } from "../fetch.ts";
import type { Random } from "../clock.ts";
import { MeshError } from "../errors.ts";
import type { Fetch } from "../fetch.ts";
import { balance, createEndpointSet, createPeakEwma, type Algorithm, type EndpointInit } from "./index.ts";

const request = () => new Request("http://orders/items");

/** An endpoint that answers 200 with its own id after `delay` ms on `clock`, and counts calls. */
function endpoint(clock: ManualClock, id: string, delay = 0, weight?: number) {
  const upstream = fakeUpstream([new Response(id)], { clock, delay });
  const fetch: Fetch = async (req) => new Response(id, { status: (await upstream(req)).status });
  return { init: { id, fetch, ...(weight === undefined ? {} : { weight }) } satisfies EndpointInit, calls: () => upstream.calls() };
}

function setup(algorithm: Algorithm, endpoints: EndpointInit[], { clock = createManualClock(), random = sequenceRandom([0]) }: { clock?: ManualClock; random?: Random } = {}) {
  const set = createEndpointSet(endpoints, { failureAccrual: { clock, random: () => 0 } });
  const balancer = balance(set, { algorithm, clock, random });
  return { clock, set, balancer };
}

/** Which endpoint answered (each test endpoint answers with its id). */
const who = async (response: Promise<MeshResponse>) => (await webResponse(response)).text();

describe("createPeakEwma", () => {
  it("starts new endpoints at 30 ms", () => {
    expect(createPeakEwma({ clock: createManualClock() }).estimate()).toBe(30);
  });

  it("jumps to a slower RTT at once", () => {
    const ewma = createPeakEwma({ clock: createManualClock() });
    ewma.observe(250);
    expect(ewma.estimate()).toBe(250);
  });

  it("decays toward zero with a 10 s time constant while no one looks", async () => {
    const clock = createManualClock();
    const ewma = createPeakEwma({ clock });
    ewma.observe(100);
    await clock.advance(10_000);
    expect(ewma.estimate()).toBeCloseTo(100 / Math.E, 6);
  });

  it("blends a faster RTT in by the time since the last update", async () => {
    const clock = createManualClock();
    const ewma = createPeakEwma({ clock });
    ewma.observe(100);
    await clock.advance(10_000);
    ewma.observe(50);
    const w = Math.exp(-1);
    expect(ewma.estimate()).toBeCloseTo(100 * w + 50 * (1 - w), 6);
  });

  it("costs the estimate times the requests in flight plus one", () => {
    const ewma = createPeakEwma({ clock: createManualClock(), defaultRtt: 20 });
    ewma.pending = 2;
    expect(ewma.cost()).toBe(60);
  });
});

describe("balance: p2c-ewma", () => {
  it("sends the request to the cheaper of two endpoints, ties to the first drawn", async () => {
    const clock = createManualClock();
    const a = endpoint(clock, "a", 100);
    const b = endpoint(clock, "b", 100);
    const { balancer } = setup("p2c-ewma", [a.init, b.init], { clock });
    const first = who(balancer(request()));
    // a has one request in flight now: cost 30 × 2 against b's 30 × 1.
    const second = who(balancer(request()));
    await clock.advance(100);
    expect([await first, await second]).toEqual(["a", "b"]);
  });

  it("never compares an endpoint with itself", async () => {
    const clock = createManualClock();
    const [a, b, c] = [endpoint(clock, "a"), endpoint(clock, "b"), endpoint(clock, "c", 1_000)];
    // Every draw is 0.99: the first candidate is c; the second must be drawn from a and b.
    const { balancer } = setup("p2c-ewma", [a.init, b.init, c.init], { clock, random: () => 0.99 });
    const busy = balancer(request());
    expect(c.calls()).toBe(1);
    const next = balancer(request());
    expect([a.calls(), b.calls(), c.calls()]).toEqual([0, 1, 1]);
    await clock.advance(1_000);
    await Promise.all([busy, next]);
  });

  it("measures the RTT to the response headers, not the end of the body", async () => {
    const clock = createManualClock();
    let finish!: () => void;
    const streaming: Fetch = async () => {
      await new Promise((resolve) => clock.setTimeout(() => resolve(undefined), 50));
      const body = new ReadableStream({ start: (controller) => void (finish = () => controller.close()) });
      return new Response(body);
    };
    const { balancer } = setup("p2c-ewma", [{ id: "a", fetch: streaming }], { clock });
    const pending = balancer(request());
    await clock.advance(50);
    const response = await pending;
    await clock.advance(1_000);
    const [load] = balancer.loads();
    expect(load!.pending).toBe(0);
    expect(load!.rtt).toBeCloseTo(50 * Math.exp(-1_000 / 10_000), 6);
    finish();
    await (await webResponse(response)).text();
  });

  it("steers away from an endpoint as soon as it answers slowly", async () => {
    const clock = createManualClock();
    const a = endpoint(clock, "a", 100);
    const b = endpoint(clock, "b", 10);
    const { balancer } = setup("p2c-ewma", [a.init, b.init], { clock });
    const first = who(balancer(request()));
    await clock.advance(100);
    expect(await first).toBe("a");
    // a is drawn first every time, yet b (30 ms seed) now costs less than a (100 ms).
    for (let i = 0; i < 3; i++) {
      const next = balancer(request());
      expect([a.calls(), b.calls()]).toEqual([1, i + 1]);
      await clock.advance(10);
      await next;
    }
  });

  it("tries a slow endpoint again once its estimate has decayed below another's peak", async () => {
    const clock = createManualClock();
    const a = endpoint(clock, "a", 100);
    const b = endpoint(clock, "b", 60);
    // Draws: [a first, b second], then [b first, a second], then [a first, b second].
    const { balancer } = setup("p2c-ewma", [a.init, b.init], { clock, random: sequenceRandom([0, 0, 0.9, 0, 0, 0]) });
    const first = who(balancer(request()));
    await clock.advance(100);
    expect(await first).toBe("a");
    await clock.advance(10_000);
    // a ≈ 100/e ≈ 37 against b's decayed seed ≈ 11: b, which then peaks at 60.
    const second = balancer(request());
    expect([a.calls(), b.calls()]).toEqual([1, 1]);
    await clock.advance(60);
    await second;
    // a has decayed to ≈ 36, below b's fresh 60 (without decay a would still cost 100).
    const third = balancer(request());
    expect([a.calls(), b.calls()]).toEqual([2, 1]);
    await clock.advance(100);
    await third;
  });

  it("sends an endpoint of weight 3 three times the in-flight requests of one of weight 1", async () => {
    const clock = createManualClock();
    const a = endpoint(clock, "a", 100, 3);
    const b = endpoint(clock, "b", 100, 1);
    const { balancer } = setup("p2c-ewma", [a.init, b.init], { clock, random: seededRandom(7) });
    const all = Array.from({ length: 40 }, () => balancer(request()));
    expect(a.calls()).toBeGreaterThanOrEqual(29);
    expect(a.calls()).toBeLessThanOrEqual(31);
    await clock.advance(100);
    await Promise.all(all);
  });
});

describe("balance: round-robin", () => {
  it("takes the endpoints in turn", async () => {
    const clock = createManualClock();
    const { balancer } = setup("round-robin", ["a", "b", "c"].map((id) => endpoint(clock, id).init), { clock });
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(await who(balancer(request())));
    expect(order).toEqual(["a", "b", "c", "a", "b", "c"]);
  });

  it("spreads weights smoothly, as nginx does", async () => {
    const clock = createManualClock();
    const { balancer } = setup("round-robin", [endpoint(clock, "a", 0, 5).init, endpoint(clock, "b", 0, 1).init, endpoint(clock, "c", 0, 1).init], { clock });
    const order: string[] = [];
    for (let i = 0; i < 7; i++) order.push(await who(balancer(request())));
    expect(order).toEqual(["a", "a", "b", "a", "c", "a", "a"]);
  });
});

describe("balance: random", () => {
  it("draws endpoints in proportion to their weights", async () => {
    const clock = createManualClock();
    const a = endpoint(clock, "a", 0, 3);
    const b = endpoint(clock, "b", 0, 1);
    const { balancer } = setup("random", [a.init, b.init], { clock, random: seededRandom(42) });
    for (let i = 0; i < 4_000; i++) await balancer(request());
    expect(a.calls() / 4_000).toBeGreaterThan(0.72);
    expect(a.calls() / 4_000).toBeLessThan(0.78);
  });
});

describe.each(["p2c-ewma", "round-robin", "random"] as const)("balance: %s and the endpoint set", (algorithm) => {
  it("fails at once with no-endpoints when the set is empty", async () => {
    const { balancer } = setup(algorithm, []);
    const error = await balancer(request()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MeshError);
    expect((error as MeshError).code).toBe("no-endpoints");
    expect((error as MeshError).status).toBe(503);
  });

  it("fails at once with no-endpoints when every endpoint is ejected", async () => {
    const failing = fakeUpstream([503]);
    const { balancer } = setup(algorithm, [{ id: "a", fetch: failing }, { id: "b", fetch: failing }]);
    for (let i = 0; i < 14; i++) expect((await balancer(request())).status).toBe(503);
    await expect(balancer(request())).rejects.toMatchObject({ code: "no-endpoints" });
    expect(failing.calls()).toBe(14);
  });

  it("sends nothing to an ejected endpoint, and one request at a time once it is on probation", async () => {
    const clock = createManualClock();
    let healthy = false;
    const flaky: Fetch = async () => {
      await new Promise((resolve) => clock.setTimeout(() => resolve(undefined), 10));
      return new Response("a", { status: healthy ? 200 : 503 });
    };
    const b = endpoint(clock, "b");
    const set = createEndpointSet([{ id: "a", fetch: flaky }, b.init], { failureAccrual: { clock, random: () => 0, consecutiveFailures: 1 } });
    const balancer = balance(set, { algorithm, clock, random: sequenceRandom([0]) });
    // Only a is there at first; its failure ejects it for 1 s.
    set.update([{ id: "a", fetch: flaky }]);
    const failed = balancer(request());
    await clock.advance(10);
    expect((await failed).status).toBe(503);
    set.update([{ id: "a", fetch: flaky }, b.init]);
    for (let i = 0; i < 5; i++) expect(await who(balancer(request()))).toBe("b");
    await clock.advance(1_000);
    expect(set.get("a")!.state()).toBe("probation");
    // a takes one trial request (its turn, the first draw, or the cheaper cost) and nothing more meanwhile.
    healthy = true;
    const answers: Promise<string>[] = [];
    for (let i = 0; i < 20; i++) answers.push(who(balancer(request())));
    await clock.advance(10);
    const all = await Promise.all(answers);
    expect(all.filter((id) => id === "a")).toHaveLength(1);
    expect(set.get("a")!.state()).toBe("available");
  });

  it("keeps the state of endpoints that stay across an update, and starts new ones fresh", async () => {
    const clock = createManualClock();
    const a = endpoint(clock, "a", 200);
    const { set, balancer } = setup(algorithm, [a.init], { clock });
    const first = balancer(request());
    await clock.advance(200);
    await first;
    set.update([endpoint(clock, "c").init, a.init]);
    const loads = balancer.loads();
    expect(loads.map((l) => l.id)).toEqual(["c", "a"]);
    expect(loads[1]!.rtt).toBe(200);
    expect(loads[0]!.rtt).toBe(30);
  });

  it("lets a request to a removed endpoint finish, and never picks that endpoint again", async () => {
    const clock = createManualClock();
    const a = endpoint(clock, "a", 100);
    const b = endpoint(clock, "b");
    const { set, balancer } = setup(algorithm, [a.init], { clock });
    const inFlight = who(balancer(request()));
    set.update([b.init]);
    for (let i = 0; i < 5; i++) expect(await who(balancer(request()))).toBe("b");
    await clock.advance(100);
    expect(await inFlight).toBe("a");
    expect(a.calls()).toBe(1);
  });

  it("sends nothing to an endpoint of weight 0, and fails when all have weight 0", async () => {
    const clock = createManualClock();
    const a = endpoint(clock, "a", 0, 0);
    const b = endpoint(clock, "b", 0, 1);
    const { set, balancer } = setup(algorithm, [a.init, b.init], { clock, random: seededRandom(1) });
    for (let i = 0; i < 20; i++) await balancer(request());
    expect(a.calls()).toBe(0);
    set.update([a.init]);
    await expect(balancer(request())).rejects.toMatchObject({ code: "no-endpoints" });
  });

  it("passes an endpoint's thrown error through and stops counting the request as in flight", async () => {
    const refused = new TypeError("connection refused");
    const { balancer } = setup(algorithm, [{ id: "a", fetch: fakeUpstream([refused]) }]);
    await expect(balancer(request())).rejects.toBe(refused);
    expect(balancer.loads()[0]!.pending).toBe(0);
  });
});

describe("createEndpointSet", () => {
  it("lets a later entry with the same id replace an earlier one", () => {
    const fetch = fakeUpstream();
    const set = createEndpointSet([
      { id: "a", fetch, weight: 1 },
      { id: "b", fetch },
      { id: "a", fetch, weight: 4 },
    ]);
    expect(set.endpoints().map((e) => [e.id, e.weight])).toEqual([
      ["b", 1],
      ["a", 4],
    ]);
  });

  it("refuses a negative weight and leaves the set as it was", () => {
    const fetch = fakeUpstream();
    const set = createEndpointSet([{ id: "a", fetch }]);
    expect(() => set.update([{ id: "b", fetch }, { id: "c", fetch, weight: -1 }])).toThrow(RangeError);
    expect(set.endpoints().map((e) => e.id)).toEqual(["a"]);
  });

  it("runs without failure accrual when told to", async () => {
    const failing = fakeUpstream([503]);
    const set = createEndpointSet([{ id: "a", fetch: failing }], { failureAccrual: false });
    const balancer = balance(set, { clock: createManualClock() });
    for (let i = 0; i < 20; i++) expect((await balancer(request())).status).toBe(503);
    expect(set.get("a")!.state()).toBe("available");
  });

  it("reports each ejection through the observe hook", async () => {
    const ejected: string[] = [];
    const set = createEndpointSet([{ id: "a", fetch: fakeUpstream([503]) }], { failureAccrual: { clock: createManualClock(), observe: { ejected: (id) => ejected.push(id) } } });
    const balancer = balance(set, { clock: createManualClock() });
    for (let i = 0; i < 7; i++) await balancer(request());
    expect(ejected).toEqual(["a"]);
  });
});
