import { describe, expect, it } from "vitest";
import type { Snapshot } from "../core/config/index.ts";
import { SnapshotSchema } from "../core/config/index.ts";
import { errorResponse } from "../core/errors.ts";
import { toWebResponse } from "../core/web.ts";
import type { Fetch } from "../core/fetch.ts";
import { createRegistry } from "../core/metrics/index.ts";
import { createTokenSource } from "../identity/index.ts";
import { T0, WEB, createPlane } from "../identity/test-fixtures.ts";
import { createManualClock, fakeUpstream, seededRandom, type Answer, type FakeUpstream } from "../testing/index.ts";
import { createProxy } from "./index.ts";

/** A snapshot from loose input, with the schema's defaults filled in. */
const snapshotOf = (input: Record<string, unknown>): Snapshot =>
  SnapshotSchema.parse({ version: 1, services: [], routes: [], policies: [], jwks: { keys: [] }, ...input });

/** Upstreams by endpoint address, made on first use with the answers given for that address. */
function network(answers: Record<string, Answer[]> = {}) {
  const upstreams = new Map<string, FakeUpstream>();
  const connect = (endpoint: { address: string }): Fetch => {
    let upstream = upstreams.get(endpoint.address);
    if (!upstream) {
      upstream = fakeUpstream(answers[endpoint.address] ?? [200]);
      upstreams.set(endpoint.address, upstream);
    }
    return upstream;
  };
  return { connect, upstream: (address: string) => upstreams.get(address) };
}

const call = async (fetch: Fetch, url: string, init?: RequestInit) => {
  try {
    return toWebResponse(await fetch(new Request(url, init)));
  } catch (error) {
    return errorResponse(error);
  }
};

