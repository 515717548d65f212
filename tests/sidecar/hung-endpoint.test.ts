/**
 * A hung endpoint is ejected: three pods (a caller and two endpoints of `orders`, each an app
 * and a real sidecar process) and the control plane in workerd. One endpoint's sidecar is
 * stopped with SIGSTOP, so its socket accepts connections and answers nothing, while a steady
 * load runs through the caller's sidecar. Calls to it end at the service's timeout; the
 * caller's failure accrual must count those and eject it, after about as many failed calls
 * as its threshold.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admin, callVia, metricsOf, sample, startMesh, startPod, type Mesh, type Pod, type Reply } from "./pods.ts";

/** Failures in a row that eject an endpoint, as configured below. */
const CONSECUTIVE = 3;
/** Calls in flight at once: each worker sends its next call when the last one is answered. */
const WORKERS = 4;

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
        // A generous timeout, so that no call to a healthy pod reaches it on a loaded machine.
        timeout: "2s",
        // A penalty far longer than the test: no probation trial adds to the count of failures.
        failureAccrual: { consecutiveFailures: CONSECUTIVE, backoff: { min: "10m", max: "10m", jitter: 0 } },
      },
    ],
  });
  [web, ordersA, ordersB] = await Promise.all([
    startPod(mesh, { name: "web-1", ip: "127.0.0.9", service: "web" }),
    startPod(mesh, { name: "orders-1", ip: "127.0.0.10", service: "orders" }),
    // A long lease, so the stopped pod stays in the config: only failure accrual takes it out.
    startPod(mesh, { name: "orders-2", ip: "127.0.0.11", service: "orders", env: { WEFT_LEASE_TTL: "30m" } }),
  ]);
  mesh.pods.push(web, ordersA, ordersB);
  await until(async () => (await snapshotEndpoints("orders")).length === 2);
  const version = (await admin(mesh.control, "GET", "/v1/snapshot")).json.version as number;
  await until(async () => (sample(await metricsOf(web.sidecar), "weft_config_version") ?? -1) >= version);
}, 90_000);

afterAll(async () => {
  // Never leave a stopped process behind.
  if (ordersB?.sidecar.child.exitCode === null) ordersB.sidecar.child.kill("SIGCONT");
  await mesh?.destroy();
});

async function snapshotEndpoints(service: string): Promise<string[]> {
  const snapshot = (await admin(mesh.control, "GET", "/v1/snapshot")).json as { services: { name: string; endpoints?: { id: string }[] }[] };
  return snapshot.services.find((s) => s.name === service)?.endpoints?.map((e) => e.id) ?? [];
}

async function until(check: () => Promise<boolean>, timeoutMs = 15_000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Runs `WORKERS` callers in a loop until `done()` says so or `stop()` is called; `finished`
 * resolves with every reply, in order of arrival, once the calls in flight are answered.
 */
function load(done: (replies: Reply[]) => boolean = () => false): { finished: Promise<Reply[]>; stop(): void } {
  const replies: Reply[] = [];
  let stopped = false;
  const worker = async () => {
    while (!stopped) {
      replies.push(await callVia(web, "orders", "/load"));
      if (done(replies)) stopped = true;
    }
  };
  return { finished: Promise.all(Array.from({ length: WORKERS }, worker)).then(() => replies), stop: () => (stopped = true) };
}

const ejections = async () => sample(await metricsOf(web.sidecar), "weft_endpoint_ejections_total", { dst_service: "orders", endpoint: "orders-2" }) ?? 0;

describe("a hung endpoint", () => {
  it("is ejected by the caller's failure accrual after about its threshold of failed calls, and gets no more calls", async () => {
    // Both pods answer before the stop.
    const warm = await load((replies) => replies.length >= 40).finished;
    expect(warm.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    expect(new Set(warm.map((r) => r.body.pod))).toEqual(new Set(["orders-1", "orders-2"]));
    expect(await ejections()).toBe(0);

    ordersB.sidecar.child.kill("SIGSTOP");
    const stopped = load();
    let during: Reply[];
    try {
      await until(async () => (await ejections()) >= 1, 60_000, "the stopped endpoint's ejection (weft_endpoint_ejections_total)");
    } finally {
      // Whether it was ejected or not, the calls in flight end (at the timeout at the latest).
      stopped.stop();
      during = await stopped.finished;
    }

    const failed = during.filter((r) => r.status !== 200);
    // Every failure is the service's timeout running out on the stopped pod.
    expect(new Set(failed.map((r) => `${r.status} ${r.headers["weft-error"]}`))).toEqual(new Set(["504 deadline-exceeded"]));
    // The threshold's worth of failures trips it; at most the other calls then in flight add to it.
    expect(failed.length).toBeGreaterThanOrEqual(CONSECUTIVE);
    expect(failed.length).toBeLessThanOrEqual(CONSECUTIVE + WORKERS - 1);

    // Ejected: every later call goes to the pod that answers.
    const after = await load((replies) => replies.length >= 100).finished;
    expect(after.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    expect(after.every((r) => r.body.pod === "orders-1")).toBe(true);
    expect(await ejections()).toBe(1);
  }, 120_000);
});
