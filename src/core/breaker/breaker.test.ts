import { describe, expect, it } from "vitest";
import { createManualClock, fakeUpstream, sequenceRandom } from "../../testing/index.ts";
import { deadline, propagateDeadline, timeout } from "../deadline/index.ts";
import { MeshError } from "../errors.ts";
import { own, stack, withMeta, type Fetch, type HostBody } from "../fetch.ts";
import { createFailureAccrual, failureAccrual, isFailure, penalty, type FailureAccrual, type FailureAccrualOptions } from "./index.ts";

const request = () => new Request("http://orders/items");

/** A breaker on a manual clock whose jitter draws are `draws` in turn (0 = no jitter). */
function setup(options: FailureAccrualOptions = {}, draws = [0]) {
  const clock = createManualClock();
  const ejected: string[] = [];
  const restored: string[] = [];
  const accrual = createFailureAccrual(
    { clock, random: sequenceRandom(draws), observe: { ejected: (id) => ejected.push(id), restored: (id) => restored.push(id) }, ...options },
    "orders-1",
  );
  return { clock, accrual, ejected, restored };
}

/** Admits and reports `n` requests with `outcome`, one after another. */
function report(accrual: FailureAccrual, outcome: "success" | "failure" | "ignored", n = 1) {
  for (let i = 0; i < n; i++) {
    const ticket = accrual.admit();
    if (!ticket) throw new Error(`request ${i + 1} was not admitted`);
    ticket(outcome);
  }
}

describe("createFailureAccrual", () => {
  it("ejects an endpoint on its seventh failure in a row, not its sixth", () => {
    const { accrual, ejected } = setup();
    report(accrual, "failure", 6);
    expect(accrual.state()).toBe("available");
    report(accrual, "failure");
    expect(accrual.state()).toBe("ejected");
    expect(accrual.ready()).toBe(false);
    expect(accrual.admit()).toBeUndefined();
    expect(ejected).toEqual(["orders-1"]);
  });

  it("starts counting again after a success", () => {
    const { accrual } = setup();
    report(accrual, "failure", 6);
    report(accrual, "success");
    report(accrual, "failure", 6);
    expect(accrual.state()).toBe("available");
  });

  it("honours a configured number of consecutive failures", () => {
    const { accrual } = setup({ consecutiveFailures: 2 });
    report(accrual, "failure", 2);
    expect(accrual.state()).toBe("ejected");
  });

  it("keeps the endpoint out for the minimum penalty, then puts it on probation", async () => {
    const { clock, accrual } = setup();
    report(accrual, "failure", 7);
    expect(accrual.ejectedUntil()).toBe(1_000);
    await clock.advance(999);
    expect(accrual.state()).toBe("ejected");
    await clock.advance(1);
    expect(accrual.state()).toBe("probation");
    expect(accrual.ejectedUntil()).toBeUndefined();
  });

  it("adds up to half the base penalty as jitter", async () => {
    const { clock, accrual } = setup({}, [0.998]);
    report(accrual, "failure", 7);
    expect(accrual.ejectedUntil()).toBe(1_499);
    await clock.advance(1_498);
    expect(accrual.state()).toBe("ejected");
  });

  it("admits exactly one request on probation, and its success brings the endpoint back", async () => {
    const { clock, accrual, restored } = setup();
    report(accrual, "failure", 7);
    await clock.advance(1_000);
    const trial = accrual.admit();
    expect(trial).toBeDefined();
    expect(accrual.ready()).toBe(false);
    expect(accrual.admit()).toBeUndefined();
    trial!("success");
    expect(accrual.state()).toBe("available");
    expect(restored).toEqual(["orders-1"]);
    report(accrual, "failure", 6);
    expect(accrual.state()).toBe("available");
  });

  it("ejects again for twice as long when the trial fails, up to the maximum", async () => {
    const { clock, accrual, ejected } = setup();
    report(accrual, "failure", 7);
    const penalties: number[] = [];
    for (let i = 0; i < 8; i++) {
      const start = clock.now();
      const until = accrual.ejectedUntil()!;
      penalties.push(until - start);
      await clock.advance(until - start);
      report(accrual, "failure");
    }
    expect(penalties).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
    expect(ejected).toHaveLength(9);
  });

  it("starts the penalty over from the minimum after a passed probation", async () => {
    const { clock, accrual } = setup();
    report(accrual, "failure", 7);
    await clock.advance(1_000);
    report(accrual, "failure");
    await clock.advance(2_000);
    report(accrual, "success");
    report(accrual, "failure", 7);
    expect(accrual.ejectedUntil()! - clock.now()).toBe(1_000);
  });

  it("frees the probation slot when the trial's outcome is ignored", async () => {
    const { clock, accrual } = setup();
    report(accrual, "failure", 7);
    await clock.advance(1_000);
    accrual.admit()!("ignored");
    expect(accrual.state()).toBe("probation");
    expect(accrual.ready()).toBe(true);
  });

  it("ignores answers to requests sent before the ejection", async () => {
    const { clock, accrual } = setup();
    const early = [accrual.admit()!, accrual.admit()!];
    report(accrual, "failure", 7);
    early[0]!("failure");
    expect(accrual.ejectedUntil()).toBe(1_000);
    await clock.advance(1_000);
    early[1]!("success");
    expect(accrual.state()).toBe("probation");
  });

  it("counts each ticket once", () => {
    const { accrual } = setup();
    const ticket = accrual.admit()!;
    for (let i = 0; i < 7; i++) ticket("failure");
    expect(accrual.state()).toBe("available");
  });

  it("refuses options Linkerd would refuse", () => {
    expect(() => createFailureAccrual({ consecutiveFailures: 0 })).toThrow(RangeError);
    expect(() => createFailureAccrual({ backoff: { min: 2_000, max: 1_000 } })).toThrow(RangeError);
    expect(() => createFailureAccrual({ backoff: { jitter: -1 } })).toThrow(RangeError);
  });
});

