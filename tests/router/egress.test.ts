/**
 * Egress through the real router worker in workerd (issue 16): the mesh in `allow-listed`
 * mode, an `ExternalService` for `api.payments.example` reached in plain HTTP at a `node:http`
 * server on loopback (its `address`), and an app worker calling out through its router's
 * outbound side. The declared host is served and gets no mesh credentials; an undeclared
 * outside host is refused 403; a bare name stays `unknown-service`.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControl, type RunningControl } from "../../workers/control/local.ts";
import { startRouters, type RunningRouters } from "../../workers/router/local.ts";

const ADMIN = "router-egress-admin-0123456789abcd";
const TRUST_DOMAIN = "weft.test";

let dir: string;
let control: RunningControl;
let mesh: RunningRouters;
let external: Server;
const seen: { path: string; headers: IncomingHttpHeaders }[] = [];

interface Downstream {
  status: number;
  error: string | null;
  body: { outside?: boolean; path?: string } | null;
}

/** The app `shop` calls `target` through its router; resolves with what came back to it. */
async function callOut(target: string): Promise<Downstream> {
  const response = await mesh.app("app-shop", new Request(`http://shop.test/?call=${target}&q=1`));
  expect(response.status).toBe(200);
  return ((await response.json()) as { downstream: Downstream }).downstream;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-router-egress-"));
  external = createServer((req, res) => {
    seen.push({ path: req.url ?? "", headers: req.headers });
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ outside: true, path: req.url }));
  });
  const port = await new Promise<number>((resolve) => external.listen(0, "127.0.0.1", () => resolve((external.address() as { port: number }).port)));
  control = await startControl({ adminToken: ADMIN, port: 0, persistDir: dir, trustDomain: TRUST_DOMAIN, publishIntervalMs: 0, egressMode: "allow-listed" });
  await control.admin("POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "shop" },
      { kind: "ExternalService", name: "payments", hosts: ["api.payments.example"], protocol: "http", address: `127.0.0.1:${port}` },
    ],
  });
  mesh = await startRouters({
    control: new URL(control.url).host,
    trustDomain: TRUST_DOMAIN,
    persistDir: dir,
    routers: [{ service: "shop", secret: await control.workerSecret("shop"), app: { worker: "app-shop" } }],
    apps: [{ name: "app-shop", entry: "tests/router/echo-app.ts", mesh: "shop", vars: { NAME: "shop" } }],
  });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  await control?.stop();
  external?.closeAllConnections();
  external?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("egress in the router worker (allow-listed)", () => {
  it("serves a host an ExternalService declares, at its address, without the mesh's credentials", async () => {
    const before = seen.length;
    const answer = await callOut("api.payments.example");
    expect(answer.status).toBe(200);
    expect(answer.error).toBeNull();
    expect(answer.body).toEqual({ outside: true, path: "/?q=1" });
    expect(seen.length).toBe(before + 1);
    const headers = seen.at(-1)!.headers;
    // The workload's identity and the mesh's own headers stay inside the mesh.
    expect(headers["weft-identity"]).toBeUndefined();
    expect(headers["weft-client-id"]).toBeUndefined();
    expect(Object.keys(headers).filter((name) => name.startsWith("weft-identity"))).toEqual([]);
  });

  it("refuses an outside host nobody declared, 403 forbidden, without calling anything", async () => {
    const before = seen.length;
    const answer = await callOut("evil.example.net");
    expect(answer.status).toBe(403);
    expect(answer.error).toBe("forbidden");
    expect(seen.length).toBe(before);
  });

  it("keeps a bare name that is no service unknown-service (404)", async () => {
    const answer = await callOut("nope");
    expect(answer.status).toBe(404);
    expect(answer.error).toBe("unknown-service");
  });
});
