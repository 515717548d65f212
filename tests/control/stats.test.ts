/**
 * Golden metrics through the control worker: a host's registry delta pushed with
 * `POST /v1/stats` shows in `GET /v1/stats` and in the Prometheus text of `GET /metrics`.
 */
import parse from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistry } from "../../src/core/metrics/index.ts";
import type { TestControl } from "./helpers.ts";
import { startTestControl } from "./helpers.ts";

let control: TestControl;

beforeAll(async () => {
  control = await startTestControl();
});

afterAll(async () => {
  await control?.destroy();
});

describe("stats", () => {
  it("adds pushed deltas up into last-minute stats and Prometheus text", async () => {
    const registry = createRegistry();
    const labels = { direction: "inbound" as const, src: "spiffe://cluster.local/worker/web", dst_service: "orders", route: "orders-api" };
    for (let i = 0; i < 9; i++) registry.recordResponse(labels, { status_code: 200, classification: "success", error: "" }, 5 + i);
    registry.recordResponse(labels, { status_code: 503, classification: "failure", error: "" }, 40);
    const pushed = await control.call("POST", "/v1/stats?host=router/orders", { body: registry.takeDelta() });
    expect(pushed.status).toBe(202);
    const stats = await control.call("GET", "/v1/stats");
    expect(stats.status).toBe(200);
    const route = stats.json.routes.find((r: { route: string }) => r.route === "orders-api");
    expect(route).toMatchObject({ dst_service: "orders" });
    expect(route.successRate).toBeCloseTo(0.9);
    const metrics = await control.call("GET", "/metrics");
    expect(metrics.headers.get("content-type")).toContain("text/plain");
    const families = parse(metrics.text) as { name: string; metrics: { value?: string; labels?: Record<string, string> }[] }[];
    const responses = families.find((f) => f.name === "weft_response_total")!;
    const total = responses.metrics.filter((m) => m.labels?.dst_service === "orders").reduce((sum, m) => sum + Number(m.value), 0);
    expect(total).toBe(10);
  });

  it("refuses something that is not a metrics delta with 400, and anonymous pushes with 401", async () => {
    expect((await control.call("POST", "/v1/stats", { body: { v: 2, requests: [], responses: [] } })).status).toBe(400);
    expect((await control.call("POST", "/v1/stats?host=a%20b", { body: createRegistry().takeDelta() })).status).toBe(400);
    expect((await control.call("POST", "/v1/stats", { token: null, body: createRegistry().takeDelta() })).status).toBe(401);
    expect((await control.call("GET", "/metrics", { token: null })).status).toBe(401);
  });
});
