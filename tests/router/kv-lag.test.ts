/**
 * A fresh mesh's first call while the KV snapshot lags the control plane (KV is eventually
 * consistent; on Cloudflare a write can take up to 60 s to be seen everywhere). The routers
 * start on the snapshot KV holds, which does not name the services just applied yet: a call
 * to one must be answered from the control plane itself, not 404 until KV catches up.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControl, type RunningControl } from "../../workers/control/local.ts";
import { startRouters, type RunningRouters } from "../../workers/router/local.ts";

const ADMIN = "kv-lag-admin-token-0123456789abcdef";
const TRUST_DOMAIN = "weft.test";

let dir: string;
let control: RunningControl;
let mesh: RunningRouters;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-kv-lag-"));
  // After the first publish, KV is not written again for 10 minutes: it lags on purpose.
  control = await startControl({ adminToken: ADMIN, port: 0, persistDir: dir, trustDomain: TRUST_DOMAIN, publishIntervalMs: 600_000 });
  await control.admin("POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "a", endpoints: [{ id: "a", address: "binding:A" }] },
      { kind: "Service", name: "b", endpoints: [{ id: "b", address: "binding:B" }] },
    ],
  });
  const secrets: Record<string, string> = {};
  for (const service of ["a", "b"]) secrets[service] = await control.workerSecret(service);
  mesh = await startRouters({
    control: new URL(control.url).host,
    trustDomain: TRUST_DOMAIN,
    persistDir: dir,
    routers: ["a", "b"].map((service) => ({ service, secret: secrets[service]!, app: { worker: `app-${service}` } })),
    apps: ["a", "b"].map((name) => ({ name: `app-${name}`, entry: "tests/router/echo-app.ts", mesh: name, vars: { NAME: name } })),
  });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  await control?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("a fresh mesh whose KV snapshot lags the control plane", () => {
  it("holds a snapshot in KV that names none of the services yet", async () => {
    const text = await control.mf.getKVNamespace("WEFT_CONFIG").then((kv) => kv.get("snapshot", "text"));
    expect(JSON.parse(text!).services).toEqual([]);
  });

  it("answers the first call across two routers with the caller verified", async () => {
    const response = await mesh.inbound("a", new Request("http://a.test/?call=b"));
    const body = (await response.json()) as Record<string, any>;
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.downstream).toMatchObject({ status: 200, body: { app: "b", clientId: `spiffe://${TRUST_DOMAIN}/worker/a` } });
  });
});
