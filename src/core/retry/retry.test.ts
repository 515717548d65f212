import { describe, expect, it } from "vitest";
import { createManualClock, fakeUpstream, sequenceRandom, web, type ManualClock } from "../../testing/index.ts";
import type { MeshRequest } from "../fetch.ts";
import { deadline } from "../deadline/index.ts";
import { MeshError } from "../errors.ts";
import { derive, stack, withHeaders, withMeta, type Fetch, type Layer } from "../fetch.ts";
import { createRetryBudget, retry, type RetryBudget, type RetryOptions } from "./index.ts";

const roomy = (clock: ManualClock) => createRetryBudget({ ratio: 1, minPerSecond: 100, ttl: 10_000, clock });

function setup(upstream: Fetch, options: Partial<RetryOptions> & { clock?: ManualClock } = {}) {
  const clock = options.clock ?? createManualClock();
  const log = { retries: [] as number[], exhausted: 0 };
  const fetch = stack(
    upstream,
    retry({
      limit: 2,
      on: ["5xx", "reset", "429", "deadline-per-try"],
      budget: roomy(clock),
      clock,
      random: () => 0.5,
      observe: { retry: (n) => log.retries.push(n), budgetExhausted: () => log.exhausted++ },
      ...options,
    }),
  );
  return { clock, fetch, log, call: (request: MeshRequest) => clock.run(web(fetch)(request)) };
}

/** A body of `size` bytes streamed in 1 KiB chunks, with no declared length. */
function streamOf(size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= size) return controller.close();
      const n = Math.min(1_024, size - sent);
      controller.enqueue(new Uint8Array(n).fill(97));
      sent += n;
    },
  });
}

const post = (body: BodyInit, headers: Record<string, string> = {}) =>
  new Request("http://orders/items", { method: "POST", body, headers, duplex: "half" } as RequestInit);