describe("outbound", () => {
  it("routes by host to an endpoint, with identity, deadline and attempt headers", async () => {
    const now = T0;
    const plane = createPlane(() => now);
    const tokens = createTokenSource({ fetchToken: (aud) => plane.issuer.mint(WEB, aud), now: () => now });
    const net = network();
    // A manual clock that no one moves: the budget reaches the endpoint exactly as sent.
    const clock = createManualClock();
    const proxy = createProxy({ service: "web", identity: WEB, registry: createRegistry({ clock }), connect: net.connect, app: fakeUpstream(), tokens, clock });
    proxy.update(snapshotOf({ services: [{ name: "orders", timeout: "2s", endpoints: [{ id: "o1", address: "http://127.0.0.1:9001" }] }] }));

    const response = await call(proxy.outbound, "http://orders/api/items", { headers: { "weft-timeout-ms": "800" } });
    expect(response.status).toBe(200);
    const seen = net.upstream("http://127.0.0.1:9001")!.requests[0]!;
    expect(new URL(seen.url).pathname).toBe("/api/items");
    expect(seen.headers.get("weft-timeout-ms")).toBe("800");
    expect(seen.headers.get("weft-attempt")).toBe("1");
    const token = seen.headers.get("weft-identity")!;
    await expect(plane.verifier.verify(token)).resolves.toMatchObject({ id: WEB });
    // The same audience under another issuer's keys is refused: the token is really signed.
    await expect(createPlane(() => now).verifier.verify(token)).rejects.toMatchObject({ code: "unauthenticated" });
  });

  it("answers unknown-service for a destination not in the config", async () => {
    const proxy = createProxy({ service: "web", registry: createRegistry(), connect: network().connect, app: fakeUpstream() });
    proxy.update(snapshotOf({}));
    const response = await call(proxy.outbound, "http://nowhere/");
    expect(response.status).toBe(404);
    expect(response.headers.get("weft-error")).toBe("unknown-service");
  });

  it("routes only names of mesh services: a name outside the mesh never reaches the service's endpoints", async () => {
    const net = network();
    const proxy = createProxy({ service: "web", registry: createRegistry(), connect: net.connect, app: fakeUpstream(), naming: { namespaces: ["shop"] } });
    proxy.update(snapshotOf({ services: [{ name: "orders", endpoints: [{ id: "o1", address: "http://127.0.0.1:9501" }] }] }));
    for (const url of ["http://orders.example.com/", "http://orders.evil.example/", "http://orders.billing.svc.cluster.local/", "http://10.0.0.1/"]) {
      const response = await call(proxy.outbound, url);
      expect(response.status, url).toBe(404);
      expect(response.headers.get("weft-error"), url).toBe("unknown-service");
      expect(((await response.json()) as { error: { message: string } }).error.message, url).toContain("names no service of the mesh");
    }
    expect(net.upstream("http://127.0.0.1:9501")?.calls() ?? 0).toBe(0);
    for (const url of ["http://orders/", "http://orders.shop/", "http://orders.shop.svc.cluster.local./"]) expect((await call(proxy.outbound, url)).status, url).toBe(200);
    expect(proxy.serviceFor("orders.shop.svc")).toBe("orders");
    expect(proxy.serviceFor("payments")).toBeUndefined();
    expect(proxy.serviceFor("orders.example.com")).toBeUndefined();
  });

  it("splits a route's traffic 90/10 between two backend services", async () => {
    const net = network();
    const proxy = createProxy({ service: "web", registry: createRegistry(), connect: net.connect, app: fakeUpstream(), random: seededRandom(7) });
    proxy.update(
      snapshotOf({
        services: [
          { name: "orders" },
          { name: "orders-v1", endpoints: [{ id: "v1", address: "http://127.0.0.1:9101" }] },
          { name: "orders-v2", endpoints: [{ id: "v2", address: "http://127.0.0.1:9102" }] },
        ],
        routes: [{ name: "orders-split", service: "orders", backends: [{ service: "orders-v1", weight: 90 }, { service: "orders-v2", weight: 10 }] }],
      }),
    );
    for (let i = 0; i < 2000; i++) expect((await call(proxy.outbound, "http://orders/")).status).toBe(200);
    const v2 = net.upstream("http://127.0.0.1:9102")!.calls();
    expect(net.upstream("http://127.0.0.1:9101")!.calls() + v2).toBe(2000);
    // 10% of 2,000 is 200; the standard deviation is about 13.4, so ±4σ.
    expect(Math.abs(v2 - 200)).toBeLessThan(54);
  });

  it("retries a 503 under the service's retry config and counts the retry", async () => {
    const clock = createManualClock();
    const net = network({ "http://127.0.0.1:9201": [503, 200] });
    const registry = createRegistry({ clock });
    const proxy = createProxy({ service: "web", registry, connect: net.connect, app: fakeUpstream(), clock, random: () => 0.5 });
    proxy.update(snapshotOf({ services: [{ name: "orders", retry: { limit: 2, on: ["5xx"] }, endpoints: [{ id: "a", address: "http://127.0.0.1:9201" }] }] }));
    const response = await clock.run(call(proxy.outbound, "http://orders/"));
    expect(response.status).toBe(200);
    const attempts = net.upstream("http://127.0.0.1:9201")!.requests.map((r) => r.headers.get("weft-attempt"));
    expect(attempts).toEqual(["1", "2"]);
    expect(registry.expose()).toMatch(/weft_retry_total\{dst_service="orders"\} 1/);
  });

  it("keeps an ejected endpoint ejected across a config update, and fails fast when all are", async () => {
    const net = network({ "http://127.0.0.1:9301": [502] });
    const proxy = createProxy({ service: "web", registry: createRegistry(), connect: net.connect, app: fakeUpstream() });
    const config = { services: [{ name: "orders", failureAccrual: { consecutiveFailures: 2 }, endpoints: [{ id: "a", address: "http://127.0.0.1:9301" }] }] };
    proxy.update(snapshotOf(config));
    expect((await call(proxy.outbound, "http://orders/")).status).toBe(502);
    expect((await call(proxy.outbound, "http://orders/")).status).toBe(502);
    proxy.update(snapshotOf({ ...config, version: 2 }));
    const response = await call(proxy.outbound, "http://orders/");
    expect(response.status).toBe(503);
    expect(response.headers.get("weft-error")).toBe("no-endpoints");
    expect(net.upstream("http://127.0.0.1:9301")!.calls()).toBe(2);
  });

  it("leaves out endpoints whose lease has run out", async () => {
    const net = network();
    const proxy = createProxy({ service: "web", registry: createRegistry(), connect: net.connect, app: fakeUpstream(), now: () => T0 });
    proxy.update(
      snapshotOf({
        services: [{ name: "orders", endpoints: [{ id: "old", address: "http://127.0.0.1:9401", leaseExpiresAt: new Date(T0 - 1).toISOString() }] }],
      }),
    );
    expect((await call(proxy.outbound, "http://orders/")).headers.get("weft-error")).toBe("no-endpoints");
  });
});

