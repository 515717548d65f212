import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliFixture } from "./helpers.ts";
import { startFixture } from "./helpers.ts";
import { sendTraffic } from "./traffic.ts";

let t: CliFixture;
beforeAll(async () => {
  t = await startFixture();
  await t.weft(["apply", "-f", "-"], { stdin: "kind: Service\nname: orders\n---\nkind: Service\nname: idle\n" });
});
afterAll(async () => {
  await t?.control.stop();
});

describe("weft stat against the control worker", () => {
  it("shows the count and success rate of the traffic the test sent, per service and route", async () => {
    await sendTraffic(t, { service: "orders", route: "api", ok: 17, failed: 3, host: "router-orders", configVersion: 1 });
    await sendTraffic(t, { service: "orders", route: "", ok: 4, failed: 0, host: "router-orders-2", configVersion: 1 });

    const json = await t.weft(["stat", "-o", "json"]);
    expect(json.code).toBe(0);
    const stats = JSON.parse(json.stdout) as { windowSeconds: number; routes: { dst_service: string; route: string; requests: number; successes: number; successRate: number; latencyMs: { p50: number | null } }[]; idle: string[] };
    expect(stats.windowSeconds).toBe(60);
    const api = stats.routes.find((r) => r.route === "api")!;
    expect([api.dst_service, api.requests, api.successes, api.successRate]).toEqual(["orders", 20, 17, 0.85]);
    expect(api.latencyMs.p50).not.toBeNull();
    const unmatched = stats.routes.find((r) => r.route === "")!;
    expect([unmatched.requests, unmatched.successRate]).toEqual([4, 1]);
    expect(stats.idle).toEqual(["idle"]);

    const table = await t.weft(["stat"]);
    expect(table.code).toBe(0);
    const rows = table.stdout.trim().split("\n").map((line) => line.trim().split(/\s+/));
    expect(rows[0]).toEqual(["SERVICE", "ROUTE", "DIRECTION", "REQUESTS", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]);
    expect(rows.slice(1).map((r) => r.slice(0, 5))).toEqual([
      ["idle", "-", "-", "0", "-"],
      ["orders", "api", "inbound", "20", "85.00%"],
      ["orders", "[default]", "inbound", "4", "100.00%"],
    ]);
  });

  it("shows one service alone, and fails for a service it has never heard of", async () => {
    const one = await t.weft(["stat", "orders", "-o", "json"]);
    expect((JSON.parse(one.stdout) as { routes: { dst_service: string }[] }).routes.every((r) => r.dst_service === "orders")).toBe(true);
    const missing = await t.weft(["stat", "nowhere"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('weft: service "nowhere" not found and no calls to it in the last 60s\n');
  });
});