describe("retry", () => {
  it("retries a 503 and returns the success, numbering each try in weft-attempt", async () => {
    const upstream = fakeUpstream([503, 200]);
    const { call, log } = setup(upstream);
    const response = await call(new Request("http://orders/items"));
    expect(response.status).toBe(200);
    expect(upstream.requests.map((r) => r.headers.get("weft-attempt"))).toEqual(["1", "2"]);
    expect(log.retries).toEqual([2]);
  });

  it("starts every retry from the request's headers as they came, whatever the layers below did to the first try", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([503, 200]);
    // The request reaches retry as the stack's own copy (as below `deadline()`), and the layer
    // under retry edits each try's headers where it can.
    const own: Layer = (next) => (request) => next(derive(request, {}));
    const tag: Layer = (next) => (request) => next(withHeaders(request, (headers) => headers.append("x-hop", "b")));
    const fetch = stack(upstream, own, retry({ limit: 1, on: ["5xx"], budget: roomy(clock), clock, random: () => 0.5 }), tag);
    const caller = new Request("http://orders/items", { headers: { "x-hop": "a" } });
    expect((await clock.run(fetch(caller))).status).toBe(200);
    expect(upstream.requests.map((r) => [r.headers.get("weft-attempt"), r.headers.get("x-hop")])).toEqual([
      ["1", "a, b"],
      ["2", "a, b"],
    ]);
    expect(caller.headers.get("x-hop")).toBe("a");
    expect(caller.headers.has("weft-attempt")).toBe(false);
  });

  it("returns the last upstream response, as it came, when the retries run out", async () => {
    const upstream = fakeUpstream([(_, call) => new Response(`try ${call + 1}`, { status: 503, headers: { "x-try": String(call + 1) } })]);
    const { call } = setup(upstream);
    const response = await call(new Request("http://orders/items"));
    expect(upstream.calls()).toBe(3);
    expect(response.status).toBe(503);
    expect(response.headers.get("weft-error")).toBeNull();
    expect(await response.text()).toBe("try 3");
  });

  it("does not retry outcomes outside `on`", async () => {
    const upstream = fakeUpstream([500, 200]);
    const { call } = setup(upstream, { on: ["gateway-error"] });
    expect((await call(new Request("http://orders/items"))).status).toBe(500);
    expect(upstream.calls()).toBe(1);
  });

  it("makes no retry with a limit of 0, but still numbers the try", async () => {
    const upstream = fakeUpstream([503, 200]);
    const { call } = setup(upstream, { limit: 0 });
    expect((await call(new Request("http://orders/items"))).status).toBe(503);
    expect(upstream.requests[0]!.headers.get("weft-attempt")).toBe("1");
  });

  it("retries a failed connection and throws the last error when the retries run out", async () => {
    const upstream = fakeUpstream([new TypeError("fetch failed"), new MeshError("upstream-unreachable", "refused"), new TypeError("last")]);
    const { call } = setup(upstream);
    await expect(call(new Request("http://orders/items"))).rejects.toThrow("last");
    expect(upstream.calls()).toBe(3);
  });

  it("does not retry the mesh's own refusals such as no-endpoints", async () => {
    const upstream = fakeUpstream([new MeshError("no-endpoints", "none"), 200]);
    const { call } = setup(upstream);
    await expect(call(new Request("http://orders/items"))).rejects.toMatchObject({ code: "no-endpoints" });
    expect(upstream.calls()).toBe(1);
  });

  it("waits a fully jittered backoff between tries", async () => {
    const clock = createManualClock();
    const at: number[] = [];
    const upstream = fakeUpstream([(_, n) => (at.push(clock.now()), n < 2 ? 503 : 200)]);
    const { call } = setup(upstream, { clock, random: sequenceRandom([0.5, 1]) });
    await call(new Request("http://orders/items"));
    // 0.5 × 25 ms before the first retry, then 1 × 75 ms before the second.
    expect(at).toEqual([0, 12.5, 87.5]);
  });

  it("honours a 429's retry-after when it fits in the deadline", async () => {
    const clock = createManualClock();
    const at: number[] = [];
    const upstream = fakeUpstream([(_, n) => (at.push(clock.now()), n === 0 ? new Response(null, { status: 429, headers: { "retry-after": "2" } }) : 200)]);
    const { call } = setup(upstream, { clock });
    const response = await call(withMeta(new Request("http://orders/items"), { deadline: 5_000 }));
    expect(response.status).toBe(200);
    expect(at).toEqual([0, 2_000]);
  });

  it("returns the 429 when its retry-after would pass the deadline", async () => {
    const upstream = fakeUpstream([new Response("slow down", { status: 429, headers: { "retry-after": "10" } }), 200]);
    const { call } = setup(upstream);
    const response = await call(withMeta(new Request("http://orders/items"), { deadline: 5_000 }));
    expect(response.status).toBe(429);
    expect(await response.text()).toBe("slow down");
    expect(upstream.calls()).toBe(1);
  });

  it("does not retry when the backoff would end past the deadline", async () => {
    const upstream = fakeUpstream([503, 200]);
    const { call } = setup(upstream, { random: () => 1 });
    const response = await call(withMeta(new Request("http://orders/items"), { deadline: 20 }));
    expect(response.status).toBe(503);
    expect(upstream.calls()).toBe(1);
  });

  it("does not retry once the deadline has passed", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([503, 200], { clock, delay: 100 });
    const { call } = setup(upstream, { clock, random: () => 0 });
    const response = await call(withMeta(new Request("http://orders/items"), { deadline: 100 }));
    expect(response.status).toBe(503);
    expect(upstream.calls()).toBe(1);
  });

  it("returns the failure and reports it when the budget refuses the retry", async () => {
    const clock = createManualClock();
    const budget = createRetryBudget({ ratio: 0, minPerSecond: 1, ttl: 1_000, clock });
    const upstream = fakeUpstream([503, 503, 503, 200]);
    const { call, log } = setup(upstream, { clock, budget, limit: 5 });
    const response = await call(new Request("http://orders/items"));
    expect(response.status).toBe(503);
    expect(upstream.calls()).toBe(2);
    expect(log.retries).toEqual([2]);
    expect(log.exhausted).toBe(1);
  });

  it("deposits once per request and withdraws once per retry", async () => {
    const calls: string[] = [];
    const budget: RetryBudget = {
      deposit: () => calls.push("deposit"),
      withdraw: () => (calls.push("withdraw"), true),
    };
    const { call } = setup(fakeUpstream([503, 503, 200]), { budget });
    await call(new Request("http://orders/items"));
    expect(calls).toEqual(["deposit", "withdraw", "withdraw"]);
  });

  it("retries a try that hit its per-try timeout while the deadline has time left", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([(_, n) => (n === 0 ? new Promise<Response>(() => {}) : 200)]);
    const fetch = stack(
      upstream,
      deadline({ clock, timeout: 1_000 }),
      retry({ limit: 1, on: ["deadline-per-try"], budget: roomy(clock), perTryTimeout: 100, clock, random: () => 0 }),
    );
    const response = await clock.run(fetch(new Request("http://orders/items")));
    expect(response.status).toBe(200);
    expect(upstream.requests[0]!.signal!.aborted).toBe(true);
    expect(clock.now()).toBe(100);
  });

  it("lets a per-try timeout through as deadline-exceeded when it is not retried", async () => {
    const clock = createManualClock();
    const upstream = fakeUpstream([() => new Promise<Response>(() => {})]);
    const { call } = setup(upstream, { clock, on: ["5xx"], perTryTimeout: 100 });
    await expect(call(new Request("http://orders/items"))).rejects.toMatchObject({ code: "deadline-exceeded" });
    expect(upstream.calls()).toBe(1);
  });

  it("cancels the body of each response it discards", async () => {
    const cancelled: number[] = [];
    const failing = (n: number) =>
      new Response(new ReadableStream({ cancel: () => void cancelled.push(n) }), { status: 503 });
    const upstream = fakeUpstream([(_, n) => (n < 2 ? failing(n) : 200)]);
    const { call } = setup(upstream);
    expect((await call(new Request("http://orders/items"))).status).toBe(200);
    expect(cancelled).toEqual([0, 1]);
  });

  it("stops retrying once the caller has cancelled", async () => {
    const caller = new AbortController();
    const upstream = fakeUpstream([
      () => {
        caller.abort();
        return 503;
      },
      200,
    ]);
    const { call } = setup(upstream);
    const response = await call(new Request("http://orders/items", { signal: caller.signal }));
    expect(response.status).toBe(503);
    expect(upstream.calls()).toBe(1);
  });
});

