/**
 * End-user authentication through the real router worker in workerd: the router of service
 * `api` (its app a plain `node:http` echo server on loopback, `APP_ORIGIN`) verifies tokens
 * from an issuer Weft did not write (keys by openssl, tokens by PyJWT, its JWKS on a plain
 * HTTP server), fetching the JWKS from inside workerd.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "node:http";
import { afterAll, beforeAll, describe } from "vitest";
import { startControl, type RunningControl } from "../../workers/control/local.ts";
import { startRouters, type RunningRouters } from "../../workers/router/local.ts";
import { endUserCases, endUserResources, type EndUserReply } from "../end-user/cases.ts";
import { startExternalIssuer, type ExternalIssuer } from "../end-user/issuer.ts";
import { startApp } from "../sidecar/pods.ts";

const ADMIN = "router-end-user-admin-0123456789";
const TRUST_DOMAIN = "weft.test";

let dir: string;
let control: RunningControl;
let mesh: RunningRouters;
let issuer: ExternalIssuer;
let app: { server: Server; port: number };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-router-end-user-"));
  issuer = await startExternalIssuer();
  app = await startApp("127.0.0.1", "api-app");
  control = await startControl({ adminToken: ADMIN, port: 0, persistDir: dir, trustDomain: TRUST_DOMAIN, publishIntervalMs: 0 });
  await control.admin("POST", "/v1/apply", { resources: endUserResources(issuer) });
  mesh = await startRouters({
    control: new URL(control.url).host,
    trustDomain: TRUST_DOMAIN,
    persistDir: dir,
    routers: [{ service: "api", secret: await control.workerSecret("api"), app: { origin: `http://127.0.0.1:${app.port}` } }],
  });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  await control?.stop();
  app?.server.closeAllConnections();
  app?.server.close();
  await issuer?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const call = async (path: string, headers: Record<string, string> = {}): Promise<EndUserReply> => {
  const response = await mesh.inbound("api", new Request(`http://api.test${path}`, { headers }));
  const body = (await response.json()) as { headers?: Record<string, string> };
  return { status: response.status, headers: response.headers, seen: body.headers };
};

describe("end-user authentication in the router worker", () => {
  endUserCases(() => ({ issuer, call }));
});
