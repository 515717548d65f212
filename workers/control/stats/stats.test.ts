import { describe, expect, it } from "vitest";
import { createHistory, EDGE_WINDOW_SECONDS, HISTORY_SECONDS } from "./history.ts";
import { createSessions, SESSION_TTL_MS } from "./sessions.ts";
import { createTapHub, MAX_TAP_BUFFER } from "./tap-hub.ts";

const WEB = "spiffe://mesh/worker/web";
const response = (direction: string, src: string, dst: string, classification: string, count: number, route = "") => ({
  labels: { direction, src, dst_service: dst, route, status_code: 200, classification, error: "" },
  count,
});

describe("history", () => {
  it("makes edges from outbound calls with a caller, over the last minute, with failures", () => {
    const history = createHistory();
    const t0 = 1_800_000_000_000;
    history.add([response("outbound", WEB, "orders", "success", 9), response("outbound", WEB, "orders", "failure", 1), response("inbound", WEB, "orders", "success", 10), response("outbound", "", "x", "success", 3)], t0);
    expect(history.edges(t0)).toEqual([{ src: WEB, dst: "orders", requests: 10, failures: 1, successRate: 0.9, rps: 10 / EDGE_WINDOW_SECONDS }]);
    expect(history.edges(t0 + EDGE_WINDOW_SECONDS * 1000)).toEqual([]);
  });

  it("keeps per-second series per route for five minutes and skips malformed entries", () => {
    const history = createHistory();
    const t0 = 1_800_000_000_000;
    history.add([response("inbound", WEB, "orders", "failure", 2, "list"), { labels: { direction: "sideways" }, count: 1 }, { count: -1 }, null], t0);
    history.add([response("inbound", WEB, "orders", "success", 3, "list")], t0 + 1000);
    const series = history.series("orders", t0 + 1000);
    expect(series.seconds).toHaveLength(HISTORY_SECONDS);
    expect(series.routes).toHaveLength(1);
    expect(series.routes[0]!.requests.slice(-2)).toEqual([2, 3]);
    expect(series.routes[0]!.failures.slice(-2)).toEqual([2, 0]);
    expect(history.series("orders", t0 + (HISTORY_SECONDS + 5) * 1000).routes[0]?.requests.reduce((a, b) => a + b, 0) ?? 0).toBe(0);
  });
});

describe("tap hub", () => {
  it("hands readers the events after their cursor, and wakes a waiting reader on a push", async () => {
    const hub = createTapHub();
    expect(hub.push({ events: [{ tap: "t1", kind: "start" }, { tap: "t1", kind: "end" }, { tap: "BAD ID", kind: "end" }, { tap: "t1", kind: "other" }], dropped: { t1: 5 } })).toEqual({ accepted: 2, ignored: 2 });
    const first = await hub.read("t1", 0, 0);
    expect(first).toMatchObject({ next: 2, dropped: 5 });
    expect(first.events).toHaveLength(2);
    const waiting = hub.read("t1", first.next, 10_000);
    hub.push({ events: [{ tap: "t1", kind: "end", n: 3 }], dropped: {} });
    expect((await waiting).events).toEqual([{ tap: "t1", kind: "end", n: 3 }]);
  });

  it("keeps a bounded buffer per session and counts what fell out as dropped", async () => {
    const hub = createTapHub();
    hub.push({ events: Array.from({ length: MAX_TAP_BUFFER + 10 }, () => ({ tap: "t2", kind: "end" })), dropped: {} });
    const page = await hub.read("t2", 0, 0);
    expect(page.events).toHaveLength(MAX_TAP_BUFFER);
    expect(page.dropped).toBe(10);
  });
});

describe("dashboard sessions", () => {
  it("starts random sessions that expire after their lifetime and can be ended", () => {
    const sessions = createSessions();
    const a = sessions.start("read-only", 0);
    const b = sessions.start("admin", 0);
    expect(a.id).toMatch(/^[0-9a-f]{64}$/);
    expect(a.id).not.toBe(b.id);
    expect(a.session.csrf).not.toBe(b.session.csrf);
    expect(sessions.get(a.id, SESSION_TTL_MS - 1)?.kind).toBe("read-only");
    expect(sessions.get(a.id, SESSION_TTL_MS)).toBeUndefined();
    sessions.end(b.id);
    expect(sessions.get(b.id, 1)).toBeUndefined();
  });
});
