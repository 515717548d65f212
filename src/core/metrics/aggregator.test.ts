import { describe, expect, it } from "vitest";
import { createManualClock } from "../../testing/index.ts";
import { createAggregator } from "./aggregator.ts";
import type { Outcome } from "./classify.ts";
import { createRegistry } from "./registry.ts";
import type { MetricsDelta, RequestLabels } from "./store.ts";

const ok: Outcome = { status_code: 200, classification: "success", error: "" };
const failed: Outcome = { status_code: 504, classification: "failure", error: "deadline-exceeded" };
const labels: RequestLabels = { direction: "inbound", src: "spiffe://mesh/worker/web", dst_service: "orders", route: "list" };

/** A delta as it arrives after a trip through JSON. */
function wire(delta: MetricsDelta): MetricsDelta {
  return JSON.parse(JSON.stringify(delta)) as MetricsDelta;
}

function empty(): MetricsDelta {
  return { v: 1, requests: [], responses: [], retries: [], retryBudgetExhausted: [], ejections: [], window: [], dropped: [] };
}

describe("takeDelta", () => {
  it("hands out only what was counted since the previous take", async () => {
    const clock = createManualClock();
    const registry = createRegistry({ clock });
    registry.countRequest(labels);
    registry.recordResponse(labels, ok, 3);
    registry.countRetry({ dst_service: "orders" });
    const first = wire(registry.takeDelta());
    expect(first.requests).toEqual([{ labels, count: 1 }]);
    expect(first.responses).toEqual([{ labels: { ...labels, ...ok }, count: 1, sumMs: 3, buckets: [[2, 1]] }]);
    expect(first.retries).toEqual([{ labels: { dst_service: "orders" }, count: 1 }]);
    expect(first.window).toEqual([{ labels: { direction: "inbound", dst_service: "orders", route: "list" }, seconds: [{ ago: 0, requests: 1, successes: 1, buckets: [[2, 1]] }] }]);
    expect(registry.takeDelta()).toEqual(empty());
    await clock.advance(400);
    registry.recordResponse(labels, failed, 30);
    const second = registry.takeDelta();
    expect(second.requests).toEqual([]);
    expect(second.responses).toEqual([{ labels: { ...labels, ...failed }, count: 1, sumMs: 30, buckets: [[7, 1]] }]);
    // Same second as before: only the new call, not the one already sent.
    expect(second.window[0]?.seconds).toEqual([{ ago: 0, requests: 1, successes: 0, buckets: [[7, 1]] }]);
  });

  it("dates window seconds relative to the take, oldest first, and leaves out those already out of the window", async () => {
    const clock = createManualClock(1_000_000);
    const registry = createRegistry({ clock });
    registry.recordResponse(labels, ok, 1);
    await clock.advance(5_000);
    registry.recordResponse(labels, ok, 1);
    await clock.advance(2_000);
    expect(registry.takeDelta().window[0]?.seconds.map((s) => s.ago)).toEqual([7, 2]);
    registry.recordResponse(labels, ok, 1);
    await clock.advance(61_000);
    expect(registry.takeDelta().window).toEqual([]);
  });

  it("carries the config version and the drops", () => {
    const registry = createRegistry({ clock: createManualClock(), maxSeries: 1 });
    registry.setConfigVersion(4);
    registry.countRequest(labels);
    registry.countRequest({ ...labels, src: "" });
    const delta = registry.takeDelta();
    expect(delta.configVersion).toBe(4);
    expect(delta.dropped).toEqual([{ labels: { metric: "weft_request_total" }, count: 1 }]);
  });
});