describe("penalty", () => {
  it("never goes past the maximum, whatever the jitter", () => {
    const backoff = { min: 1_000, max: 60_000, jitter: 0.5 };
    expect(penalty({ ...backoff, jitter: 2 }, 5, () => 0.99)).toBe(60_000);
    expect(penalty(backoff, 5, () => 0.5)).toBe(40_000);
    expect(penalty(backoff, 1_000_000, () => 0.5)).toBe(60_000);
    expect(penalty({ min: 0, max: 10, jitter: 0.5 }, 5_000, () => 0.5)).toBe(0);
  });
});

describe("isFailure", () => {
  it("counts thrown errors, 5xx and failing gRPC statuses, and nothing else", () => {
    const req = request();
    const grpc = (status: number) => new Response(null, { headers: { "content-type": "application/grpc", "grpc-status": String(status) } });
    expect(isFailure({ error: new TypeError("refused") }, req)).toBe(true);
    expect(isFailure({ response: new Response(null, { status: 500 }) }, req)).toBe(true);
    expect(isFailure({ response: new Response(null, { status: 503 }) }, req)).toBe(true);
    expect(isFailure({ response: grpc(14) }, req)).toBe(true);
    expect(isFailure({ response: new Response(null, { status: 200 }) }, req)).toBe(false);
    expect(isFailure({ response: new Response(null, { status: 404 }) }, req)).toBe(false);
    expect(isFailure({ response: new Response(null, { status: 429 }) }, req)).toBe(false);
    expect(isFailure({ response: grpc(5) }, req)).toBe(false);
  });
});

