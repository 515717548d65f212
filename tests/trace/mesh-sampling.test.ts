/**
 * The mesh-wide Tracing resource through real sidecars: a pair (web → orders) that samples
 * nothing samples every request once the resource is applied through the control API, and
 * nothing again once it is deleted, without restarting; a third sidecar whose own
 * `OTEL_TRACES_SAMPLER` says otherwise keeps to it. Spans go to the OTLP receiver.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admin, callVia, metricsOf, sample, startMesh, startPod, until, type Mesh, type Pod } from "../sidecar/pods.ts";
import { startReceiver, type Receiver } from "./receiver.ts";

let mesh: Mesh;
let receiver: Receiver;
let web: Pod;
let orders: Pod;
let jobs: Pod;

// No sampler set on web and orders: the default parentbased_traceidratio, here at ratio 0
// (OTEL_TRACES_SAMPLER_ARG alone tunes the default; it does not outrank the mesh's resource).
const tracingEnv = (url: string, extra: Record<string, string> = {}) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_TRACES_SAMPLER_ARG: "0", OTEL_BSP_SCHEDULE_DELAY: "100", ...extra });

beforeAll(async () => {
  receiver = await startReceiver();
  mesh = await startMesh();
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "web", defaultPolicy: "all-authenticated" },
      { kind: "Service", name: "jobs", defaultPolicy: "all-authenticated" },
      { kind: "Service", name: "orders", defaultPolicy: "all-authenticated" },
      { kind: "Route", name: "orders-api", service: "orders", matches: [{ path: { type: "PathPrefix", value: "/" } }], backends: [{ service: "orders" }] },
    ],
  });
  [web, orders, jobs] = await Promise.all([
    startPod(mesh, { name: "web-1", ip: "127.0.0.2", service: "web", env: tracingEnv(receiver.url) }),
    startPod(mesh, { name: "orders-1", ip: "127.0.0.3", service: "orders", env: tracingEnv(receiver.url) }),
    // The workload's own sampler wins over the mesh's.
    startPod(mesh, { name: "jobs-1", ip: "127.0.0.4", service: "jobs", env: tracingEnv(receiver.url, { OTEL_TRACES_SAMPLER: "always_off" }) }),
  ]);
  mesh.pods.push(web, orders, jobs);
  await until(async () => {
    const snapshot = (await admin(mesh.control, "GET", "/v1/snapshot")).json as { version: number; services: { name: string; endpoints?: unknown[] }[] };
    return snapshot.services.find((s) => s.name === "orders")?.endpoints?.length === 1 && (await following([web, jobs], snapshot.version));
  }, 20_000);
}, 90_000);

afterAll(async () => {
  await mesh?.destroy();
  await receiver?.close();
});

/** Every pod's sidecar holds config `version` or newer. */
async function following(pods: Pod[], version: number): Promise<boolean> {
  for (const pod of pods) if ((sample(await metricsOf(pod.sidecar), "weft_config_version") ?? -1) < version) return false;
  return true;
}

/** `n` calls via `pod` to orders; the trace id and sampled flag the app saw for each. */
async function calls(pod: Pod, n: number, path: string): Promise<{ traceId: string; sampled: boolean }[]> {
  const seen = [];
  for (let i = 0; i < n; i++) {
    const reply = await callVia(pod, "orders", path);
    expect(reply.status).toBe(200);
    const traceparent = (reply.body as { headers: Record<string, string> }).headers.traceparent!;
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    seen.push({ traceId: traceparent.slice(3, 35), sampled: traceparent.endsWith("-01") });
  }
  return seen;
}

const spansOf = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);

describe("the Tracing resource applied through the control API", () => {
  it("takes a running sidecar pair from sampling nothing to sampling everything and back, while a workload's own sampler wins", async () => {
    const before = await calls(web, 10, "/before");
    expect(before.filter((c) => c.sampled)).toHaveLength(0);

    const put = await admin(mesh.control, "PUT", "/v1/tracing/mesh", { sampler: "parentbased_always_on" });
    expect(put.status).toBe(201);
    await until(() => following([web, orders, jobs], put.json.version), 20_000);

    const jobsCalls = await calls(jobs, 5, "/jobs");
    expect(jobsCalls.filter((c) => c.sampled)).toHaveLength(0);
    const during = await calls(web, 10, "/during");
    expect(during.filter((c) => c.sampled)).toHaveLength(10);
    // Each: web's outbound and try spans, orders' inbound span.
    await until(() => during.every((c) => spansOf(c.traceId).length >= 3), 20_000);
    for (const c of during) expect(spansOf(c.traceId).map((s) => s.resource["service.name"]).sort()).toEqual(["orders", "web", "web"]);
    // Exports are in order: what was sent before and not sampled would have arrived by now.
    for (const c of [...before, ...jobsCalls]) expect(spansOf(c.traceId)).toHaveLength(0);

    const deleted = await admin(mesh.control, "DELETE", "/v1/tracing/mesh");
    expect(deleted.status).toBe(200);
    await until(() => following([web, orders], deleted.json.version), 20_000);
    const after = await calls(web, 10, "/after");
    expect(after.filter((c) => c.sampled)).toHaveLength(0);
    // The sidecars never restarted: the same processes answered throughout.
    for (const pod of [web, orders, jobs]) expect(pod.sidecar.child.exitCode).toBeNull();
  });
});
