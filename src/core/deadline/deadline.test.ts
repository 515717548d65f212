import { describe, expect, it } from "vitest";
import { createManualClock, fakeUpstream, meshErrorOf } from "../../testing/index.ts";
import { MeshError } from "../errors.ts";
import { metaOf, stack, withMeta, type Fetch, type MeshHeaders } from "../fetch.ts";
import { deadline, isPerTryTimeout, isTimeout, propagateDeadline, timeout } from "./index.ts";

/** An upstream that remembers the deadline and signal each request reached it with. */
function recording(answer: Fetch = async () => new Response("ok")) {
  const seen: { deadline: number | undefined; signal: AbortSignal | undefined; headers: MeshHeaders }[] = [];
  const upstream: Fetch = (request) => {
    seen.push({ deadline: metaOf(request).deadline, signal: request.signal, headers: request.headers });
    return answer(request);
  };
  return { upstream, seen };
}

/** An upstream that never answers on its own and ignores its signal. */
const stuck: Fetch = () => new Promise<Response>(() => {});

describe("deadline", () => {
  it("sets the request's deadline from the caller's weft-timeout-ms", async () => {
    const clock = createManualClock(1_000);
    const { upstream, seen } = recording();
    const fetch = stack(upstream, deadline({ clock }));
    await fetch(new Request("http://orders/", { headers: { "weft-timeout-ms": "300" } }));
    expect(seen[0]!.deadline).toBe(1_300);
  });

  it("takes the route timeout when it is shorter than the caller's budget", async () => {
    const clock = createManualClock();
    const { upstream, seen } = recording();
    const fetch = stack(upstream, deadline({ clock, timeout: 200 }));
    await fetch(new Request("http://orders/", { headers: { "weft-timeout-ms": "300" } }));
    await fetch(new Request("http://orders/", { headers: { "weft-timeout-ms": "150" } }));
    expect(seen.map((s) => s.deadline)).toEqual([200, 150]);
  });

  it("never extends a deadline an outer layer already set", async () => {
    const clock = createManualClock();
    const { upstream, seen } = recording();
    const fetch = stack(upstream, deadline({ clock, timeout: 500 }));
    await fetch(withMeta(new Request("http://orders/"), { deadline: 40 }));
    expect(seen[0]!.deadline).toBe(40);
  });

  it("uses the gRPC caller's grpc-timeout", async () => {
    const clock = createManualClock();
    const { upstream, seen } = recording();
    const fetch = stack(upstream, deadline({ clock }));
    await fetch(new Request("http://orders/pkg.Orders/Get", { method: "POST", headers: { "content-type": "application/grpc", "grpc-timeout": "2S" } }));
    expect(seen[0]!.deadline).toBe(2_000);
  });

  it("ignores a malformed budget and falls back to the route timeout", async () => {
    const clock = createManualClock();
    const { upstream, seen } = recording();
    const fetch = stack(upstream, deadline({ clock, timeout: 250 }));
    await fetch(new Request("http://orders/", { headers: { "weft-timeout-ms": "-1" } }));
    expect(seen[0]!.deadline).toBe(250);
  });

  it("passes a request with no budget and no timeout through untouched", async () => {
    const { upstream, seen } = recording();
    const fetch = stack(upstream, deadline({ clock: createManualClock() }));
    const request = new Request("http://orders/");
    await fetch(request);
    expect(seen[0]!.deadline).toBeUndefined();
    expect(seen[0]!.signal).toBe(request.signal);
  });

  it("fails fast with deadline-exceeded, without calling upstream, when the budget is spent", async () => {
    const upstream = fakeUpstream();
    const fetch = stack(upstream, deadline({ clock: createManualClock() }));
    const error = await meshErrorOf(fetch(new Request("http://orders/", { headers: { "weft-timeout-ms": "0" } })));
    expect(error.code).toBe("deadline-exceeded");
    expect(error.status).toBe(504);
    expect(upstream.calls()).toBe(0);
  });

  it("aborts the upstream call when the deadline passes and answers deadline-exceeded", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([200], { clock, delay: 1_000 });
    const fetch = stack(upstream, deadline({ clock, timeout: 100 }));
    const result = meshErrorOf(fetch(new Request("http://orders/")));
    await clock.advance(99);
    expect(upstream.requests[0]!.signal!.aborted).toBe(false);
    await clock.advance(1);
    const error = await result;
    expect(error.code).toBe("deadline-exceeded");
    expect(upstream.requests[0]!.signal!.aborted).toBe(true);
  });

  it("gives up at the deadline even when the upstream ignores its signal", async () => {
    const clock = createManualClock();
    const fetch = stack(stuck, deadline({ clock, timeout: 100 }));
    const error = await meshErrorOf(clock.run(fetch(new Request("http://orders/"))));
    expect(error.code).toBe("deadline-exceeded");
    expect(clock.now()).toBe(100);
  });

  it("carries the caller's cancellation to the upstream call", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([200], { clock, delay: 1_000 });
    const fetch = stack(upstream, deadline({ clock, timeout: 5_000 }));
    const caller = new AbortController();
    const result = meshErrorOf(fetch(new Request("http://orders/", { signal: caller.signal })));
    await clock.advance(10);
    caller.abort();
    const error = await result;
    expect(error.code).toBe("deadline-exceeded");
    expect(upstream.requests[0]!.signal!.aborted).toBe(true);
  });

  it("stops its timer once the response arrives", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([200], { clock, delay: 10 });
    const fetch = stack(upstream, deadline({ clock, timeout: 100 }));
    const response = await clock.run(fetch(new Request("http://orders/")));
    expect(response.status).toBe(200);
    expect(clock.pending()).toBe(0);
    expect(upstream.requests[0]!.signal!.aborted).toBe(false);
  });

  it("passes upstream 5xx responses through as responses", async () => {
    const fetch = stack(fakeUpstream([503]), deadline({ clock: createManualClock(), timeout: 100 }));
    expect((await fetch(new Request("http://orders/"))).status).toBe(503);
  });
});

