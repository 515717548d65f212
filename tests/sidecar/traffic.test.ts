/**
 * Traffic tools end to end through real sidecar processes (issue 16): a route that mirrors a
 * quarter of its calls to a shadow service, mirrors that hang or are refused, and fault
 * injection (rates, the trigger header, retries and failure accrual), with the control plane
 * in workerd and one app per pod.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admin, callVia, freePort, metricsOf, sample, startMesh, startPod, type Mesh, type Pod } from "./pods.ts";

const N = 2_000;
/**
 * The bound on a count of `n` draws at probability `p`: five standard deviations. The sidecar
 * draws with `Math.random` in its own process, so no seed reaches it; at 3σ a correct sidecar
 * failed one assertion in a few hundred runs (CI, 2026-12-03: 60 off against a bound of 58),
 * at 5σ about once in 1.7 million, while a wrong share or a missing retry is still far outside
 * (no retry: 1,000 of 2,000 fail against 500, 26σ off).
 */
const fiveSigma = (n: number, p: number) => 5 * Math.sqrt(n * p * (1 - p));

let mesh: Mesh;
let web: Pod;
let orders: Pod;
let shadow: Pod;
let hung: Server;
const hungSockets = new Set<Socket>();

beforeAll(async () => {
  mesh = await startMesh();
  // A mirror that accepts connections and never answers, and one whose port refuses them.
  hung = createServer((socket) => {
    hungSockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => hungSockets.delete(socket));
  });
  await new Promise<void>((resolve) => hung.listen(0, "127.0.0.5", resolve));
  const hungPort = (hung.address() as { port: number }).port;
  const refusedPort = await freePort("127.0.0.5");
  const route = (name: string, prefix: string, extra: Record<string, unknown>) => ({
    kind: "Route",
    name,
    service: "orders",
    matches: [{ path: { type: "PathPrefix", value: prefix } }],
    backends: [{ service: "orders" }],
    ...extra,
  });
  const mirrorTo = (service: string, percent: number, timeout?: string) => ({ type: "RequestMirror", requestMirror: { backendRef: { service }, percent, ...(timeout && { timeout }) } });
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "web" },
      // Failure accrual that three failures in a row would trip: injected aborts must not.
      { kind: "Service", name: "orders", failureAccrual: { consecutiveFailures: 3, backoff: { min: "30s", max: "60s" } } },
      { kind: "Service", name: "shadow" },
      { kind: "Service", name: "hung", endpoints: [{ id: "hung-1", address: `http://127.0.0.5:${hungPort}` }] },
      { kind: "Service", name: "refused", endpoints: [{ id: "refused-1", address: `http://127.0.0.5:${refusedPort}` }] },
      route("mirror-quarter", "/mirror", { filters: [mirrorTo("shadow", 25)] }),
      // Copies to the hung mirror give up after 3 s, so later cases find the pool free again.
      route("mirror-hung", "/hung", { filters: [mirrorTo("hung", 100, "3s")] }),
      route("mirror-refused", "/refused", { filters: [mirrorTo("refused", 100)] }),
      route("fault-rates", "/fault", {
        filters: [{ type: "FaultInjection", faultInjection: { delay: { fixedDelay: "20ms", percent: 10 }, abort: { httpStatus: 503, percent: 20 } } }],
      }),
      route("fault-trigger", "/chaos", {
        filters: [{ type: "FaultInjection", faultInjection: { abort: { httpStatus: 500, percent: 100 }, header: { name: "x-chaos", value: "tester-1" } } }],
      }),
      route("fault-retried", "/retried", {
        retry: { limit: 1, on: ["5xx"], budget: { ratio: 1000, minPerSecond: 100_000, ttl: "10s" } },
        filters: [{ type: "FaultInjection", faultInjection: { abort: { httpStatus: 503, percent: 50 } } }],
      }),
      route("orders-default", "/", {}),
    ],
  });
  [web, orders, shadow] = await Promise.all([
    startPod(mesh, { name: "web-1", ip: "127.0.0.2", service: "web" }),
    startPod(mesh, { name: "orders-1", ip: "127.0.0.3", service: "orders" }),
    startPod(mesh, { name: "shadow-1", ip: "127.0.0.4", service: "shadow" }),
  ]);
  mesh.pods.push(web, orders, shadow);
  await until(async () => (await callVia(web, "orders", "/ping")).status === 200 && (await callVia(web, "shadow", "/ping")).status === 200);
}, 90_000);

afterAll(async () => {
  for (const socket of hungSockets) socket.destroy();
  hung?.close();
  await mesh?.destroy();
});

async function until(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `n` calls from web to orders at `path`, 16 at a time; each call's status and weft-error. */
async function calls(n: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; error: string | undefined }[]> {
  const out: { status: number; error: string | undefined }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        next++;
        const reply = await callVia(web, "orders", path, { headers });
        out.push({ status: reply.status, error: reply.headers["weft-error"] as string | undefined });
      }
    }),
  );
  return out;
}

const mirrorCount = async (outcome: string, mirror: string) => sample(await metricsOf(web.sidecar), "weft_mirror_total", { mirror, outcome }) ?? 0;