describe("inbound", () => {
  const setup = (config: Record<string, unknown>, clock = createManualClock()) => {
    let now = T0;
    const plane = createPlane(() => now);
    const app = fakeUpstream();
    const registry = createRegistry({ clock });
    const proxy = createProxy({ service: "orders", registry, connect: network().connect, app, verifier: plane.verifier, clock });
    proxy.update(snapshotOf(config));
    return { plane, app, registry, proxy, tick: (ms: number) => (now += ms) };
  };

  it("verifies the caller, strips a spoofed weft-client-id and sets the verified one", async () => {
    const { plane, app, proxy } = setup({ services: [{ name: "orders" }] });
    const token = await plane.issuer.mint(WEB, "orders");
    const response = await call(proxy.inbound, "http://orders/api", { headers: { "weft-identity": token, "weft-client-id": "spiffe://evil/x" } });
    expect(response.status).toBe(200);
    expect(app.requests[0]!.headers.get("weft-client-id")).toBe(WEB);
    expect(app.requests[0]!.headers.has("weft-identity")).toBe(false);
  });

  it("refuses a token minted for another service, and counts the refusal", async () => {
    const { plane, app, proxy, registry } = setup({ services: [{ name: "orders" }] });
    const token = await plane.issuer.mint(WEB, "payments");
    const response = await call(proxy.inbound, "http://orders/api", { headers: { "weft-identity": token } });
    expect(response.status).toBe(401);
    expect(app.calls()).toBe(0);
    expect(registry.expose()).toMatch(/weft_response_total\{direction="inbound",src="",dst_service="orders",route="default",status_code="401",classification="failure",error="unauthenticated"\} 1/);
  });

  it("enforces a DENY policy with 403", async () => {
    const { plane, proxy } = setup({
      services: [{ name: "orders" }],
      policies: [{ name: "no-web", target: { service: "orders" }, action: "DENY", from: [{ identities: [WEB] }] }],
    });
    const token = await plane.issuer.mint(WEB, "orders");
    const response = await call(proxy.inbound, "http://orders/api", { headers: { "weft-identity": token } });
    expect(response.status).toBe(403);
    expect(response.headers.get("weft-error")).toBe("forbidden");
  });

  it("rate-limits above a second's worth of requests with 429 and retry-after", async () => {
    const { proxy } = setup({ services: [{ name: "orders", rateLimit: { rps: 5 } }] });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await call(proxy.inbound, "http://orders/")).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
  });

  it("gives a route its own rate limit in place of its service's, and each verified caller its share", async () => {
    const { plane, proxy } = setup({
      services: [{ name: "orders", rateLimit: { rps: 100, perKey: { rps: 2 } } }],
      routes: [{ name: "slow", service: "orders", matches: [{ path: { type: "PathPrefix", value: "/slow" } }], backends: [{ service: "orders" }], rateLimit: { rps: 1 } }],
    });
    const statuses = async (path: string, headers: Record<string, string> = {}) => {
      const out: number[] = [];
      for (let i = 0; i < 4; i++) out.push((await call(proxy.inbound, `http://orders${path}`, { headers })).status);
      return out;
    };
    expect(await statuses("/slow")).toEqual([200, 429, 429, 429]);
    // The service's limit, keyed by the verified caller: the anonymous callers share 2, web gets its own 2.
    expect(await statuses("/fast")).toEqual([200, 200, 429, 429]);
    const token = await plane.issuer.mint(WEB, "orders");
    expect(await statuses("/fast", { "weft-identity": token })).toEqual([200, 200, 429, 429]);
  });

  it("forwards the remaining deadline to the app", async () => {
    const { app, proxy } = setup({ services: [{ name: "orders" }] });
    await call(proxy.inbound, "http://orders/", { headers: { "weft-timeout-ms": "250" } });
    expect(Number(app.requests[0]!.headers.get("weft-timeout-ms"))).toBeLessThanOrEqual(250);
  });
});

describe("egress (issue 16)", () => {
  const external = { name: "pay", hosts: ["api.pay.example"], protocol: "https", address: "127.0.0.9:8443" };
  const plane = (egress?: "allow" | "deny" | "allow-listed") => {
    const net = network();
    const clock = createManualClock();
    const proxy = createProxy({ service: "web", registry: createRegistry({ clock }), connect: net.connect, app: fakeUpstream(), clock });
    proxy.update(snapshotOf({ externalServices: [external], ...(egress && { egress: { mode: egress } }) }));
    return { proxy, net };
  };

  it("sends a declared host to the external's origin, and refuses undeclared ones in allow-listed and deny", async () => {
    const listed = plane("allow-listed");
    expect((await call(listed.proxy.outbound, "http://api.pay.example/charge")).status).toBe(200);
    expect(listed.net.upstream("https://127.0.0.9:8443")!.calls()).toBe(1);
    const refused = await call(listed.proxy.outbound, "http://other.example.org/");
    expect([refused.status, refused.headers.get("weft-error")]).toEqual([403, "forbidden"]);

    const denied = plane("deny");
    expect((await call(denied.proxy.outbound, "http://api.pay.example/charge")).status).toBe(403);
  });

  it("passes an undeclared outside host through as named in mode allow, and keeps unknown-service without a mode", async () => {
    const open = plane("allow");
    expect((await call(open.proxy.outbound, "http://other.example.org:8080/x")).status).toBe(200);
    expect(open.net.upstream("http://other.example.org:8080")!.calls()).toBe(1);

    const none = plane();
    const unknown = await call(none.proxy.outbound, "http://other.example.org/x");
    expect([unknown.status, unknown.headers.get("weft-error")]).toEqual([404, "unknown-service"]);
    // Bare names stay mesh names in every mode.
    expect((await call(open.proxy.outbound, "http://nope/")).headers.get("weft-error")).toBe("unknown-service");
  });
});