describe("timeout (per try)", () => {
  it("narrows the deadline for one try and leaves the request's own deadline alone", async () => {
    const clock = createManualClock();
    const { upstream, seen } = recording();
    const outer: { deadline: number | undefined }[] = [];
    const fetch = stack(
      upstream,
      deadline({ clock, timeout: 1_000 }),
      (next) => async (request) => {
        const response = await next(request);
        outer.push({ deadline: metaOf(request).deadline });
        return response;
      },
      timeout(100, { clock }),
    );
    await fetch(new Request("http://orders/"));
    expect(seen[0]!.deadline).toBe(100);
    expect(outer[0]!.deadline).toBe(1_000);
  });

  it("aborts a slow try with a deadline-exceeded error marked as a per-try timeout", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([200], { clock, delay: 1_000 });
    const fetch = stack(upstream, timeout(100, { clock }));
    const error = await meshErrorOf(clock.run(fetch(new Request("http://orders/"))));
    expect(error.code).toBe("deadline-exceeded");
    expect(isPerTryTimeout(error)).toBe(true);
    expect(upstream.requests[0]!.signal!.aborted).toBe(true);
    expect(clock.now()).toBe(100);
  });

  it("steps aside when the request's own deadline comes first, which is not a per-try timeout", async () => {
    const clock = createManualClock();
    const { upstream, seen } = recording(stuck);
    const fetch = stack(upstream, deadline({ clock, timeout: 50 }), timeout(100, { clock }));
    const error = await meshErrorOf(clock.run(fetch(new Request("http://orders/"))));
    expect(seen[0]!.deadline).toBe(50);
    expect(error.code).toBe("deadline-exceeded");
    expect(isPerTryTimeout(error)).toBe(false);
  });

  it("does not mark other errors as per-try timeouts", () => {
    expect(isPerTryTimeout(new MeshError("deadline-exceeded", "late"))).toBe(false);
    expect(isPerTryTimeout(new TypeError("fetch failed"))).toBe(false);
  });

  it("does nothing when given zero", async () => {
    const clock = createManualClock();
    const { upstream, seen } = recording();
    await stack(upstream, timeout(0, { clock }))(new Request("http://orders/"));
    expect(seen[0]!.deadline).toBeUndefined();
  });
});

