import { describe, expect, it } from "vitest";
import { ConfigState, unmet } from "./state.ts";
import type { Change } from "./model.ts";

const svc = (name: string, extra: Record<string, unknown> = {}): Change => ({
  op: "put",
  kind: "Service",
  body: { name, balancer: "p2c-ewma", defaultPolicy: "all-unauthenticated", ...extra } as never,
});

const route = (name: string, service: string): Change => ({
  op: "put",
  kind: "Route",
  body: { name, service, matches: [], backends: [{ service, weight: 1 }] } as never,
});

describe("ConfigState.write", () => {
  it("gives every accepted change the next version and each changed resource that version", () => {
    const state = new ConfigState();
    const first = state.write([svc("a"), svc("b")], "admin");
    expect(first.ok && first.value.value.version).toBe(1);
    const second = state.write([svc("a", { timeout: "1s" })], "admin");
    expect(second.ok && second.value.value.version).toBe(2);
    expect(state.get("Service", "a")!.body.version).toBe(2);
    expect(state.get("Service", "b")!.body.version).toBe(1);
  });

  it("leaves the version alone for a write that changes nothing, and records no audit line", () => {
    const state = new ConfigState();
    state.write([svc("a")], "admin");
    const again = state.write([svc("a")], "admin");
    expect(again.ok && again.value.mutation).toBeUndefined();
    expect(state.version).toBe(1);
  });

  it("refuses the whole write when one expectation is stale, changing nothing", () => {
    const state = new ConfigState();
    state.write([svc("a")], "admin");
    const stale = state.write([svc("b"), { ...svc("a", { timeout: "2s" }), expect: { version: 7 } } as Change], "admin");
    expect(stale).toMatchObject({ ok: false, code: "precondition-failed" });
    expect(state.get("Service", "b")).toBeUndefined();
    expect(state.version).toBe(1);
  });

  it("refuses a write that would leave a route without its service, naming the route", () => {
    const state = new ConfigState();
    const result = state.write([route("r", "missing")], "admin");
    expect(result).toMatchObject({ ok: false, code: "bad-request" });
    expect(!result.ok && result.issues).toContainEqual({ path: ["Route", "r", "service"], message: 'no service "missing"' });
    expect(state.version).toBe(0);
  });

  it("refuses an ExternalService named as a Service, or declaring another's host, and keeps it out of snapshots until one is accepted", () => {
    const state = new ConfigState();
    const external = (name: string, hosts: string[]): Change => ({ op: "put", kind: "ExternalService", body: { name, hosts, protocol: "https" } as never });
    expect(state.snapshot().externalServices).toBeUndefined();
    const clash = state.write([svc("pay"), external("pay", ["api.pay.example"])], "admin");
    expect(!clash.ok && clash.issues).toContainEqual({ path: ["ExternalService", "pay", "name"], message: 'a Service is named "pay" too' });
    const twice = state.write([external("pay-a", ["api.pay.example"]), external("pay-b", ["api.pay.example"])], "admin");
    expect(twice).toMatchObject({ ok: false, code: "bad-request" });
    expect(state.write([external("pay-a", ["api.pay.example"])], "admin").ok).toBe(true);
    expect(state.snapshot().externalServices?.map((e) => e.name)).toEqual(["pay-a"]);
  });

  it("carries the Tracing resource in snapshots once applied, and drops it when deleted", () => {
    const state = new ConfigState();
    expect(state.snapshot().tracing).toBeUndefined();
    const put = state.write([{ op: "put", kind: "Tracing", body: { name: "mesh", sampler: "always_off", services: { pay: 1 } } }], "admin");
    expect(put.ok).toBe(true);
    expect(state.snapshot().tracing).toEqual({ name: "mesh", version: 1, sampler: "always_off", services: { pay: 1 } });
    expect(state.write([{ op: "delete", kind: "Tracing", name: "mesh" }], "admin").ok).toBe(true);
    expect(state.snapshot().tracing).toBeUndefined();
  });

  it("writes the audit line with who, what and the versions from and to", () => {
    const state = new ConfigState();
    const result = state.write([svc("a"), route("r", "a")], "spiffe://td/worker/x");
    expect(result.ok && result.value.mutation?.audit).toEqual({
      actor: "spiffe://td/worker/x",
      action: "write",
      changes: [
        { kind: "Service", name: "a", outcome: "created" },
        { kind: "Route", name: "r", outcome: "created" },
      ],
      fromVersion: 0,
      toVersion: 1,
    });
  });
});

describe("ConfigState leases", () => {
  const endpoint = { id: "p1", address: "http://127.0.0.1:1" };

  it("renews a lease without a version and expires it as one change by system", () => {
    const state = new ConfigState();
    state.write([svc("a")], "admin");
    state.register("a", endpoint, 1_000, undefined, "admin", 0);
    expect(state.version).toBe(2);
    state.register("a", endpoint, 1_000, undefined, "admin", 500);
    expect(state.version).toBe(2);
    expect(state.expire(1_400)).toBeUndefined();
    const expired = state.expire(1_500);
    expect(expired?.audit).toMatchObject({ actor: "system", action: "expire", fromVersion: 2, toVersion: 3 });
    expect(state.snapshot().services[0]!.endpoints).toBeUndefined();
  });

  it("merges leased endpoints into the snapshot, a leased one replacing a static one of the same id", () => {
    const state = new ConfigState();
    state.write([svc("a", { endpoints: [{ id: "p1", address: "http://10.0.0.1:1" }, { id: "s", address: "http://10.0.0.2:1" }] })], "admin");
    state.register("a", endpoint, 60_000, undefined, "admin", 0);
    expect(state.snapshot().services[0]!.endpoints).toEqual([{ id: "s", address: "http://10.0.0.2:1" }, endpoint]);
  });

  it("refuses an endpoint of a service that does not exist", () => {
    expect(new ConfigState().register("nope", endpoint, 1_000, undefined, "admin", 0)).toMatchObject({ ok: false, code: "unknown-service" });
  });
});

