import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistry } from "../../src/core/metrics/index.ts";
import { createControlClient, type ControlClient } from "../../src/proxy/index.ts";
import { startControl, type RunningControl } from "../../workers/control/local.ts";

const ADMIN = "test-admin-token-0123456789abcdef";
let control: RunningControl;
let client: ControlClient;

const admin = (method: string, path: string, body?: unknown) =>
  fetch(`${control.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });

beforeAll(async () => {
  control = await startControl({ adminToken: ADMIN, port: 0, trustDomain: "weft.test" });
  expect((await admin("PUT", "/v1/services/web", { name: "web" })).status).toBeLessThan(300);
  const { secret } = (await (await admin("PUT", "/v1/identity/workers/web", {})).json()) as { secret: string };
  client = createControlClient({ fetch: (request) => fetch(request), url: control.url, credential: { kind: "worker", service: "web", secret } });
});

afterAll(async () => {
  await control?.stop();
});

describe("the control client against the real control worker", () => {
  it("exchanges the bootstrap secret for a token and learns the issuer", async () => {
    const token = await client.tokens.token("orders");
    expect(token.split(".")).toHaveLength(3);
    expect(client.issuer()).toBe(control.url);
  });

  it("reads the snapshot, then gets nothing new for the version it holds", async () => {
    const snapshot = await client.snapshot();
    expect(snapshot?.services.map((s) => s.name)).toContain("web");
    expect(snapshot?.jwks.keys.length).toBeGreaterThan(0);
    expect(await client.snapshot({ version: snapshot!.version })).toBeUndefined();
  });

  it("wakes a long-poll when the config changes", async () => {
    const held = (await client.snapshot())!;
    const waiting = client.snapshot({ version: held.version, wait: 10 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await admin("PUT", "/v1/services/orders", { name: "orders" });
    const next = await waiting;
    expect(next?.version).toBeGreaterThan(held.version);
    expect(next?.services.map((s) => s.name)).toContain("orders");
  });

  it("registers its own endpoint, which then shows in the snapshot, and removes it", async () => {
    await client.register("web", "web-1", { address: "http://127.0.0.1:9999", ttl: "30s" });
    const withEndpoint = (await client.snapshot())!;
    expect(withEndpoint.services.find((s) => s.name === "web")?.endpoints?.map((e) => e.id)).toEqual(["web-1"]);
    await client.deregister("web", "web-1");
    const without = (await client.snapshot())!;
    expect(without.services.find((s) => s.name === "web")?.endpoints ?? []).toEqual([]);
  });

  it("may not register endpoints of another service", async () => {
    await expect(client.register("orders", "o-1", { address: "http://127.0.0.1:9998" })).rejects.toMatchObject({ code: "forbidden" });
  });

  it("pushes metric deltas that the control plane's stats then show", async () => {
    const registry = createRegistry();
    const labels = { direction: "outbound", src: "spiffe://weft.test/worker/web", dst_service: "orders", route: "default" } as const;
    for (let i = 0; i < 3; i++) {
      registry.countRequest(labels);
      registry.recordResponse(labels, { status_code: 200, classification: "success", error: "" }, 5);
    }
    await client.pushStats(registry.takeDelta(), "test-host");
    const stats = (await (await admin("GET", "/v1/stats")).json()) as { routes: { dst_service: string; requests: number; successRate: number }[] };
    const orders = stats.routes.find((r) => r.dst_service === "orders");
    expect(orders).toMatchObject({ requests: 3, successRate: 1 });
  });
});