describe("mirroring through the sidecar", () => {
  it("copies 25 % of 2,000 calls to the shadow service (within 5σ), marked, with every primary answered", async () => {
    const before = shadow.app.calls();
    const replies = await calls(N, "/mirror/items");
    expect(replies.every((r) => r.status === 200)).toBe(true);
    // Copies finish after their responses: wait for the counter to account for all of them.
    await until(async () => (await mirrorCount("completed", "shadow")) + (await mirrorCount("failed", "shadow")) === shadow.app.calls() - before);
    const copies = shadow.app.calls() - before;
    expect(Math.abs(copies - N * 0.25)).toBeLessThanOrEqual(fiveSigma(N, 0.25));
    expect(await mirrorCount("failed", "shadow")).toBe(0);
    // Every copy arrived marked; the primaries, at orders, never are.
    expect(shadow.app.mirrored()).toBe(copies);
    expect(orders.app.mirrored()).toBe(0);
  });

  it("a mirror whose port refuses connections changes no primary's status, and its copies count as failed", async () => {
    const replies = await calls(200, "/refused/items");
    expect(replies.filter((r) => r.status !== 200)).toEqual([]);
    // Run before the hung mirror fills the pool: every copy was sent, and failed.
    await until(async () => (await mirrorCount("failed", "refused")) === 200);
    expect(await mirrorCount("dropped-in-flight", "refused")).toBe(0);
  });

  it("a mirror that never answers changes no primary's status, and holds at most 100 copies (the rest dropped, counted)", async () => {
    const replies = await calls(400, "/hung/items");
    expect(replies.filter((r) => r.status !== 200)).toEqual([]);
    expect(hungSockets.size).toBeLessThanOrEqual(100);
    expect(await mirrorCount("dropped-in-flight", "hung")).toBeGreaterThan(0);
    // Every copy is accounted for once the held ones time out: sent and failed, or dropped.
    await until(async () => (await mirrorCount("failed", "hung")) + (await mirrorCount("dropped-in-flight", "hung")) === 400);
  });

  it("counts the copies apart from the calls: weft_response_total of the route counts only the primaries", async () => {
    const metrics = await metricsOf(web.sidecar);
    expect(sample(metrics, "weft_response_total", { direction: "outbound", route: "mirror-quarter" })).toBe(N);
    expect(sample(metrics, "weft_mirror_total", { route: "mirror-quarter", mirror: "shadow" })).toBe(shadow.app.mirrored());
  });
  it("mirrors a body within the limit byte for byte, and not one over it (counted)", async () => {
    const mirrorBody = new Uint8Array(1_000).fill(1);
    const before = { copies: shadow.app.mirrored(), bytes: shadow.app.mirroredBytes() };
    const dropped = await mirrorCount("dropped-body", "shadow");
    // Sampled at 25 %: send until one copy of each size was drawn (bounded).
    let small = 0;
    for (let i = 0; i < 200 && shadow.app.mirrored() === before.copies; i++) {
      const reply = await callVia(web, "orders", "/mirror/upload", { method: "POST", body: mirrorBody, headers: { "content-type": "application/octet-stream" } });
      expect(reply.body.bodyBytes).toBe(1_000);
      small++;
    }
    await until(async () => shadow.app.mirroredBytes() - before.bytes >= 1_000);
    expect((shadow.app.mirroredBytes() - before.bytes) / (shadow.app.mirrored() - before.copies)).toBe(1_000);
    expect(small).toBeGreaterThan(0);
    const big = new Uint8Array(100 * 1024).fill(2);
    for (let i = 0; i < 40; i++) expect((await callVia(web, "orders", "/mirror/upload", { method: "POST", body: big })).body.bodyBytes).toBe(100 * 1024);
    expect(await mirrorCount("dropped-body", "shadow")).toBeGreaterThan(dropped);
  });
});

describe("fault injection through the sidecar", () => {
  it("aborts 20 % and delays 10 % of 2,000 calls (each within 5σ), labelled in weft-error and the metrics", async () => {
    const replies = await calls(N, "/fault/items");
    const aborted = replies.filter((r) => r.status === 503 && r.error === "fault-injected").length;
    expect(replies.filter((r) => r.status !== 200 && r.error !== "fault-injected")).toEqual([]);
    expect(Math.abs(aborted - N * 0.2)).toBeLessThanOrEqual(fiveSigma(N, 0.2));
    const metrics = await metricsOf(web.sidecar);
    expect(sample(metrics, "weft_fault_injected_total", { route: "fault-rates", fault: "abort" })).toBe(aborted);
    const delays = sample(metrics, "weft_fault_injected_total", { route: "fault-rates", fault: "delay" })!;
    expect(Math.abs(delays - N * 0.1)).toBeLessThanOrEqual(fiveSigma(N, 0.1));
    expect(sample(metrics, "weft_response_total", { route: "fault-rates", error: "fault-injected", status_code: "503" })).toBe(aborted);
  });

  it("faults only the requests that carry the rule's trigger header and value", async () => {
    const plain = await calls(50, "/chaos/items");
    const others = await calls(50, "/chaos/items", { "x-chaos": "tester-2" });
    const mine = await calls(50, "/chaos/items", { "x-chaos": "tester-1" });
    expect(plain.every((r) => r.status === 200) && others.every((r) => r.status === 200)).toBe(true);
    expect(mine.every((r) => r.status === 500 && r.error === "fault-injected")).toBe(true);
  });

  it("retries an injected abort as a real one (50 % per try, one retry: 25 % of 2,000 fail, within 5σ)", async () => {
    const replies = await calls(N, "/retried/items");
    const failed = replies.filter((r) => r.status === 503).length;
    expect(Math.abs(failed - N * 0.25)).toBeLessThanOrEqual(fiveSigma(N, 0.25));
    expect(sample(await metricsOf(web.sidecar), "weft_retry_total", { dst_service: "orders" })).toBeGreaterThanOrEqual(N * 0.4);
  });

  it("never ejects the endpoint for injected aborts (failure accrual counts only real calls)", async () => {
    const metrics = await metricsOf(web.sidecar);
    expect(sample(metrics, "weft_endpoint_ejections_total", { dst_service: "orders" }) ?? 0).toBe(0);
    expect((await callVia(web, "orders", "/after")).status).toBe(200);
  });
});