describe("ConfigState.resume (lease grace after a restart)", () => {
  const at = (id: string) => ({ id, address: `http://127.0.0.1:${id.length}` });
  // Three 4 s leases registered at t=0: heartbeat 1 s, "away" past 2 s without one.
  const registered = () => {
    const state = new ConfigState();
    state.write([svc("orders")], "admin");
    for (const id of ["a", "b", "c"]) state.register("orders", at(id), 4_000, undefined, "admin", 0);
    return state;
  };
  const ends = (state: ConfigState) => Object.fromEntries(state.leases("orders").map((l) => [l.endpoint.id, l.expiresAt]));

  it("beats at a quarter of the shortest lease, within 1 s..10 s, and not at all without leases", () => {
    const state = new ConfigState();
    state.write([svc("orders")], "admin");
    expect(state.heartbeatMs()).toBeUndefined();
    state.register("orders", at("a"), 40_000, undefined, "admin", 0);
    expect(state.heartbeatMs()).toBe(10_000);
    state.register("orders", at("b"), 20_000, undefined, "admin", 0);
    expect(state.heartbeatMs()).toBe(5_000);
    state.register("orders", at("c"), 1_000, undefined, "admin", 0);
    expect(state.heartbeatMs()).toBe(1_000);
  });

  it("gives every lease live at the last heartbeat one TTL from the restart when the store was away longer than a lease", () => {
    const state = registered();
    const version = state.version;
    // Last heartbeat at 0.5 s, back at 10 s: every lease ran out (at 4 s) while the store was away.
    const resumed = state.resume(10_000, 500);
    expect(resumed.value.map((l) => l.endpoint.id)).toEqual(["a", "b", "c"]);
    expect(ends(state)).toEqual({ a: 14_000, b: 14_000, c: 14_000 });
    expect(resumed.mutation).toMatchObject({ version, deletes: [] });
    expect(Object.keys(resumed.mutation!.puts)).toEqual(["l:orders/a", "l:orders/b", "l:orders/c"]);
    expect(resumed.mutation!.audit).toBeUndefined();
    expect(state.version).toBe(version);
    // Nothing expires before the grace ends; then only what was not renewed.
    expect(state.expire(13_999)).toBeUndefined();
    state.register("orders", at("a"), 4_000, undefined, "admin", 12_000);
    const expired = state.expire(14_000);
    expect(expired?.audit?.changes.map((c) => c.name)).toEqual(["orders/b", "orders/c"]);
    expect(state.snapshot().services[0]!.endpoints?.map((e) => e.id)).toEqual(["a"]);
  });

  it("makes each lease run its own TTL from the restart, however long or short", () => {
    const state = new ConfigState();
    state.write([svc("orders")], "admin");
    state.register("orders", at("soon"), 4_000, undefined, "admin", 2_000); // ends at 6 s
    state.register("orders", at("long"), 60_000, undefined, "admin", 2_000); // ends at 62 s
    state.resume(5_000, 1_000);
    expect(ends(state)).toEqual({ soon: 9_000, long: 65_000 });
  });

  it("grants nothing after a short absence (a deploy, an eviction woken on time), so restarts alone never keep a dead lease", () => {
    const state = registered();
    // Heartbeat 1 s: back 2 s after the last one is not "away".
    const resumed = state.resume(4_500, 2_500);
    expect(resumed).toEqual({ value: [] });
    expect(state.expire(4_500)?.audit?.changes).toHaveLength(3);
  });

  it("leaves a lease that had run out before the last heartbeat to expire", () => {
    const state = new ConfigState();
    state.write([svc("orders")], "admin");
    state.register("orders", at("dead"), 1_000, undefined, "admin", 0); // ends at 1 s
    state.register("orders", at("live"), 4_000, undefined, "admin", 0); // ends at 4 s
    state.resume(20_000, 3_000);
    expect(ends(state)).toEqual({ dead: 1_000, live: 24_000 });
    expect(state.expire(20_000)?.audit?.changes.map((c) => c.name)).toEqual(["orders/dead"]);
  });

  it("grants the grace when the last heartbeat is unknown (a store written before heartbeats)", () => {
    const state = registered();
    state.resume(10_000, undefined);
    expect(ends(state)).toEqual({ a: 14_000, b: 14_000, c: 14_000 });
  });
});

describe("unmet", () => {
  it("holds for matching versions, absent things expected absent and present things expected present", () => {
    expect(unmet({ version: 3 }, 3, "x")).toBeUndefined();
    expect(unmet("absent", undefined, "x")).toBeUndefined();
    expect(unmet("present", 1, "x")).toBeUndefined();
    expect(unmet(undefined, undefined, "x")).toBeUndefined();
    expect(unmet({ version: 3 }, 4, "x")).toContain("version 4");
    expect(unmet("absent", 1, "x")).toContain("already exists");
    expect(unmet("present", undefined, "x")).toContain("does not exist");
  });
});
