import { describe, expect, it } from "vitest";
import { createManualClock, fakeUpstream, seededRandom, sequenceRandom, settle } from "../../testing/index.ts";
import { withMeta, type Fetch } from "../fetch.ts";
import type { MirrorLabels } from "../metrics/index.ts";
import { createMirrorPool, mirror, MIRROR_HEADER } from "./index.ts";

type Outcome = MirrorLabels["outcome"];

const setup = (options: { share?: number; random?: () => number; send?: Fetch; max?: number; maxBodyBytes?: number; timeoutMs?: number } = {}) => {
  const clock = createManualClock();
  const primary = fakeUpstream([200]);
  const copies = fakeUpstream([200]);
  const outcomes: Outcome[] = [];
  const pool = createMirrorPool(options.max ?? 100);
  const fetch = mirror({
    service: "shadow",
    send: options.send ?? copies,
    share: options.share ?? 1,
    pool,
    clock,
    random: options.random ?? (() => 0),
    ...(options.maxBodyBytes !== undefined && { maxBodyBytes: options.maxBodyBytes }),
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    observe: (outcome) => outcomes.push(outcome),
  })(primary);
  return { clock, primary, copies, outcomes, pool, fetch };
};

describe("mirror", () => {
  it("sends a copy with weft-mirror and weft-attempt: 1 and answers with the primary's response", async () => {
    const { fetch, primary, copies, outcomes } = setup();
    const response = await fetch(new Request("http://orders/api?x=1", { headers: { "x-user": "ann" } }));
    await settle();
    expect(response.status).toBe(200);
    expect(primary.calls()).toBe(1);
    expect(copies.calls()).toBe(1);
    const copy = copies.requests[0]!;
    expect(copy.url).toBe("http://orders/api?x=1");
    expect(copy.headers.get(MIRROR_HEADER)).toBe("1");
    expect(copy.headers.get("weft-attempt")).toBe("1");
    expect(copy.headers.get("x-user")).toBe("ann");
    expect(primary.requests[0]!.headers.get(MIRROR_HEADER)).toBeNull();
    expect(outcomes).toEqual(["completed"]);
  });

  it("copies a share of requests: 25 % of 2,000 within 3σ", async () => {
    const { fetch, copies } = setup({ share: 0.25, random: seededRandom(16) });
    for (let i = 0; i < 2_000; i++) await fetch(new Request("http://orders/"));
    await settle();
    const sigma = Math.sqrt(2_000 * 0.25 * 0.75);
    expect(Math.abs(copies.calls() - 500)).toBeLessThanOrEqual(3 * sigma);
  });

  it("mirrors a body within the limit to both, byte for byte, and drops larger or unsized ones, counted", async () => {
    const { fetch, primary, copies, outcomes } = setup({ maxBodyBytes: 8 });
    await fetch(new Request("http://orders/", { method: "POST", body: "12345678", headers: { "content-length": "8" } }));
    await fetch(new Request("http://orders/", { method: "POST", body: "123456789", headers: { "content-length": "9" } }));
    const stream = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(new TextEncoder().encode("abc")), c.close()) });
    await fetch({ method: "POST", url: "http://orders/", headers: new Headers(), body: stream });
    await settle();
    expect(primary.bodies).toEqual(["12345678", "123456789", "abc"]);
    expect(copies.bodies).toEqual(["12345678"]);
    expect(outcomes.sort()).toEqual(["completed", "dropped-body", "dropped-body"]);
  });

  it("never lets the copy's failure, slowness or answer reach the caller", async () => {
    const clock = createManualClock();
    let sent = 0;
    const hang: Fetch = (request) => {
      sent++;
      return new Promise((_, reject) => request.signal?.addEventListener("abort", () => reject(request.signal!.reason)));
    };
    const failing: Fetch = async () => {
      throw new TypeError("connection refused");
    };
    for (const send of [hang, failing]) {
      const primary = fakeUpstream([201]);
      const fetch = mirror({ service: "shadow", send, share: 1, pool: createMirrorPool(), clock, random: () => 0 })(primary);
      const response = await fetch(new Request("http://orders/"));
      expect(response.status).toBe(201);
    }
    expect(sent).toBe(1);
  });

  it("holds at most the pool's copies in flight, drops the rest counted, and frees them at the timeout", async () => {
    let sent = 0;
    const hang: Fetch = (request) => {
      sent++;
      return new Promise((_, reject) => request.signal?.addEventListener("abort", () => reject(request.signal!.reason)));
    };
    const { fetch, clock, pool, outcomes } = setup({ send: hang, max: 3, timeoutMs: 1_000 });
    for (let i = 0; i < 10; i++) expect((await fetch(new Request("http://orders/"))).status).toBe(200);
    expect(sent).toBe(3);
    expect(pool.inFlight).toBe(3);
    expect(outcomes.filter((o) => o === "dropped-in-flight")).toHaveLength(7);
    await clock.advance(1_000);
    expect(pool.inFlight).toBe(0);
    expect(outcomes.filter((o) => o === "failed")).toHaveLength(3);
  });

  it("hands the copy to the request's background hand-off", async () => {
    const { fetch } = setup({ random: sequenceRandom([0]) });
    const handed: Promise<unknown>[] = [];
    const request = withMeta(new Request("http://orders/"), { background: (task) => handed.push(task) });
    await fetch(request);
    expect(handed).toHaveLength(1);
    await expect(handed[0]).resolves.toBeUndefined();
  });

  it("counts a 5xx from the mirror as failed", async () => {
    const { fetch, outcomes } = setup({ send: fakeUpstream([503]) });
    await fetch(new Request("http://orders/"));
    await settle();
    expect(outcomes).toEqual(["failed"]);
  });
});
