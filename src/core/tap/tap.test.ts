import { describe, expect, it } from "vitest";
import { MeshError } from "../errors.ts";
import { createManualClock, fakeUpstream } from "../../testing/index.ts";
import { createTapper, traceIdOf, type TapSession } from "./index.ts";

const LATER = "2999-01-01T00:00:00.000Z";
const session = (over: Partial<TapSession> = {}): TapSession => ({ id: "t1", service: "orders", maxRps: 100, expiresAt: LATER, ...over });

function setup(sessions: TapSession[], ignore: [string, string[]][] = []) {
  const clock = createManualClock();
  const tapper = createTapper({ service: "orders", identity: "spiffe://mesh/worker/orders", now: () => Date.parse("2026-12-01T00:00:00Z") + clock.now(), clock });
  tapper.update(sessions, new Map(ignore));
  return { clock, tapper };
}

describe("tap", () => {
  it("passes calls on and records nothing when no session is in force", async () => {
    const { tapper } = setup([]);
    const fetch = tapper.wrap("inbound", fakeUpstream([200]), () => "orders");
    expect((await fetch(new Request("http://orders/items"))).status).toBe(200);
    expect(tapper.active()).toBe(false);
    expect(tapper.take()).toBeUndefined();
  });

  it("records a start and an end event with status, latency, trace id and header names, never a credential's value", async () => {
    const { clock, tapper } = setup([session()], [["orders", ["x-api-key"]]]);
    const fetch = tapper.wrap("inbound", fakeUpstream([201], { clock, delay: 40 }), () => "orders");
    const request = new Request("http://orders/items?x=1", {
      method: "POST",
      headers: { authorization: "Bearer s3cret", cookie: "sid=s3cret", "weft-identity": "s3cret.jwt", "x-api-key": "s3cret", "x-plain": "shown", traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "weft-attempt": "2" },
    });
    const response = await clock.run(fetch(request));
    expect(response.status).toBe(201);
    const batch = tapper.take()!;
    expect(batch.events.map((e) => e.kind)).toEqual(["start", "end"]);
    const end = batch.events[1]!;
    expect(end).toMatchObject({ tap: "t1", direction: "inbound", method: "POST", path: "/items", authority: "orders", status: 201, error: null, latencyMs: 40, attempt: 2, trace_id: "4bf92f3577b34da6a3ce929d0e0e4736", dst: "orders" });
    expect(JSON.stringify(batch)).not.toContain("s3cret");
    const headers = Object.fromEntries(end.requestHeaders);
    expect(headers).toMatchObject({ authorization: null, cookie: null, "weft-identity": null, "x-api-key": null, "x-plain": "shown" });
    expect(tapper.take()).toBeUndefined();
  });

  it("records a mesh error's code and status and rethrows it", async () => {
    const { tapper } = setup([session()]);
    const fetch = tapper.wrap("inbound", async () => Promise.reject(new MeshError("forbidden", "denied")), () => "orders");
    await expect(fetch(new Request("http://orders/admin"))).rejects.toThrow("denied");
    expect(tapper.take()!.events[1]).toMatchObject({ kind: "end", status: 403, error: "forbidden" });
  });

  it("applies the session's filters: method, path prefix, destination", async () => {
    const { tapper } = setup([session({ method: "GET", pathPrefix: "/api", to: "inventory" })]);
    const fetch = tapper.wrap("outbound", fakeUpstream([200, 200, 200, 200]), (r) => new URL(r.url).hostname);
    await fetch(new Request("http://inventory/api/x"));
    await fetch(new Request("http://inventory/other"));
    await fetch(new Request("http://inventory/api/x", { method: "PUT" }));
    await fetch(new Request("http://payments/api/x"));
    const events = tapper.take()!.events;
    expect(events.filter((e) => e.kind === "end").map((e) => `${e.method} ${e.dst}${e.path}`)).toEqual(["GET inventory/api/x"]);
  });

  it("samples to the session's rate and counts the calls it dropped", async () => {
    const { clock, tapper } = setup([session({ maxRps: 10 })]);
    const fetch = tapper.wrap("inbound", fakeUpstream(Array(100).fill(200)), () => "orders");
    for (let i = 0; i < 50; i++) await fetch(new Request("http://orders/x"));
    let batch = tapper.take()!;
    expect(batch.events.filter((e) => e.kind === "end")).toHaveLength(10);
    expect(batch.dropped).toEqual({ t1: 40 });
    await clock.advance(500);
    for (let i = 0; i < 10; i++) await fetch(new Request("http://orders/x"));
    batch = tapper.take()!;
    expect(batch.events.filter((e) => e.kind === "end")).toHaveLength(5);
    expect(batch.dropped).toEqual({ t1: 5 });
  });

  it("ignores expired sessions", async () => {
    const { tapper } = setup([session({ expiresAt: "2000-01-01T00:00:00.000Z" })]);
    expect(tapper.active()).toBe(false);
  });

  it("reads a trace id only from a well-formed traceparent", () => {
    const h = (v: string) => new Headers({ traceparent: v });
    expect(traceIdOf(h("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(traceIdOf(h("00-00000000000000000000000000000000-00f067aa0ba902b7-01"))).toBeNull();
    expect(traceIdOf(h("garbage"))).toBeNull();
    expect(traceIdOf(new Headers())).toBeNull();
  });
});
