/**
 * Restart with persisted state: a control plane stopped and started again on the same data
 * folder has every resource, lease, audit entry, signing key, secret and version it had, and
 * its KV snapshot too.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { TestControl } from "./helpers.ts";
import { eventually, service, startTestControl } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "weft-control-restart-"));
// A fixed issuer, so tokens minted before the restart verify after it on a new port.
const issuerUrl = "http://127.0.0.1:8788";
let running: TestControl | undefined;

afterAll(async () => {
  await running?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const everything = async (control: TestControl) => ({
  snapshot: (await control.call("GET", "/v1/snapshot")).json,
  audit: (await control.call("GET", "/v1/audit?limit=1000")).json.entries,
  endpoints: (await control.call("GET", "/v1/services/orders/endpoints")).json.items,
  workers: (await control.call("GET", "/v1/identity/workers")).json.items,
  jwks: (await control.call("GET", "/.well-known/jwks.json")).json,
});

describe("restart", () => {
  it("loses nothing when stopped and started again on the same folder", async () => {
    running = await startTestControl({ issuerUrl, publishIntervalMs: 0 }, dir);
    await running.call("POST", "/v1/apply", {
      body: {
        resources: [
          { kind: "Service", name: "orders", balancer: "round-robin", timeout: "3s" },
          { kind: "Service", name: "web" },
          { kind: "Route", name: "orders-api", service: "orders", backends: [{ service: "orders" }] },
          { kind: "AuthorizationPolicy", name: "orders-from-web", target: { service: "orders" }, action: "ALLOW", from: [{ identities: ["spiffe://cluster.local/worker/web"] }] },
        ],
      },
    });
    await running.call("PUT", "/v1/services/orders/endpoints/pod-1", { body: { address: "http://127.0.0.1:9001", ttl: "1h" } });
    const secret = (await running.call("PUT", "/v1/identity/workers/web")).json.secret;
    const token = (await running.call("POST", "/v1/identity/token", { token: null, body: { audience: "weft-control", worker: { service: "web", secret } } })).json.token;
    const before = await everything(running);
    await running.stop();

    running = await startTestControl({ issuerUrl, publishIntervalMs: 0 }, dir);
    const after = await everything(running);
    expect(after).toEqual(before);
    expect(after.snapshot.services.find((s: { name: string }) => s.name === "orders").endpoints).toHaveLength(1);
    // The secret and the signing key survived: the old token still reads, a new one can be had.
    expect((await running.call("GET", "/v1/snapshot", { token })).status).toBe(200);
    expect((await running.call("POST", "/v1/identity/token", { token: null, body: { audience: "orders", worker: { service: "web", secret } } })).status).toBe(200);
    const kv = await running.mf.getKVNamespace("WEFT_CONFIG");
    const published = await eventually(async () => (await kv.get("snapshot", "text")) ?? undefined);
    expect(JSON.parse(published)).toEqual(before.snapshot);
    // The version counter carries on where it stopped.
    const next = await running.call("PUT", "/v1/services/web", { body: service() });
    expect(next.json.version).toBe(before.snapshot.version + 1);
  }, 30_000);
});
