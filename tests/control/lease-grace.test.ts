/**
 * Lease grace after a control-plane outage, against the real worker in workerd with its data
 * on disk: stopped for longer than the endpoints' leases and started again, the store keeps
 * every registered endpoint in the snapshot for one lease TTL from the restart; those renewed
 * in that time stay, the others go only once the grace is over.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { TestControl } from "./helpers.ts";
import { eventually, service, startTestControl } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "weft-control-grace-"));
/** The leases' length: 3 s (a 1 s heartbeat: the store counts as away after 2 s without one). */
const TTL_MS = 3_000;
/** The outage: longer than a lease, so every lease runs out while the store is down. */
const OUTAGE_MS = 5_000;

let running: TestControl | undefined;

afterAll(async () => {
  await running?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const ordersEndpoints = async (control: TestControl): Promise<string[]> => {
  const snapshot = await control.call("GET", "/v1/snapshot");
  const orders = snapshot.json.services.find((s: { name: string }) => s.name === "orders");
  return (orders?.endpoints ?? []).map((e: { id: string }) => e.id);
};

const register = (control: TestControl, id: string) =>
  control.call("PUT", `/v1/services/orders/endpoints/${id}`, { body: { address: `http://127.0.0.1:${9000 + id.length}`, ttl: `${TTL_MS / 1000}s` } });

describe("lease grace after a restart", () => {
  it("keeps every endpoint through an outage longer than its lease, then drops only the ones not renewed", async () => {
    running = await startTestControl({ publishIntervalMs: 0 }, dir);
    await running.call("PUT", "/v1/services/orders", { body: service({ endpoints: [{ id: "static-1", address: "http://10.0.0.1:8080" }] }) });
    expect((await register(running, "pod-kept")).status).toBe(201);
    expect((await register(running, "pod-gone")).status).toBe(201);
    expect(await ordersEndpoints(running)).toEqual(["static-1", "pod-gone", "pod-kept"]);
    await running.stop();

    // The outage: the leases (3 s) run out while nothing runs.
    await new Promise((r) => setTimeout(r, OUTAGE_MS));

    const restartedAt = Date.now();
    running = await startTestControl({ publishIntervalMs: 0 }, dir);
    const control = running;
    // Back up: both registered endpoints are still there, each with a lease running one TTL from the restart.
    expect(await ordersEndpoints(control)).toEqual(["static-1", "pod-gone", "pod-kept"]);
    const listed = await control.call("GET", "/v1/services/orders/endpoints");
    for (const item of listed.json.items) expect(Date.parse(item.leaseExpiresAt), item.id).toBeGreaterThanOrEqual(restartedAt + TTL_MS);

    // pod-kept's registrant is back and renews at a third of its lease; pod-gone's never returns.
    let renewing = true;
    const renewals = (async () => {
      while (renewing) {
        expect((await register(control, "pod-kept")).status).toBe(200);
        await new Promise((r) => setTimeout(r, TTL_MS / 3));
      }
    })();
    try {
      await eventually(async () => ((await ordersEndpoints(control)).includes("pod-gone") ? undefined : true), 30_000);
    } finally {
      renewing = false;
      await renewals;
    }
    expect(await ordersEndpoints(control)).toEqual(["static-1", "pod-kept"]);

    // The expiry was the store's own, after the grace: one `system` change, pod-gone only.
    const audit = (await control.call("GET", "/v1/audit?limit=1000")).json.entries as { at: string; actor: string; action: string; changes: { name: string }[] }[];
    const expiries = audit.filter((e) => e.action === "expire");
    expect(expiries).toHaveLength(1);
    expect(expiries[0]).toMatchObject({ actor: "system", changes: [{ kind: "Endpoint", name: "orders/pod-gone", outcome: "deleted" }] });
    expect(Date.parse(expiries[0]!.at)).toBeGreaterThanOrEqual(restartedAt + TTL_MS);
  }, 90_000);
});
