/**
 * The sidecar end to end: three "pods" (an app server and a real sidecar process each) on
 * 127.0.0.2, .3 and .4, and the control plane in workerd. Calls go app → sidecar → sidecar →
 * app, with identity, splits, retries, deadlines and policy; then a pod dies under load, a
 * policy edit is timed to every sidecar, and the control plane goes away.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admin, callVia, metricsOf, sample, startMesh, startPod, TRUST_DOMAIN, type Mesh, type Pod, type Reply } from "./pods.ts";

const WEB_ID = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/web`;

let mesh: Mesh;
let web: Pod;
let ordersA: Pod;
let ordersB: Pod;

beforeAll(async () => {
  mesh = await startMesh();
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "web", defaultPolicy: "all-authenticated" },
      {
        kind: "Service",
        name: "orders",
        defaultPolicy: "all-authenticated",
        retry: { limit: 2, on: ["gateway-error", "reset"], budget: { ratio: 0.5, minPerSecond: 100, ttl: "10s" } },
        failureAccrual: { consecutiveFailures: 2, backoff: { min: "10s", max: "30s" } },
      },
      // An apex service with no endpoints of its own: its route splits 3:1 between two others.
      { kind: "Service", name: "shop" },
      { kind: "Route", name: "shop-split", service: "shop", backends: [{ service: "orders", weight: 3 }, { service: "web", weight: 1 }] },
      { kind: "Route", name: "orders-slow", service: "orders", matches: [{ path: { type: "PathPrefix", value: "/slow" } }], backends: [{ service: "orders" }], timeouts: { request: "300ms" } },
      { kind: "Route", name: "orders-default", service: "orders", backends: [{ service: "orders" }] },
    ],
  });
  [web, ordersA, ordersB] = await Promise.all([
    startPod(mesh, { name: "web-1", ip: "127.0.0.2", service: "web" }),
    startPod(mesh, { name: "orders-a", ip: "127.0.0.3", service: "orders" }),
    startPod(mesh, { name: "orders-b", ip: "127.0.0.4", service: "orders" }),
  ]);
  mesh.pods.push(web, ordersA, ordersB);
  // Each sidecar registers itself once ready; wait until web's sidecar sees both orders pods.
  await until(async () => (await snapshotEndpoints("orders")).length === 2 && (await snapshotEndpoints("web")).length === 1);
  await until(async () => sample(await metricsOf(web.sidecar), "weft_config_version")! >= (await controlVersion()));
}, 90_000);

afterAll(async () => {
  await mesh?.destroy();
});

async function controlVersion(): Promise<number> {
  return (await admin(mesh.control, "GET", "/v1/snapshot")).json.version as number;
}

async function snapshotEndpoints(service: string): Promise<string[]> {
  const snapshot = (await admin(mesh.control, "GET", "/v1/snapshot")).json as { services: { name: string; endpoints?: { id: string }[] }[] };
  return snapshot.services.find((s) => s.name === service)?.endpoints?.map((e) => e.id) ?? [];
}

async function until(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One request in absolute form, as an app with HTTP_PROXY sends it, over a raw socket. */
function absoluteForm(pod: Pod, url: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(pod.sidecar.outbound);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(`GET ${url} HTTP/1.1\r\nHost: ${new URL(url).host}\r\nConnection: close\r\n\r\n`));
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const [head = "", ...rest] = data.split("\r\n\r\n");
      const body = rest.join("\r\n\r\n");
      // A chunked body: take the first chunk's data, enough for the small JSON answers here.
      const chunked = /transfer-encoding: chunked/i.test(head) ? body.split("\r\n")[1] ?? "" : body;
      resolve({ status: Number(head.split(" ")[1]), body: chunked });
    });
  });
}

