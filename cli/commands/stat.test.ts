import { describe, expect, it } from "vitest";
import type { RouteStats } from "../control-api.ts";
import { createStyle } from "../output.ts";
import { fakeControl, runWeft } from "../test-io.ts";
import { statTable, viewOf } from "./stat.ts";

const route = (dst_service: string, routeName: string, requests: number, successes: number, direction: RouteStats["direction"] = "inbound"): RouteStats => ({
  direction,
  dst_service,
  route: routeName,
  requests,
  successes,
  failures: requests - successes,
  successRate: requests ? successes / requests : null,
  rps: requests / 60,
  latencyMs: { p50: 3, p95: 12, p99: 48 },
});

describe("weft stat", () => {
  it("prints a row per service, route and direction, services without calls last with dashes", () => {
    const view = viewOf({ windowSeconds: 60, routes: [route("orders", "", 10, 10), route("orders", "api", 120, 114), route("users", "", 6, 6, "outbound")] }, ["orders", "users", "zzz"], undefined, "all");
    expect(statTable(view, createStyle(false))).toBe(
      [
        "SERVICE  ROUTE      DIRECTION  REQUESTS  SUCCESS  RPS      LATENCY_P50  LATENCY_P95  LATENCY_P99",
        "orders   api        inbound    120       95.00%   2.00rps  3ms          12ms         48ms",
        "orders   [default]  inbound    10        100.00%  0.17rps  3ms          12ms         48ms",
        "users    [default]  outbound   6         100.00%  0.10rps  3ms          12ms         48ms",
        "zzz      -          -          0         -        -        -            -            -",
        "",
      ].join("\n"),
    );
  });

  it("filters by service and direction", () => {
    const stats = { windowSeconds: 60, routes: [route("orders", "", 1, 1), route("orders", "", 2, 2, "outbound"), route("users", "", 3, 3)] };
    expect(viewOf(stats, [], "orders", "outbound").routes.map((r) => r.requests)).toEqual([2]);
    expect(viewOf(stats, ["orders", "users", "idle"], "idle", "all")).toEqual({ windowSeconds: 60, routes: [], idle: ["idle"] });
  });

  it("refreshes with --watch until interrupted, one JSON line per refresh with -o json", async () => {
    const controller = new AbortController();
    let calls = 0;
    const fetch = fakeControl({
      "GET /v1/stats": () => {
        calls++;
        return Response.json({ windowSeconds: 60, routes: [route("orders", "", calls, calls)] });
      },
      "GET /v1/services": { version: 1, items: [] },
    });
    const sleeps: number[] = [];
    const result = await runWeft(["stat", "--watch", "--interval", "5s", "-o", "json"], {
      fetch,
      signal: controller.signal,
      sleep: async (ms) => {
        sleeps.push(ms);
        if (sleeps.length === 3) controller.abort();
      },
    });
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l) as { routes: { requests: number }[] });
    expect(lines.map((l) => l.routes[0]!.requests)).toEqual([1, 2, 3]);
    expect(sleeps).toEqual([5000, 5000, 5000]);
  });

  it("keeps watching through a failed refresh, and redraws the screen on a terminal", async () => {
    const controller = new AbortController();
    let calls = 0;
    const fetch = fakeControl({
      "GET /v1/stats": () => (++calls === 1 ? Response.json({ error: { code: "overloaded", message: "busy" } }, { status: 503 }) : Response.json({ windowSeconds: 60, routes: [route("orders", "", 5, 5)] })),
      "GET /v1/services": { version: 1, items: [] },
    });
    const result = await runWeft(["stat", "-w"], { fetch, tty: true, signal: controller.signal, sleep: async () => (calls === 2 ? controller.abort() : undefined) });
    expect(result.code).toBe(0);
    const frames = result.stdout.split("\x1b[H\x1b[2J").filter(Boolean);
    expect(frames).toHaveLength(2);
    expect(frames[0]).toContain("busy (overloaded)");
    expect(frames[1]).toMatch(/Every 2s: weft stat {4}2026-11-27T12:00:00\.000Z/);
    expect(frames[1]).toContain("100.00%");
  });

  it("refuses a bad interval or direction as a usage error", async () => {
    expect((await runWeft(["stat", "--watch", "--interval", "0s"])).code).toBe(2);
    expect((await runWeft(["stat", "--direction", "sideways"])).code).toBe(2);
  });
});
