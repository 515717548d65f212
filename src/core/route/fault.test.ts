import { describe, expect, it } from "vitest";
import { createManualClock, fakeUpstream, seededRandom } from "../../testing/index.ts";
import { bodyStream } from "../fetch.ts";
import { fault, FAULT_ERROR_CODE } from "./index.ts";

const threeSigma = (n: number, p: number) => 3 * Math.sqrt(n * p * (1 - p));

describe("fault", () => {
  it("aborts the configured share with the status, weft-error: fault-injected and the JSON body, 2,000 calls within 3σ", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([200]);
    const faults: string[] = [];
    const fetch = fault({ abort: { httpStatus: 503, percent: 10 }, clock, random: seededRandom(7), observe: (f) => faults.push(f) })(upstream);
    let aborted = 0;
    let last: { status: number; error: string | null; body: string } | undefined;
    for (let i = 0; i < 2_000; i++) {
      const response = await fetch(new Request("http://orders/"));
      if (response.headers.get("weft-error") === FAULT_ERROR_CODE) {
        aborted++;
        last = { status: response.status, error: response.headers.get("weft-error"), body: await new Response(bodyStream(response.body)).text() };
      }
    }
    expect(Math.abs(aborted - 200)).toBeLessThanOrEqual(threeSigma(2_000, 0.1));
    expect(upstream.calls()).toBe(2_000 - aborted);
    expect(faults).toHaveLength(aborted);
    expect(last!.status).toBe(503);
    expect(JSON.parse(last!.body)).toEqual({ error: { code: "fault-injected", message: expect.any(String) } });
  });

  it("delays the configured share on the clock, then forwards", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([200]);
    const fetch = fault({ delay: { ms: 500, percent: 100 }, clock, random: () => 0.5 })(upstream);
    const pending = fetch(new Request("http://orders/"));
    await clock.advance(499);
    expect(upstream.calls()).toBe(0);
    await clock.advance(1);
    expect((await pending).status).toBe(200);
    expect(clock.now()).toBe(500);
  });

  it("ends a delay when the request's deadline signal aborts", async () => {
    const clock = createManualClock();
    const fetch = fault({ delay: { ms: 10_000, percent: 100 }, clock, random: () => 0 })(fakeUpstream([200]));
    const controller = new AbortController();
    const pending = fetch(new Request("http://orders/", { signal: controller.signal }));
    controller.abort(new DOMException("deadline", "TimeoutError"));
    await expect(pending).rejects.toMatchObject({ name: "TimeoutError" });
  });

  it("faults only requests with the trigger header (and value, when named)", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([200]);
    const fetch = fault({ abort: { httpStatus: 500, percent: 100 }, header: { name: "x-chaos", value: "me" }, clock, random: () => 0 })(upstream);
    expect((await fetch(new Request("http://orders/"))).status).toBe(200);
    expect((await fetch(new Request("http://orders/", { headers: { "x-chaos": "you" } }))).status).toBe(200);
    expect((await fetch(new Request("http://orders/", { headers: { "x-chaos": "me" } }))).status).toBe(500);
    expect(upstream.calls()).toBe(2);
  });

  it("answers gRPC callers with grpc-status in a trailers-only 200", async () => {
    const clock = createManualClock();
    const fetch = fault({ abort: { grpcStatus: 14, percent: 100 }, clock, random: () => 0 })(fakeUpstream([200]));
    const response = await fetch(new Request("http://orders/pkg.Svc/Call", { method: "POST", headers: { "content-type": "application/grpc" } }));
    expect(response.status).toBe(200);
    expect(response.headers.get("grpc-status")).toBe("14");
    expect(response.headers.get("weft-error")).toBe("fault-injected");
  });
});