describe("propagateDeadline", () => {
  it("writes the time left in whole milliseconds, rounded down", async () => {
    const clock = createManualClock();
    const { upstream, seen } = recording();
    const fetch = stack(upstream, propagateDeadline({ clock }));
    await clock.advance(30.4);
    await fetch(withMeta(new Request("http://orders/", { headers: { "weft-timeout-ms": "100" } }), { deadline: 100 }));
    expect(seen[0]!.headers.get("weft-timeout-ms")).toBe("69");
  });

  it("rewrites grpc-timeout for gRPC requests only", async () => {
    const clock = createManualClock();
    const { upstream, seen } = recording();
    const fetch = stack(upstream, propagateDeadline({ clock }));
    const grpc = new Request("http://orders/pkg.Orders/Get", { method: "POST", headers: { "content-type": "application/grpc", "grpc-timeout": "5S" } });
    await fetch(withMeta(grpc, { deadline: 1_500 }));
    await fetch(withMeta(new Request("http://orders/"), { deadline: 1_500 }));
    expect(seen[0]!.headers.get("grpc-timeout")).toBe("1500000u");
    expect(seen[0]!.headers.get("weft-timeout-ms")).toBe("1500");
    expect(seen[1]!.headers.get("grpc-timeout")).toBeNull();
  });

  it("fails fast, without calling upstream, when less than a millisecond is left", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream();
    const fetch = stack(upstream, propagateDeadline({ clock }));
    await clock.advance(99.5);
    const error = await meshErrorOf(fetch(withMeta(new Request("http://orders/"), { deadline: 100 })));
    expect(error.code).toBe("deadline-exceeded");
    expect(upstream.calls()).toBe(0);
  });

  it("leaves the headers alone on a request without a deadline", async () => {
    const { upstream, seen } = recording();
    await stack(upstream, propagateDeadline({ clock: createManualClock() }))(new Request("http://orders/", { headers: { "weft-timeout-ms": "7" } }));
    expect(seen[0]!.headers.get("weft-timeout-ms")).toBe("7");
  });

  it("never changes the caller's own request, only the copy it sends", async () => {
    const { upstream, seen } = recording();
    const caller = new Request("http://orders/");
    await stack(upstream, propagateDeadline({ clock: createManualClock() }))(withMeta(caller, { deadline: 500 }));
    expect(seen[0]!.headers.get("weft-timeout-ms")).toBe("500");
    expect(caller.headers.has("weft-timeout-ms")).toBe(false);
  });

  it("forwards the caller's budget less the time spent in this hop", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream();
    const slowLayer = (next: Fetch): Fetch => async (request) => {
      await clock.advance(200);
      return next(request);
    };
    const fetch = stack(upstream, deadline({ clock }), slowLayer, propagateDeadline({ clock }));
    await fetch(new Request("http://orders/", { headers: { "weft-timeout-ms": "1000" } }));
    expect(upstream.requests[0]!.headers.get("weft-timeout-ms")).toBe("800");
  });

  it("keeps the request body when it rewrites headers", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream();
    const fetch = stack(upstream, deadline({ clock, timeout: 100 }), propagateDeadline({ clock }));
    await fetch(new Request("http://orders/", { method: "POST", body: "order-1" }));
    expect(upstream.bodies).toEqual(["order-1"]);
  });
});

describe("isTimeout", () => {
  it("is true for a deadline or per-try timer that fired, and for a timeout abort reason", async () => {
    const clock = createManualClock();
    const byDeadline = await meshErrorOf(clock.run(deadline({ timeout: 10, clock })(stuck)(new Request("http://orders/"))));
    const byTry = await meshErrorOf(clock.run(timeout(10, { clock })(stuck)(new Request("http://orders/"))));
    expect(isTimeout(byDeadline)).toBe(true);
    expect(isTimeout(byTry)).toBe(true);
    expect(isTimeout(new DOMException("late", "TimeoutError"))).toBe(true);
  });

  it("is false for a caller that went away and for a budget spent before the call", async () => {
    const clock = createManualClock();
    const caller = new AbortController();
    caller.abort();
    const cancelled = await meshErrorOf(deadline({ timeout: 10, clock })(stuck)(new Request("http://orders/", { signal: caller.signal })));
    const spent = await meshErrorOf(propagateDeadline({ clock })(stuck)(withMeta(new Request("http://orders/"), { deadline: 0.5 })));
    expect(isTimeout(cancelled)).toBe(false);
    expect(isTimeout(caller.signal.reason)).toBe(false);
    expect(isTimeout(spent)).toBe(false);
    expect(isTimeout(new MeshError("deadline-exceeded", "late"))).toBe(false);
    expect(isTimeout(new TypeError("fetch failed"))).toBe(false);
  });
});