describe("aggregator", () => {
  it("answers the same snapshot as one registry when fed that registry's deltas", async () => {
    const clock = createManualClock();
    const registry = createRegistry({ clock });
    const aggregator = createAggregator({ clock });
    registry.setConfigVersion(3);
    for (let second = 0; second < 90; second++) {
      for (let i = 0; i <= second % 7; i++) registry.recordResponse(labels, i % 3 === 0 ? failed : ok, 1 + ((second * 37 + i * 11) % 400));
      registry.recordResponse({ ...labels, direction: "outbound", route: "" }, ok, second);
      if (second % 10 === 9) expect(aggregator.mergeDelta(wire(registry.takeDelta()), "router/orders")).toEqual({ ok: true, ignored: 0 });
      await clock.advance(1_000);
    }
    aggregator.mergeDelta(wire(registry.takeDelta()), "router/orders");
    expect(aggregator.snapshot()).toEqual(registry.snapshot());
    expect(aggregator.expose()).toEqual(registry.expose().replace("weft_config_version 3\n", 'weft_config_version{host="router/orders"} 3\n'));
  });

  it("adds up the deltas of several hosts", () => {
    const clock = createManualClock();
    const aggregator = createAggregator({ clock });
    const a = createRegistry({ clock });
    const b = createRegistry({ clock });
    for (let i = 0; i < 3; i++) a.recordResponse(labels, ok, 10);
    b.recordResponse(labels, failed, 1_000);
    b.countEjection({ dst_service: "orders", endpoint: "orders-2" });
    aggregator.mergeDelta(wire(a.takeDelta()), "router/orders");
    aggregator.mergeDelta(wire(b.takeDelta()), "sidecar/orders-7f9c");
    expect(aggregator.snapshot().routes).toEqual([
      expect.objectContaining({ dst_service: "orders", route: "list", requests: 4, successes: 3, failures: 1, successRate: 0.75 }),
    ]);
    const text = aggregator.expose();
    expect(text).toContain('status_code="200",classification="success",error=""} 3\n');
    expect(text).toContain('status_code="504",classification="failure",error="deadline-exceeded"} 1\n');
    expect(text).toContain('weft_endpoint_ejections_total{dst_service="orders",endpoint="orders-2"} 1\n');
  });

  it("places pushed seconds on its own clock, so they leave its window a minute after they happened", async () => {
    const host = createManualClock(9_000_000);
    const control = createManualClock(5_000);
    const registry = createRegistry({ clock: host });
    const aggregator = createAggregator({ clock: control });
    registry.recordResponse(labels, ok, 1);
    await host.advance(30_000);
    await control.advance(30_000);
    registry.recordResponse(labels, ok, 1);
    aggregator.mergeDelta(wire(registry.takeDelta()), "router/orders");
    expect(aggregator.snapshot().routes[0]?.requests).toBe(2);
    await control.advance(30_000);
    expect(aggregator.snapshot().routes[0]?.requests).toBe(1);
    await control.advance(30_000);
    expect(aggregator.snapshot().routes).toEqual([]);
    // The counters stay: Prometheus computes its own rates from them.
    expect(aggregator.expose()).toContain('route="list",status_code="200",classification="success",error=""} 2\n');
  });

  it("labels each host's config version and forgets hosts silent for the TTL", async () => {
    const clock = createManualClock();
    const aggregator = createAggregator({ clock, hostTtlMs: 60_000 });
    aggregator.mergeDelta({ ...empty(), configVersion: 3 }, "router/orders");
    await clock.advance(30_000);
    aggregator.mergeDelta({ ...empty(), configVersion: 4 }, "sidecar/web-1");
    expect(aggregator.expose()).toContain('weft_config_version{host="router/orders"} 3\nweft_config_version{host="sidecar/web-1"} 4\n');
    await clock.advance(30_000);
    const text = aggregator.expose();
    expect(text).not.toContain("router/orders");
    expect(text).toContain('weft_config_version{host="sidecar/web-1"} 4\n');
  });

  it("refuses what is not a delta of format 1", () => {
    const aggregator = createAggregator({ clock: createManualClock() });
    expect(aggregator.mergeDelta({ ...empty(), v: 2 } as unknown as MetricsDelta, "x")).toEqual({ ok: false, reason: expect.any(String) });
    expect(aggregator.mergeDelta(null as unknown as MetricsDelta, "x").ok).toBe(false);
  });

  it("skips malformed entries, counts them and keeps the rest", () => {
    const aggregator = createAggregator({ clock: createManualClock() });
    const route = { direction: "inbound", dst_service: "orders", route: "list" };
    const delta = {
      ...empty(),
      requests: [
        { labels, count: 2 },
        { labels, count: -5 },
        { labels: { ...labels, direction: "sideways" }, count: 1 },
      ],
      responses: [
        { labels: { ...labels, ...ok }, count: 1, sumMs: 4, buckets: [[3, 1]] },
        { labels: { ...labels, ...ok }, count: 1, sumMs: 4, buckets: [[26, 1]] },
        { labels: { ...labels, status_code: 200, classification: "success", error: "teapot" }, count: 1, sumMs: 4, buckets: [] },
      ],
      window: [{ labels: route, seconds: [{ ago: 0, requests: 1, successes: 1, buckets: [[3, 1]] }, { ago: 0, requests: 1, successes: 2, buckets: [] }] }],
    } as unknown as MetricsDelta;
    expect(aggregator.mergeDelta(delta, "router/orders")).toEqual({ ok: true, ignored: 5 });
    const text = aggregator.expose();
    expect(text).toContain('weft_request_total{direction="inbound",src="spiffe://mesh/worker/web",dst_service="orders",route="list"} 2\n');
    expect(text).toContain('error=""} 1\n');
    expect(text).not.toContain("teapot");
    expect(aggregator.snapshot().routes[0]).toMatchObject({ requests: 1, successes: 1 });
  });

  it("counts what its own caps drop, and the drops hosts report", () => {
    const aggregator = createAggregator({ clock: createManualClock(), maxSeries: 1 });
    aggregator.mergeDelta(
      {
        ...empty(),
        requests: [
          { labels, count: 1 },
          { labels: { ...labels, src: "" }, count: 5 },
        ],
        dropped: [{ labels: { metric: "weft_request_total" }, count: 2 }],
      },
      "router/orders",
    );
    expect(aggregator.expose()).toContain('weft_metrics_dropped_total{metric="weft_request_total"} 7\n');
  });
});