describe("calls through two sidecars", () => {
  it("carry the caller's verified identity to the app, in origin form and in absolute form", async () => {
    const origin = await callVia(web, "orders", "/items?x=1");
    expect(origin.status).toBe(200);
    expect(origin.body).toMatchObject({ path: "/items?x=1", host: "orders", clientId: WEB_ID });
    expect(["orders-a", "orders-b"]).toContain(origin.body.pod);
    // The token itself never reaches the app.
    expect(origin.body.identityHeader).toBeUndefined();

    const absolute = await absoluteForm(web, "http://orders.shop.svc.cluster.local/abs");
    expect(absolute.status).toBe(200);
    expect(JSON.parse(absolute.body)).toMatchObject({ path: "/abs", clientId: WEB_ID });
  });

  it("replace a weft-client-id the caller made up with the verified one", async () => {
    const reply = await callVia(web, "orders", "/who", { headers: { "weft-client-id": "spiffe://weft.test/ns/kube-system/sa/admin" } });
    expect(reply.body.clientId).toBe(WEB_ID);
  });

  it("are refused at an inbound port reached directly without identity, where the service requires it", async () => {
    const response = await fetch(`${ordersA.sidecar.inbound}/items`);
    expect(response.status).toBe(401);
    expect(response.headers.get("weft-error")).toBe("unauthenticated");
    expect(ordersA.app.calls()).toBeGreaterThanOrEqual(0);
  });

  it("stream large bodies both ways", async () => {
    const big = await callVia(web, "orders", "/big?kb=4096");
    expect(big.status).toBe(200);
    expect(String(big.body).length).toBe(4096 * 1024);
    const upload = await callVia(web, "orders", "/upload", { method: "POST", body: new Uint8Array(3 * 1024 * 1024).fill(7), headers: { "content-type": "application/octet-stream" } });
    expect(upload.status).toBe(200);
    expect(upload.body.bodyBytes).toBe(3 * 1024 * 1024);
  });

  it("answer unknown-service for a destination the mesh does not have", async () => {
    const reply = await callVia(web, "nowhere", "/");
    expect(reply.status).toBe(404);
    expect(reply.headers["weft-error"]).toBe("unknown-service");
  });

  it("split a route's traffic by weight between two services", async () => {
    const pods: string[] = [];
    for (let i = 0; i < 400; i++) {
      const reply = await callVia(web, "shop", "/split");
      expect(reply.status).toBe(200);
      pods.push(reply.body.pod);
    }
    const toWeb = pods.filter((p) => p === "web-1").length;
    // A quarter of 400 is 100; the standard deviation is about 8.7, so ±4σ.
    expect(Math.abs(toWeb - 100)).toBeLessThan(35);
    expect(pods.filter((p) => p.startsWith("orders-")).length).toBe(400 - toWeb);
  });

  it("retry a failed try on the service's retry policy, numbering the attempts", async () => {
    const before = sample(await metricsOf(web.sidecar), "weft_retry_total", { dst_service: "orders" }) ?? 0;
    const reply = await callVia(web, "orders", "/fail?times=1&key=retry-1");
    expect(reply.status).toBe(200);
    expect(reply.body.attempt).toBe("2");
    expect(sample(await metricsOf(web.sidecar), "weft_retry_total", { dst_service: "orders" })).toBe(before + 1);
  });

  it("cut a call at its route's timeout, and tell the app how much time is left", async () => {
    const slow = await callVia(web, "orders", "/slow?ms=3000");
    expect(slow.status).toBe(504);
    expect(slow.headers["weft-error"]).toBe("deadline-exceeded");
    const quick = await callVia(web, "orders", "/slow?ms=1");
    expect(quick.status).toBe(200);
    const left = Number(quick.body.timeoutMs);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(300);
    // A budget the caller sets travels too, shrinking at each hop.
    const budget = await callVia(web, "orders", "/items", { headers: { "weft-timeout-ms": "150" } });
    expect(Number(budget.body.timeoutMs)).toBeLessThanOrEqual(150);
  });
});

describe("policy", () => {
  it("reaches every sidecar within a second of the edit, and denies what it names", async () => {
    const sidecars = [web, ordersA, ordersB].map((p) => p.sidecar);
    expect((await callVia(web, "orders", "/admin/users")).status).toBe(200);
    const edited = Date.now();
    await admin(mesh.control, "PUT", "/v1/policies/no-admin-from-web", {
      name: "no-admin-from-web",
      target: { service: "orders" },
      action: "DENY",
      from: [{ identities: [WEB_ID] }],
      to: [{ paths: ["/admin*"] }],
    });
    const version = await controlVersion();
    const reached = await Promise.all(
      sidecars.map(async (sidecar) => {
        await until(async () => sample(await metricsOf(sidecar), "weft_config_version")! >= version, 10_000);
        return Date.now() - edited;
      }),
    );
    // The bound for propagation by long-poll: under a second to every sidecar.
    expect(Math.max(...reached)).toBeLessThan(1_000);

    const denied = await callVia(web, "orders", "/admin/users");
    expect(denied.status).toBe(403);
    expect(denied.headers["weft-error"]).toBe("forbidden");
    expect((await callVia(web, "orders", "/items")).status).toBe(200);
    // The refusal is counted on the inbound side of the pod that refused it.
    const refused = await Promise.all([ordersA, ordersB].map(async (p) => sample(await metricsOf(p.sidecar), "weft_response_total", { direction: "inbound", status_code: "403" }) ?? 0));
    expect(refused[0]! + refused[1]!).toBeGreaterThanOrEqual(1);
  });
});

describe("failures", () => {
  it("lose no idempotent request when a pod dies under load, within the retry budget", async () => {
    const before = await metricsOf(web.sidecar);
    const replies: Reply[] = [];
    let stop = false;
    const worker = async () => {
      while (!stop) replies.push(await callVia(web, "orders", "/load"));
    };
    const workers = Array.from({ length: 8 }, worker);
    await until(async () => replies.length >= 100);
    await ordersB.kill();
    const killedAt = replies.length;
    await until(async () => replies.length >= killedAt + 400);
    stop = true;
    await Promise.all(workers);

    const failed = replies.filter((r) => r.status !== 200);
    expect(failed.map((r) => [r.status, r.headers["weft-error"]])).toEqual([]);
    expect(replies.slice(killedAt + 50).every((r) => r.body.pod === "orders-a")).toBe(true);
    const after = await metricsOf(web.sidecar);
    expect(sample(after, "weft_retry_budget_exhausted_total", { dst_service: "orders" }) ?? 0).toBe(sample(before, "weft_retry_budget_exhausted_total", { dst_service: "orders" }) ?? 0);
    expect(sample(after, "weft_endpoint_ejections_total", { dst_service: "orders" }) ?? 0).toBeGreaterThan(0);
  });

  it("keep traffic flowing on the last config and tokens when the control plane is gone", async () => {
    await mesh.control.stop();
    for (let i = 0; i < 20; i++) {
      const reply = await callVia(web, "orders", `/after-control/${i}`);
      expect(reply.status).toBe(200);
      expect(reply.body.clientId).toBe(WEB_ID);
    }
    // Still ready: a missing control plane is no reason to take the pod out of service.
    expect((await fetch(`${web.sidecar.admin}/ready`)).status).toBe(200);
    for (const pod of [web, ordersA]) expect(pod.sidecar.log()).not.toContain("unhandled-rejection");
  });
});
