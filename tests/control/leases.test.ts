/**
 * Endpoint registration with leases, against the worker in workerd: registered endpoints are in
 * the snapshot until their lease runs out, renewals keep them without new versions, expiry
 * wakes long-polls and is audited as `system`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestControl } from "./helpers.ts";
import { eventually, service, startTestControl } from "./helpers.ts";

let control: TestControl;

beforeAll(async () => {
  control = await startTestControl();
  await control.call("PUT", "/v1/services/orders", { body: service({ endpoints: [{ id: "static-1", address: "http://10.0.0.1:8080" }] }) });
});

afterAll(async () => {
  await control?.destroy();
});

const endpointIds = async (name = "orders") => {
  const snapshot = await control.call("GET", "/v1/snapshot");
  const found = snapshot.json.services.find((s: { name: string }) => s.name === name);
  return (found?.endpoints ?? []).map((e: { id: string }) => e.id) as string[];
};

describe("endpoint leases", () => {
  it("registers an endpoint with 201 and puts it in the snapshot beside the static ones", async () => {
    const put = await control.call("PUT", "/v1/services/orders/endpoints/pod-a", { body: { address: "http://127.0.0.1:9001", weight: 5, ttl: "1h" } });
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({ id: "pod-a", address: "http://127.0.0.1:9001", weight: 5, ttl: "1h", outcome: "created" });
    expect(Date.parse(put.json.leaseExpiresAt)).toBeGreaterThan(Date.now());
    expect(put.headers.get("etag")).toBe(`"${put.json.version}"`);
    expect(await endpointIds()).toEqual(["static-1", "pod-a"]);
    const listed = await control.call("GET", "/v1/services/orders/endpoints");
    expect(listed.json.items.map((e: { id: string }) => e.id)).toEqual(["pod-a"]);
  });

  it("renews a lease without a new version, and takes one when the endpoint changes", async () => {
    const first = await control.call("PUT", "/v1/services/orders/endpoints/pod-b", { body: { address: "http://127.0.0.1:9002", ttl: "1h" } });
    const renewed = await control.call("PUT", "/v1/services/orders/endpoints/pod-b", { body: { address: "http://127.0.0.1:9002", ttl: "1h" } });
    expect(renewed.status).toBe(200);
    expect(renewed.json.outcome).toBe("renewed");
    expect(renewed.json.version).toBe(first.json.version);
    expect((await control.call("GET", "/v1/snapshot")).json.version).toBe(first.json.version);
    const changed = await control.call("PUT", "/v1/services/orders/endpoints/pod-b", { body: { address: "http://127.0.0.1:9003", ttl: "1h" } });
    expect(changed.json.outcome).toBe("updated");
    expect(changed.json.version).toBeGreaterThan(first.json.version);
  });

  it("drops an endpoint whose lease runs out and wakes a long-poll with the snapshot without it", async () => {
    await control.call("PUT", "/v1/services/orders/endpoints/pod-short", { body: { address: "http://127.0.0.1:9010", ttl: "2s" } });
    const current = await control.call("GET", "/v1/snapshot");
    expect(await endpointIds()).toContain("pod-short");
    const poll = await control.call("GET", "/v1/snapshot?wait=60", { headers: { "if-none-match": current.headers.get("etag")! } });
    expect(poll.status).toBe(200);
    const orders = poll.json.services.find((s: { name: string }) => s.name === "orders");
    expect(orders.endpoints.map((e: { id: string }) => e.id)).not.toContain("pod-short");
    const audit = await control.call("GET", "/v1/audit?limit=1000");
    const expiry = audit.json.entries.find((e: { action: string }) => e.action === "expire");
    expect(expiry).toMatchObject({ actor: "system", changes: [{ kind: "Endpoint", name: "orders/pod-short", outcome: "deleted" }], toVersion: poll.json.version });
  }, 15_000);

  it("keeps an endpoint whose lease is renewed in time", async () => {
    const register = () => control.call("PUT", "/v1/services/orders/endpoints/pod-renewed", { body: { address: "http://127.0.0.1:9011", ttl: "2s" } });
    await register();
    // Renewed every 0.5 s for 3 s: well past the 2 s lease, never near its end.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 500));
      expect((await register()).status).toBe(200);
    }
    expect(await endpointIds()).toContain("pod-renewed");
    await eventually(async () => ((await endpointIds()).includes("pod-renewed") ? undefined : true));
  }, 15_000);

  it("deregisters an endpoint, then answers 404 for it", async () => {
    await control.call("PUT", "/v1/services/orders/endpoints/pod-gone", { body: { address: "http://127.0.0.1:9012" } });
    const deleted = await control.call("DELETE", "/v1/services/orders/endpoints/pod-gone");
    expect(deleted.status).toBe(200);
    expect(await endpointIds()).not.toContain("pod-gone");
    expect((await control.call("DELETE", "/v1/services/orders/endpoints/pod-gone")).status).toBe(404);
  });

  it("refuses registrations for a missing service (404) and bad ones (400)", async () => {
    expect((await control.call("PUT", "/v1/services/nowhere/endpoints/p", { body: { address: "http://127.0.0.1:1" } })).status).toBe(404);
    for (const body of [{ address: "ftp://x" }, { address: "http://127.0.0.1:1", ttl: "100ms" }, { address: "http://127.0.0.1:1", ttl: "2h" }, { address: "http://127.0.0.1:1", id: "other" }, { address: "http://127.0.0.1:1", extra: true }]) {
      expect((await control.call("PUT", "/v1/services/orders/endpoints/pod-x", { body })).status, JSON.stringify(body)).toBe(400);
    }
    expect((await control.call("PUT", "/v1/services/orders/endpoints/bad%20id", { body: { address: "http://127.0.0.1:1" } })).status).toBe(400);
    expect((await control.call("PUT", "/v1/services/orders/endpoints/pod-y", { body: { address: "http://127.0.0.1:1" }, headers: { "if-match": '"1"' } })).status).toBe(412);
  });

  it("drops a service's registered endpoints with the service", async () => {
    await control.call("PUT", "/v1/services/temp", { body: service() });
    await control.call("PUT", "/v1/services/temp/endpoints/t1", { body: { address: "http://127.0.0.1:9020", ttl: "1h" } });
    expect(await endpointIds("temp")).toEqual(["t1"]);
    await control.call("DELETE", "/v1/services/temp");
    await control.call("PUT", "/v1/services/temp", { body: service() });
    expect(await endpointIds("temp")).toEqual([]);
  });
});