describe("retry with request bodies", () => {
  it("replays a body of declared length on every try", async () => {
    const upstream = fakeUpstream([503, 503, 200]);
    const { call } = setup(upstream);
    await call(post(streamOf(3_000), { "content-length": "3000" }));
    expect(upstream.bodies.map((b) => b.length)).toEqual([3_000, 3_000, 3_000]);
  });

  it("replays a small body of unknown length that the first try read to its end", async () => {
    const upstream = fakeUpstream([503, 200]);
    const { call } = setup(upstream);
    await call(post("order=42"));
    expect(upstream.bodies).toEqual(["order=42", "order=42"]);
  });

  it("sends a body declared over 64 KiB once and does not retry it", async () => {
    const upstream = fakeUpstream([503, 200]);
    const { call } = setup(upstream);
    const size = 64 * 1_024 + 1;
    const response = await call(post(streamOf(size), { "content-length": String(size) }));
    expect(response.status).toBe(503);
    expect(upstream.bodies.map((b) => b.length)).toEqual([size]);
  });

  it("sends a body of unknown length that grows past the cap once, whole, and does not retry it", async () => {
    const upstream = fakeUpstream([503, 200]);
    const { call } = setup(upstream, { maxBufferedBytes: 4_096 });
    const response = await call(post(streamOf(10_000)));
    expect(response.status).toBe(503);
    expect(upstream.bodies.map((b) => b.length)).toEqual([10_000]);
  });

  it("sends a body longer than its declared length once, whole, and does not retry it", async () => {
    const upstream = fakeUpstream([503, 200]);
    const { call } = setup(upstream, { maxBufferedBytes: 4_096 });
    const response = await call(post(streamOf(10_000), { "content-length": "100" }));
    expect(response.status).toBe(503);
    expect(upstream.bodies.map((b) => b.length)).toEqual([10_000]);
  });

  it("does not retry a body of unknown length that the failed try never read", async () => {
    const upstream = fakeUpstream([new TypeError("connect failed"), 200]);
    let reads = 0;
    const untouched: Fetch = (request) => {
      if (reads++ === 0) return Promise.reject(new TypeError("connect failed"));
      return upstream(request);
    };
    const { call } = setup(untouched);
    await expect(call(post(streamOf(100)))).rejects.toThrow("connect failed");
    expect(reads).toBe(1);
  });
});
