/**
 * Tracing through real sidecars: app → sidecar (web) → sidecar (orders) → app, the control
 * plane in workerd, spans exported over OTLP/HTTP to a real receiver that decodes them with
 * the official OTLP definitions. Then the collector hangs, and a pod's collector refuses.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admin, callVia, freePort, metricsOf, sample, startMesh, startPod, until, type Mesh, type Pod } from "../sidecar/pods.ts";
import { startReceiver, type Receiver, type ReceivedSpan } from "./receiver.ts";

let mesh: Mesh;
let receiver: Receiver;
let web: Pod;
let orders: Pod;
let jobs: Pod;

const SERVER = 2;
const CLIENT = 3;
// Export often, so the test need not wait five seconds for a batch.
const tracingEnv = (endpoint: string, extra: Record<string, string> = {}) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
  OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20collector-secret",
  OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
  OTEL_TRACES_SAMPLER_ARG: "1",
  OTEL_BSP_SCHEDULE_DELAY: "100",
  OTEL_EXPORTER_OTLP_TIMEOUT: "2000",
  ...extra,
});

beforeAll(async () => {
  receiver = await startReceiver();
  mesh = await startMesh();
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "web", defaultPolicy: "all-authenticated" },
      { kind: "Service", name: "jobs", defaultPolicy: "all-authenticated" },
      {
        kind: "Service",
        name: "orders",
        defaultPolicy: "all-authenticated",
        retry: { limit: 2, on: ["5xx"], budget: { ratio: 0.5, minPerSecond: 100, ttl: "10s" } },
      },
      { kind: "Route", name: "orders-api", service: "orders", matches: [{ path: { type: "PathPrefix", value: "/" } }], backends: [{ service: "orders" }] },
    ],
  });
  const closed = await freePort("127.0.0.1");
  [web, orders, jobs] = await Promise.all([
    startPod(mesh, { name: "web-1", ip: "127.0.0.2", service: "web", env: tracingEnv(receiver.url, { OTEL_BSP_MAX_QUEUE_SIZE: "64", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "8" }) }),
    startPod(mesh, { name: "orders-1", ip: "127.0.0.3", service: "orders", env: { ...tracingEnv(receiver.url), WEFT_ACCESS_LOG: "json" } }),
    // A pod whose collector refuses every connection (nothing listens there).
    startPod(mesh, { name: "jobs-1", ip: "127.0.0.4", service: "jobs", env: tracingEnv(`http://127.0.0.1:${closed}`) }),
  ]);
  mesh.pods.push(web, orders, jobs);
  await until(async () => {
    const snapshot = (await admin(mesh.control, "GET", "/v1/snapshot")).json as { version: number; services: { name: string; endpoints?: unknown[] }[] };
    const ready = snapshot.services.find((s) => s.name === "orders")?.endpoints?.length === 1;
    return ready && sample(await metricsOf(web.sidecar), "weft_config_version")! >= snapshot.version && sample(await metricsOf(jobs.sidecar), "weft_config_version")! >= snapshot.version;
  });
}, 90_000);

afterAll(async () => {
  await mesh?.destroy();
  await receiver?.close();
});

const traceOf = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);
const byId = (spans: ReceivedSpan[], id: string) => spans.find((s) => s.spanId === id);

describe("one trace across app → sidecar → sidecar → app", () => {
  it("links the outbound span, one child per try, and the inbound span of each try, with their attributes", async () => {
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    const parent = "b7ad6b7169203331";
    const reply = await callVia(web, "orders", "/fail?times=1&key=trace-retry", { headers: { traceparent: `00-${traceId}-${parent}-01`, tracestate: "vendor=abc", "weft-timeout-ms": "5000" } });
    expect(reply.status).toBe(200);
    // web: outbound + 2 tries; orders: 2 inbound spans (the 503 and the 200).
    await until(() => traceOf(traceId).length >= 5);
    const spans = traceOf(traceId);
    expect(spans).toHaveLength(5);

    const outbound = spans.find((s) => s.name === "GET outbound")!;
    expect(outbound).toMatchObject({ kind: CLIENT, parentSpanId: parent });
    expect(outbound.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.path": "/fail",
      "server.address": "orders",
      "http.response.status_code": 200,
      "weft.direction": "outbound",
      "weft.route": "orders-api",
      "weft.src_identity": "spiffe://weft.test/ns/shop/sa/web",
      "weft.deadline_ms": 5000,
    });
    expect(outbound.resource).toMatchObject({ "service.name": "web", "weft.host": "sidecar", "service.instance.id": "web-1" });

    const tries = spans.filter((s) => s.name === "GET attempt").sort((a, b) => Number(a.attributes["weft.attempt"]) - Number(b.attributes["weft.attempt"]));
    expect(tries.map((s) => [s.kind, s.parentSpanId, s.attributes["weft.attempt"], s.attributes["http.response.status_code"]])).toEqual([
      [CLIENT, outbound.spanId, 1, 503],
      [CLIENT, outbound.spanId, 2, 200],
    ]);
    expect(tries[0]!.statusCode).toBe(2);
    expect(tries[0]!.attributes).toMatchObject({ "weft.backend": "orders", "weft.endpoint": "orders-1", "network.peer.address": "127.0.0.3", "error.type": "503" });

    const inbound = spans.filter((s) => s.kind === SERVER);
    expect(inbound).toHaveLength(2);
    for (const span of inbound) {
      const attempt = byId(spans, span.parentSpanId)!;
      expect(attempt.name).toBe("GET attempt");
      expect(span.resource["service.name"]).toBe("orders");
      expect(span.attributes).toMatchObject({ "weft.direction": "inbound", "weft.src_identity": "spiffe://weft.test/ns/shop/sa/web", "weft.route": "orders-api", "url.path": "/fail" });
      expect(span.attributes["http.response.status_code"]).toBe(attempt.attributes["http.response.status_code"]);
      expect(span.endNs).toBeGreaterThanOrEqual(span.startNs);
    }

    // The app got the context with the inbound span of its try as parent, and the tracestate.
    const app = reply.body as { headers: Record<string, string> };
    const lastInbound = byId(inbound, byId(spans, app.headers.traceparent!.slice(36, 52))?.spanId ?? "")!;
    expect(lastInbound.attributes["http.response.status_code"]).toBe(200);
    expect(app.headers.traceparent).toBe(`00-${traceId}-${lastInbound.spanId}-01`);
    expect(app.headers.tracestate).toBe("vendor=abc");
    // The exporter sent protobuf with the configured header.
    expect(receiver.requests.some((r) => r.contentType === "application/x-protobuf" && r.authorization === "Bearer collector-secret")).toBe(true);
  });

  it("continues an incoming B3 context, answering in B3", async () => {
    const traceId = "463ac35c9f6413ad48485a3953bb6124";
    const reply = await callVia(web, "orders", "/b3", { headers: { b3: `${traceId}-a2fb4a1d1a96d312-1` } });
    expect(reply.status).toBe(200);
    await until(() => traceOf(traceId).length >= 3);
    const spans = traceOf(traceId);
    const outbound = spans.find((s) => s.name === "GET outbound")!;
    expect(outbound.parentSpanId).toBe("a2fb4a1d1a96d312");
    const headers = (reply.body as { headers: Record<string, string> }).headers;
    expect(headers.traceparent).toBeUndefined();
    const [appTrace, appParent, sampled] = headers.b3!.split("-");
    expect([appTrace, sampled]).toEqual([traceId, "1"]);
    expect(byId(spans, appParent!)).toMatchObject({ kind: SERVER });
  });

  it("records nothing for a parent that is not sampled, and tells the app so", async () => {
    const traceId = "11111111111111111111111111111111";
    const reply = await callVia(web, "orders", "/unsampled", { headers: { traceparent: `00-${traceId}-2222222222222222-00` } });
    expect((reply.body as { headers: Record<string, string> }).headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    // A sampled request sent after it is exported; by then the unsampled one would have been too.
    const after = "33333333333333333333333333333333";
    await callVia(web, "orders", "/after", { headers: { traceparent: `00-${after}-2222222222222222-01` } });
    await until(() => traceOf(after).length >= 3);
    expect(traceOf(traceId)).toHaveLength(0);
  });

  it("starts a trace at the edge and replaces a malformed context", async () => {
    const reply = await callVia(web, "orders", "/edge", { headers: { traceparent: "00-not-a-trace-01", "x-b3-traceid": "zz" } });
    const headers = (reply.body as { headers: Record<string, string> }).headers;
    expect(headers["x-b3-traceid"]).toBeUndefined();
    const traceId = headers.traceparent!.slice(3, 35);
    expect(headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await until(() => traceOf(traceId).length >= 3);
    expect(traceOf(traceId).find((s) => s.name === "GET outbound")!.parentSpanId).toBe("");
  });

  it("writes the trace and span ids into the sidecar's request log lines", async () => {
    const traceId = "44444444444444444444444444444444";
    await callVia(web, "orders", "/logged", { headers: { traceparent: `00-${traceId}-2222222222222222-01` } });
    await until(() => orders.sidecar.log().includes(traceId));
    const line = orders.sidecar.log().split("\n").find((l) => l.includes(traceId))!;
    const entry = JSON.parse(line);
    expect(entry).toMatchObject({ event: "request", direction: "inbound", path: "/logged", status: 200, trace_id: traceId, sampled: true });
    await until(() => traceOf(traceId).some((s) => s.kind === SERVER));
    expect(entry.span_id).toBe(traceOf(traceId).find((s) => s.kind === SERVER)!.spanId);
  });
});

describe("a collector that hangs or refuses", () => {
  it("costs requests nothing: they all answer while exports hang, and the spans that could not wait are dropped and counted", async () => {
    receiver.hang(true);
    const before = sample(await metricsOf(web.sidecar), "weft_trace_spans_dropped_total") ?? 0;
    const n = 400;
    const started = Date.now();
    const replies = [];
    for (let i = 0; i < n; i += 20) replies.push(...(await Promise.all(Array.from({ length: 20 }, () => callVia(web, "orders", "/hung")))));
    const elapsed = Date.now() - started;
    expect(replies.every((r) => r.status === 200)).toBe(true);
    // Generous: 400 calls through two sidecars take well under a second each even on a loaded
    // machine; a request that waited for a hung export (2 s timeout) would show far beyond this.
    expect(elapsed / (n / 20)).toBeLessThan(2_000);
    const metrics = await metricsOf(web.sidecar);
    const dropped = sample(metrics, "weft_trace_spans_dropped_total")! - before;
    // web records 2 spans a call; at most a queue of 64 and two batches of 8 are held (its
    // memory bound), the rest dropped.
    expect(dropped).toBeGreaterThanOrEqual(2 * n - 64 - 2 * 8);
    receiver.hang(false);
  });

  it("drops and counts spans a collector refuses, and answers every request", async () => {
    const replies = await Promise.all(Array.from({ length: 20 }, () => callVia(jobs, "orders", "/refused")));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    await until(async () => (sample(await metricsOf(jobs.sidecar), "weft_trace_spans_dropped_total") ?? 0) >= 40, 20_000);
    expect(sample(await metricsOf(jobs.sidecar), "weft_trace_spans_exported_total")).toBe(0);
    // Nothing about the collector's credential reaches the log.
    expect(jobs.sidecar.log()).not.toContain("collector-secret");
  });
});
