import { describe, expect, it } from "vitest";
import type { Snapshot } from "../core/config/index.ts";
import { SnapshotSchema } from "../core/config/index.ts";
import { errorResponse } from "../core/errors.ts";
import type { Fetch, MeshRequest } from "../core/fetch.ts";
import { createRegistry } from "../core/metrics/index.ts";
import { DENIED_ADMIN_PATHS, createManualClock, fakeUpstream, type FakeUpstream } from "../testing/index.ts";
import { createProxy } from "./index.ts";

// Both sides of the proxy match routes and policy on the normalized path and forward that
// path (docs/architecture.md, "Paths"). The bypasses of issue 10 come first.

const snapshotOf = (input: Record<string, unknown>): Snapshot =>
  SnapshotSchema.parse({ version: 1, services: [], routes: [], policies: [], jwks: { keys: [] }, ...input });

const call = async (fetch: Fetch, url: string, init?: RequestInit) => {
  try {
    return await fetch(new Request(url, init));
  } catch (error) {
    return errorResponse(error);
  }
};

const pathOf = (request: MeshRequest) => request.url.slice(request.url.indexOf("/", "http://".length));

describe("inbound paths", () => {
  const setup = (config: Record<string, unknown>) => {
    const app = fakeUpstream();
    const clock = createManualClock();
    const registry = createRegistry({ clock });
    const proxy = createProxy({ service: "orders", registry, connect: () => fakeUpstream(), app, clock });
    proxy.update(snapshotOf({ services: [{ name: "orders" }], ...config }));
    return { app, proxy, registry };
  };
  const denyAdmin = { policies: [{ name: "no-admin", target: { service: "orders" }, action: "DENY", to: [{ paths: ["/admin", "/admin/*"] }] }] };

  it.each(DENIED_ADMIN_PATHS)("keeps %s from the app behind DENY /admin, /admin/* (%i)", async (path, status, code) => {
    const { app, proxy } = setup(denyAdmin);
    const response = await call(proxy.inbound, `http://orders${path}`);
    expect(response.status).toBe(status);
    expect(response.headers.get("weft-error")).toBe(code);
    expect(app.calls()).toBe(0);
  });

  it("forwards to the app the path the policy checked, query untouched", async () => {
    const { app, proxy } = setup(denyAdmin);
    const response = await call(proxy.inbound, "http://orders//users/%7eann/./orders/%2e%2e/cart?next=%2Fadmin%2F..&x=1", { method: "POST", body: "item=1" });
    expect(response.status).toBe(200);
    expect(pathOf(app.requests[0]!)).toBe("/users/~ann/cart?next=%2Fadmin%2F..&x=1");
    expect(app.requests[0]!.method).toBe("POST");
    expect(app.bodies[0]).toBe("item=1");
  });

  it("labels the route by the normalized path", async () => {
    const { proxy, registry } = setup({
      routes: [{ name: "api", service: "orders", matches: [{ path: { type: "PathPrefix", value: "/api" } }], backends: [{ service: "orders" }] }],
    });
    expect((await call(proxy.inbound, "http://orders//%61pi/items")).status).toBe(200);
    expect(registry.expose()).toMatch(/weft_request_total\{direction="inbound",src="",dst_service="orders",route="api"\} 1/);
  });

  it("counts a refused path as an inbound bad-request", async () => {
    const { proxy, registry } = setup({});
    expect((await call(proxy.inbound, "http://orders/a%5cb")).status).toBe(400);
    expect(registry.expose()).toMatch(/weft_response_total\{direction="inbound",src="",dst_service="orders",route="",status_code="400",classification="failure",error="bad-request"\} 1/);
  });
});

describe("outbound paths", () => {
  const setup = () => {
    const upstreams = new Map<string, FakeUpstream>();
    const connect = (endpoint: { address: string }) => {
      let upstream = upstreams.get(endpoint.address);
      if (!upstream) upstreams.set(endpoint.address, (upstream = fakeUpstream()));
      return upstream;
    };
    const proxy = createProxy({ service: "web", registry: createRegistry(), connect, app: fakeUpstream() });
    proxy.update(
      snapshotOf({
        services: [
          { name: "orders", endpoints: [{ id: "o", address: "http://127.0.0.1:9001" }] },
          { name: "admin", endpoints: [{ id: "a", address: "http://127.0.0.1:9002" }] },
        ],
        routes: [
          { name: "orders-admin", service: "orders", matches: [{ path: { type: "PathPrefix", value: "/admin" } }], backends: [{ service: "admin" }] },
          { name: "orders-api", service: "orders", matches: [{ path: { type: "PathPrefix", value: "/api" } }], backends: [{ service: "orders" }] },
        ],
      }),
    );
    return { proxy, upstream: (address: string) => upstreams.get(address) };
  };

  it("matches routes on the normalized path and sends that path on", async () => {
    const { proxy, upstream } = setup();
    expect((await call(proxy.outbound, "http://orders//api/./items")).status).toBe(200);
    expect((await call(proxy.outbound, "http://orders/%61dmin/users")).status).toBe(200);
    expect(pathOf(upstream("http://127.0.0.1:9001")!.requests[0]!)).toBe("/api/items");
    expect(pathOf(upstream("http://127.0.0.1:9002")!.requests[0]!)).toBe("/admin/users");
  });

  it("refuses an encoded slash with 400 before any route or endpoint sees it", async () => {
    const { proxy, upstream } = setup();
    const response = await call(proxy.outbound, "http://orders/api%2F..%2Fadmin");
    expect(response.status).toBe(400);
    expect(response.headers.get("weft-error")).toBe("bad-request");
    expect(upstream("http://127.0.0.1:9001")).toBeUndefined();
    expect(upstream("http://127.0.0.1:9002")).toBeUndefined();
  });
});
