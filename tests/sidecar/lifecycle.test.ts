/**
 * The sidecar process over its life: refusing a bad configuration, waiting for identity
 * before it is ready, draining on SIGTERM, the guarded `/shutdown`, and finding the control
 * plane again after it restarts. Real processes on 127.0.0.5 to .8.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControl, type RunningControl } from "../../workers/control/local.ts";
import { ADMIN, admin, callVia, createCluster, freePort, metricsOf, sample, spawnSidecar, startPod, TRUST_DOMAIN, type Cluster, type Pod } from "./pods.ts";

let control: RunningControl;
let cluster: Cluster;
let dir: string;
let port: number;
const pods: Pod[] = [];

const startTheControl = () => startControl({ adminToken: ADMIN, port, trustDomain: TRUST_DOMAIN, persistDir: join(dir, "control") });
const mesh = () => ({ control, cluster, dir });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "weft-sidecar-life-"));
  port = await freePort("127.0.0.1");
  control = await startTheControl();
  cluster = await createCluster(control);
  await admin(control, "PUT", "/v1/services/orders", { name: "orders" });
  await admin(control, "PUT", "/v1/services/web", { name: "web" });
}, 60_000);

afterAll(async () => {
  await Promise.all(pods.map((pod) => pod.kill().catch(() => {})));
  await control?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

const status = async (url: string) => {
  try {
    const response = await fetch(url);
    await response.body?.cancel();
    return response.status;
  } catch {
    return 0;
  }
};

async function endpointsOf(service: string): Promise<string[]> {
  const snapshot = (await admin(control, "GET", "/v1/snapshot")).json as { services: { name: string; endpoints?: { id: string }[] }[] };
  return snapshot.services.find((s) => s.name === service)?.endpoints?.map((e) => e.id) ?? [];
}

describe("configuration", () => {
  it("is refused with every problem named, exit status 78 and no stack trace", async () => {
    const sidecar = spawnSidecar(
      { WEFT_APP_PORT: "eighty", WEFT_CONTROL_URL: "ftp://control", WEFT_TRUST_DOMAIN: "Not A Domain", WEFT_ADMIN_SHUTDOWN_TOKEN: "short-secret" },
      { outbound: "", inbound: "", admin: "" },
    );
    expect(await sidecar.exited).toBe(78);
    const text = sidecar.log();
    for (const name of ["WEFT_SERVICE", "WEFT_CONTROL_URL", "WEFT_TRUST_DOMAIN", "WEFT_APP_PORT", "WEFT_ADMIN_SHUTDOWN_TOKEN"]) expect(text).toContain(name);
    expect(text).not.toContain("short-secret");
    expect(text).not.toMatch(/\n\s+at /);
  });

  it("needs the pod's IP (or an advertised address) to register", async () => {
    const sidecar = spawnSidecar({ WEFT_SERVICE: "orders", WEFT_CONTROL_URL: control.url, WEFT_APP_PORT: "8080" }, { outbound: "", inbound: "", admin: "" });
    expect(await sidecar.exited).toBe(78);
    expect(sidecar.log()).toContain("WEFT_POD_IP is required");
  });
});

describe("readiness", () => {
  it("waits for the pod's identity, reading the projected token afresh until the control plane accepts it", async () => {
    // A token no trusted cluster signed: the exchange fails, so the sidecar is live but not ready.
    const pod = await startPod(mesh(), { name: "orders-late", ip: "127.0.0.7", service: "orders", ready: false, token: "not-a-token" });
    pods.push(pod);
    const tokenFile = join(dir, "orders-late.token");
    await until(async () => pod.sidecar.log().includes("control-plane-unreachable"));
    expect(await status(`${pod.sidecar.admin}/ready`)).toBe(503);
    expect(await status(`${pod.sidecar.admin}/live`)).toBe(200);
    const early = await callVia(pod, "orders", "/");
    expect(early.status).toBe(503);
    expect(early.headers["weft-error"]).toBe("no-endpoints");
    // The kubelet rotates the file; the next exchange reads the new token and succeeds.
    await cluster.project(tokenFile, "shop", "orders", "orders-late");
    await until(async () => (await status(`${pod.sidecar.admin}/ready`)) === 200);
    await until(async () => (await endpointsOf("orders")).includes("orders-late"));
  });
});

describe("drain", () => {
  it("on SIGTERM: goes unready, leaves the mesh, finishes the request in flight, exits 0", async () => {
    const [server, client] = await Promise.all([
      startPod(mesh(), { name: "orders-drain", ip: "127.0.0.5", service: "orders", env: { WEFT_SHUTDOWN_GRACE: "10s" } }),
      startPod(mesh(), { name: "web-drain", ip: "127.0.0.6", service: "web" }),
    ]);
    pods.push(server, client);
    await until(async () => (await endpointsOf("orders")).includes("orders-drain"));
    // Keep only the draining pod as an orders endpoint for this call: the other one leaves.
    const late = pods.find((p) => p.name === "orders-late");
    if (late) expect(await late.stop()).toBe(0);
    await until(async () => (await endpointsOf("orders")).join() === "orders-drain");
    await until(async () => {
      const reply = await callVia(client, "orders", "/warm");
      return reply.status === 200 && reply.body.pod === "orders-drain";
    });

    const calls = server.app.calls();
    const slow = callVia(client, "orders", "/slow?ms=1500");
    await until(async () => server.app.calls() > calls);
    server.sidecar.child.kill("SIGTERM");
    await until(async () => (await status(`${server.sidecar.admin}/ready`)) === 503);
    await until(async () => !(await endpointsOf("orders")).includes("orders-drain"));
    const reply = await slow;
    expect(reply.status).toBe(200);
    expect(reply.body.pod).toBe("orders-drain");
    expect(await server.sidecar.exited).toBe(0);
    expect(server.sidecar.log()).toContain('"event":"drained"');
    expect(server.sidecar.log()).not.toContain("drain-grace-expired");
  });
});

describe("the shutdown endpoint", () => {
  it("is disabled unless a token is configured", async () => {
    const pod = await startPod(mesh(), { name: "web-noshut", ip: "127.0.0.8", service: "web" });
    pods.push(pod);
    const response = await fetch(`${pod.sidecar.admin}/shutdown`, { method: "POST" });
    expect(response.status).toBe(404);
    await pod.stop();
  });

  it("takes only POST with the token, then drains and exits 0", async () => {
    const token = "shutdown-token-0123456789abcdef";
    const pod = await startPod(mesh(), { name: "web-shut", ip: "127.0.0.8", service: "web", env: { WEFT_ADMIN_SHUTDOWN_TOKEN: token } });
    pods.push(pod);
    const url = `${pod.sidecar.admin}/shutdown`;
    expect((await fetch(url)).status).toBe(405);
    expect((await fetch(url, { method: "POST" })).status).toBe(401);
    expect((await fetch(url, { method: "POST", headers: { authorization: "Bearer wrong-token-0123456789" } })).status).toBe(401);
    expect((await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` } })).status).toBe(202);
    expect(await pod.sidecar.exited).toBe(0);
    expect(pod.sidecar.log()).not.toContain(token);
  });
});

describe("the control plane", () => {
  it("is found again after a restart, and the config changed meanwhile arrives", async () => {
    const pod = await startPod(mesh(), { name: "web-reconnect", ip: "127.0.0.6", service: "web", env: { WEFT_SNAPSHOT_WAIT: "5s" } });
    pods.push(pod);
    await control.stop();
    await until(async () => pod.sidecar.log().includes("control-plane-unreachable"));
    expect(await status(`${pod.sidecar.admin}/ready`)).toBe(200);
    control = await startTheControl();
    await admin(control, "PUT", "/v1/services/payments", { name: "payments" });
    const version = (await admin(control, "GET", "/v1/snapshot")).json.version as number;
    await until(async () => (sample(await metricsOf(pod.sidecar), "weft_config_version") ?? -1) >= version);
    expect(pod.sidecar.log()).toContain("control-plane-reconnected");
    expect(pod.sidecar.log()).not.toContain("unhandled-rejection");
  });
});
