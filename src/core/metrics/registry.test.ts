import { describe, expect, it } from "vitest";
import { createManualClock } from "../../testing/index.ts";
import type { Outcome } from "./classify.ts";
import { createRegistry } from "./registry.ts";
import type { RequestLabels } from "./store.ts";

const ok: Outcome = { status_code: 200, classification: "success", error: "" };
const failed: Outcome = { status_code: 503, classification: "failure", error: "" };
const inbound: RequestLabels = { direction: "inbound", src: "spiffe://mesh/worker/web", dst_service: "orders", route: "list" };

describe("registry snapshot", () => {
  it("answers requests, successes, success rate and RPS per route over the last minute", async () => {
    const clock = createManualClock();
    const registry = createRegistry({ clock });
    await clock.advance(60_000);
    for (let i = 0; i < 90; i++) registry.recordResponse(inbound, ok, 10);
    for (let i = 0; i < 30; i++) registry.recordResponse(inbound, failed, 10);
    const [stats] = registry.snapshot().routes;
    expect(stats).toMatchObject({ direction: "inbound", dst_service: "orders", route: "list", requests: 120, successes: 90, failures: 30, successRate: 0.75 });
    // The window runs from the start of its oldest second to now: 59 whole seconds and this one's start.
    expect(stats!.rps).toBeCloseTo(120 / 59);
  });

  it("lets calls older than a minute leave the window, second by second", async () => {
    const clock = createManualClock();
    const registry = createRegistry({ clock });
    registry.recordResponse(inbound, ok, 5);
    await clock.advance(30_000);
    registry.recordResponse(inbound, failed, 5);
    await clock.advance(29_999);
    expect(registry.snapshot().routes[0]?.requests).toBe(2);
    await clock.advance(1);
    expect(registry.snapshot().routes[0]).toMatchObject({ requests: 1, successes: 0, successRate: 0 });
    await clock.advance(30_000);
    expect(registry.snapshot().routes).toEqual([]);
  });

  it("divides RPS by the time since start while the registry is younger than the window", async () => {
    const clock = createManualClock();
    const registry = createRegistry({ clock });
    await clock.advance(10_000);
    for (let i = 0; i < 30; i++) registry.recordResponse(inbound, ok, 1);
    expect(registry.snapshot().routes[0]?.rps).toBeCloseTo(3);
  });

  it("estimates p50, p95 and p99 from the window's latency buckets", () => {
    const clock = createManualClock();
    const registry = createRegistry({ clock });
    for (let ms = 1; ms <= 100; ms++) registry.recordResponse(inbound, ok, ms);
    const { latencyMs } = registry.snapshot().routes[0]!;
    expect(latencyMs.p50).toBeCloseTo(50);
    expect(latencyMs.p95).toBeCloseTo(95);
    expect(latencyMs.p99).toBeCloseTo(99);
  });

  it("takes latency quantiles from the window only, not from older calls", async () => {
    const clock = createManualClock();
    const registry = createRegistry({ clock });
    for (let i = 0; i < 100; i++) registry.recordResponse(inbound, ok, 4_000);
    await clock.advance(61_000);
    for (let i = 0; i < 100; i++) registry.recordResponse(inbound, ok, 3);
    expect(registry.snapshot().routes[0]?.latencyMs.p99).toBeLessThanOrEqual(3);
  });

  it("groups callers into one row per direction, service and route", () => {
    const registry = createRegistry({ clock: createManualClock() });
    registry.recordResponse(inbound, ok, 1);
    registry.recordResponse({ ...inbound, src: "spiffe://mesh/worker/admin" }, ok, 1);
    registry.recordResponse({ ...inbound, route: "create" }, ok, 1);
    registry.recordResponse({ ...inbound, direction: "outbound" }, ok, 1);
    const rows = registry.snapshot().routes.map((r) => [r.direction, r.dst_service, r.route, r.requests]);
    expect(rows).toEqual([
      ["inbound", "orders", "create", 1],
      ["inbound", "orders", "list", 2],
      ["outbound", "orders", "list", 1],
    ]);
  });

  it("counts requests when they start, apart from the responses in the window", () => {
    const registry = createRegistry({ clock: createManualClock() });
    registry.countRequest(inbound);
    registry.countRequest(inbound);
    expect(registry.snapshot().routes).toEqual([]);
    expect(registry.expose()).toContain('weft_request_total{direction="inbound",src="spiffe://mesh/worker/web",dst_service="orders",route="list"} 2\n');
  });
});

describe("registry caps", () => {
  it("drops new label sets past the series cap and counts the drops, while the window still counts the calls", () => {
    const registry = createRegistry({ clock: createManualClock(), maxSeries: 2 });
    for (const caller of ["a", "b", "c"]) {
      registry.countRequest({ ...inbound, src: caller });
      registry.recordResponse({ ...inbound, src: caller }, ok, 1);
    }
    const text = registry.expose();
    expect(text).toContain('src="a"');
    expect(text).toContain('src="b"');
    expect(text).not.toContain('src="c"');
    expect(text).toContain('weft_metrics_dropped_total{metric="weft_request_total"} 1\n');
    expect(text).toContain('weft_metrics_dropped_total{metric="weft_response_total"} 1\n');
    expect(registry.snapshot().routes[0]?.requests).toBe(3);
  });

  it("gives a full route table's place to a route idle for a whole window", async () => {
    const clock = createManualClock();
    const registry = createRegistry({ clock, maxRoutes: 1 });
    registry.recordResponse(inbound, ok, 1);
    registry.recordResponse({ ...inbound, route: "create" }, ok, 1);
    expect(registry.snapshot().routes.map((r) => r.route)).toEqual(["list"]);
    expect(registry.expose()).toContain('weft_metrics_dropped_total{metric="window"} 1\n');
    await clock.advance(60_000);
    registry.recordResponse({ ...inbound, route: "create" }, ok, 1);
    expect(registry.snapshot().routes.map((r) => r.route)).toEqual(["create"]);
    // The evicted route comes back when the table has room again.
    await clock.advance(60_000);
    registry.recordResponse(inbound, ok, 1);
    expect(registry.snapshot().routes.map((r) => r.route)).toEqual(["list"]);
  });
});

describe("registry counters", () => {
  it("exposes retries, exhausted budgets, ejections and the config version", () => {
    const registry = createRegistry({ clock: createManualClock() });
    registry.countRetry({ dst_service: "orders" });
    registry.countRetry({ dst_service: "orders" }, 2);
    registry.countRetryBudgetExhausted({ dst_service: "orders" });
    registry.countEjection({ dst_service: "orders", endpoint: "orders-1" });
    registry.setConfigVersion(7);
    const text = registry.expose();
    expect(text).toContain('weft_retry_total{dst_service="orders"} 3\n');
    expect(text).toContain('weft_retry_budget_exhausted_total{dst_service="orders"} 1\n');
    expect(text).toContain('weft_endpoint_ejections_total{dst_service="orders",endpoint="orders-1"} 1\n');
    expect(text).toContain("weft_config_version 7\n");
  });
});