describe("failureAccrual", () => {
  it("passes 5xx responses through and ejects after seven of them", async () => {
    const { accrual } = setup();
    const upstream = fakeUpstream([503]);
    const fetch = failureAccrual(accrual)(upstream);
    for (let i = 0; i < 7; i++) expect((await fetch(request())).status).toBe(503);
    expect(accrual.state()).toBe("ejected");
  });

  it("refuses with no-endpoints while ejected, without calling the endpoint", async () => {
    const { accrual } = setup();
    const upstream = fakeUpstream([503]);
    const fetch = failureAccrual(accrual)(upstream);
    for (let i = 0; i < 7; i++) await fetch(request());
    const refused = await fetch(request()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(MeshError);
    expect((refused as MeshError).code).toBe("no-endpoints");
    expect(upstream.calls()).toBe(7);
  });

  it("rethrows an endpoint's error and counts it as a failure", async () => {
    const { accrual } = setup({ consecutiveFailures: 1 });
    const refused = new TypeError("connection refused");
    const fetch = failureAccrual(accrual)(fakeUpstream([refused]));
    await expect(fetch(request())).rejects.toBe(refused);
    expect(accrual.state()).toBe("ejected");
  });

  it("does not hold a caller's own abort against the endpoint", async () => {
    const { clock, accrual } = setup({ consecutiveFailures: 1 });
    const fetch = failureAccrual(accrual)(fakeUpstream([200], { clock, delay: 100 }));
    const controller = new AbortController();
    const pending = fetch(new Request("http://orders/", { signal: controller.signal }));
    controller.abort();
    await expect(pending).rejects.toThrow();
    expect(accrual.state()).toBe("available");
  });

  it("uses the configured classifier", async () => {
    const { accrual } = setup({ consecutiveFailures: 2, classify: (result) => result.response?.status === 404 });
    const fetch = failureAccrual(accrual)(fakeUpstream([500, 500, 404, 404]));
    for (let i = 0; i < 3; i++) await fetch(request());
    expect(accrual.state()).toBe("available");
    await fetch(request());
    expect(accrual.state()).toBe("ejected");
  });

  it("lets one probation request through and returns the endpoint on its success", async () => {
    const { clock, accrual } = setup();
    const fetch = failureAccrual(accrual)(fakeUpstream([503, 503, 503, 503, 503, 503, 503, 200], { clock, delay: 10 }));
    for (let i = 0; i < 7; i++) await clock.run(fetch(request()));
    await clock.advance(1_000);
    const trial = fetch(request());
    await expect(fetch(request())).rejects.toMatchObject({ code: "no-endpoints" });
    expect((await clock.run(trial)).status).toBe(200);
    expect(accrual.state()).toBe("available");
  });
});

describe("failureAccrual with deadlines", () => {
  /** An endpoint that never answers but lets its call be aborted, as a stopped process does. */
  const hung = (clock: ReturnType<typeof setup>["clock"]) => fakeUpstream([200], { clock, delay: 3_600_000 });

  it("counts a call cut off by the request's deadline as a failure, and ejects the endpoint", async () => {
    const { clock, accrual, ejected } = setup({ consecutiveFailures: 2 });
    const fetch = stack(hung(clock), deadline({ timeout: 100, clock }), failureAccrual(accrual));
    for (let i = 0; i < 2; i++) await expect(clock.run(fetch(request()))).rejects.toMatchObject({ code: "deadline-exceeded" });
    expect(accrual.state()).toBe("ejected");
    expect(ejected).toEqual(["orders-1"]);
    await expect(fetch(request())).rejects.toMatchObject({ code: "no-endpoints" });
  });

  it("counts a caller's budget (weft-timeout-ms) running out as a failure", async () => {
    const { clock, accrual } = setup({ consecutiveFailures: 1 });
    const fetch = stack(hung(clock), deadline({ clock }), failureAccrual(accrual));
    await expect(clock.run(fetch(new Request("http://orders/", { headers: { "weft-timeout-ms": "50" } })))).rejects.toMatchObject({ code: "deadline-exceeded" });
    expect(accrual.state()).toBe("ejected");
  });

  it("counts a per-try timeout as a failure", async () => {
    const { clock, accrual } = setup({ consecutiveFailures: 1 });
    const fetch = stack(hung(clock), timeout(100, { clock }), failureAccrual(accrual));
    await expect(clock.run(fetch(request()))).rejects.toMatchObject({ code: "deadline-exceeded" });
    expect(accrual.state()).toBe("ejected");
  });

  it("counts a timeout thrown from below the layer as a failure", async () => {
    const { clock, accrual } = setup({ consecutiveFailures: 1 });
    const fetch = stack(hung(clock), failureAccrual(accrual), timeout(100, { clock }));
    await expect(clock.run(fetch(request()))).rejects.toMatchObject({ code: "deadline-exceeded" });
    expect(accrual.state()).toBe("ejected");
  });

  it("decides when the deadline fires, even when the endpoint's call never settles", async () => {
    const { clock, accrual } = setup({ consecutiveFailures: 1 });
    const deaf: Fetch = () => new Promise<Response>(() => {});
    const fetch = stack(deaf, deadline({ timeout: 100, clock }), failureAccrual(accrual));
    await expect(clock.run(fetch(request()))).rejects.toMatchObject({ code: "deadline-exceeded" });
    expect(accrual.state()).toBe("ejected");
  });

  it("does not count a caller that goes away before the deadline", async () => {
    const { clock, accrual } = setup({ consecutiveFailures: 1 });
    const fetch = stack(hung(clock), deadline({ timeout: 1_000, clock }), failureAccrual(accrual));
    const caller = new AbortController();
    const pending = fetch(new Request("http://orders/", { signal: caller.signal }));
    pending.catch(() => {});
    await clock.advance(10);
    caller.abort();
    await expect(pending).rejects.toMatchObject({ code: "deadline-exceeded" });
    await clock.advance(2_000);
    expect(accrual.state()).toBe("available");
    // The count did not move either: one real failure is what it takes.
    await expect(clock.run(stack(hung(clock), deadline({ timeout: 100, clock }), failureAccrual(accrual))(request()))).rejects.toThrow();
    expect(accrual.state()).toBe("ejected");
  });

  it("does not count a timeout while the caller was still sending the body, and counts one after", async () => {
    const { clock, accrual } = setup({ consecutiveFailures: 1 });
    const fetch = stack(hung(clock), deadline({ timeout: 100, clock }), failureAccrual(accrual));
    const body = (complete: boolean): HostBody => ({ complete, stream: () => new ReadableStream(), cancel: () => {} });
    const sending = own(new Request("http://orders/", { method: "POST" })).fork({ body: body(false) });
    await expect(clock.run(fetch(sending))).rejects.toMatchObject({ code: "deadline-exceeded" });
    expect(accrual.state()).toBe("available");
    const sent = own(new Request("http://orders/", { method: "POST" })).fork({ body: body(true) });
    await expect(clock.run(fetch(sent))).rejects.toMatchObject({ code: "deadline-exceeded" });
    expect(accrual.state()).toBe("ejected");
  });

  it("does not count a request whose budget was spent before it was forwarded", async () => {
    const { clock, accrual } = setup({ consecutiveFailures: 1 });
    const upstream = fakeUpstream([200]);
    const fetch = stack(upstream, failureAccrual(accrual), propagateDeadline({ clock }));
    await expect(fetch(withMeta(request(), { deadline: clock.now() + 0.5 }))).rejects.toMatchObject({ code: "deadline-exceeded" });
    expect(upstream.calls()).toBe(0);
    expect(accrual.state()).toBe("available");
  });

  it("counts a refused or reset connection as a failure, and not the mesh's own refusals", async () => {
    const { accrual } = setup({ consecutiveFailures: 2 });
    const fetch = failureAccrual(accrual)(
      fakeUpstream([new MeshError("unauthenticated", "no token for orders yet"), new MeshError("upstream-unreachable", "refused"), new TypeError("reset")]),
    );
    await expect(fetch(request())).rejects.toMatchObject({ code: "unauthenticated" });
    await expect(fetch(request())).rejects.toMatchObject({ code: "upstream-unreachable" });
    expect(accrual.state()).toBe("available");
    await expect(fetch(request())).rejects.toBeInstanceOf(TypeError);
    expect(accrual.state()).toBe("ejected");
  });

  it("ejects again, for twice as long, when the probation trial times out", async () => {
    const { clock, accrual, ejected } = setup({ consecutiveFailures: 1 });
    const fetch = stack(hung(clock), deadline({ timeout: 100, clock }), failureAccrual(accrual));
    await expect(clock.run(fetch(request()))).rejects.toThrow();
    await clock.advance(accrual.ejectedUntil()! - clock.now());
    expect(accrual.state()).toBe("probation");
    const trialStart = clock.now();
    await expect(clock.run(fetch(request()))).rejects.toMatchObject({ code: "deadline-exceeded" });
    expect(ejected).toHaveLength(2);
    expect(accrual.ejectedUntil()! - trialStart).toBe(100 + 2_000);
  });
});
