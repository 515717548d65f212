/**
 * Tracing through real router workers in workerd: the internet → router a → app a → router a
 * (Outbound) → router b → app b, spans exported by each isolate after its responses
 * (`waitUntil`) to a real OTLP receiver that decodes them with the official definitions.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControl, type RunningControl } from "../../workers/control/local.ts";
import { startRouters, type RunningRouters } from "../../workers/router/local.ts";
import { startReceiver, type Receiver, type ReceivedSpan } from "./receiver.ts";

const ADMIN = "router-trace-admin-token-0123456789";
const TRUST_DOMAIN = "weft.test";
const SERVER = 2;
const CLIENT = 3;

let dir: string;
let control: RunningControl;
let mesh: RunningRouters;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
  dir = await mkdtemp(join(tmpdir(), "weft-trace-router-"));
  control = await startControl({ adminToken: ADMIN, port: 0, persistDir: dir, trustDomain: TRUST_DOMAIN, publishIntervalMs: 0 });
  await control.admin("POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "a", endpoints: [{ id: "a", address: "binding:A" }] },
      { kind: "Service", name: "b", retry: { limit: 1, on: ["5xx"] }, endpoints: [{ id: "b", address: "binding:B" }] },
    ],
  });
  const vars = {
    WEFT_CONFIG_TTL_MS: "1000",
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
    OTEL_TRACES_SAMPLER_ARG: "1",
    // A batch after every response, so the test need not wait.
    OTEL_BSP_SCHEDULE_DELAY: "1",
  };
  mesh = await startRouters({
    control: new URL(control.url).host,
    trustDomain: TRUST_DOMAIN,
    persistDir: dir,
    routers: await Promise.all(["a", "b"].map(async (service) => ({ service, secret: await control.workerSecret(service), app: { worker: `app-${service}` }, vars }))),
    apps: ["a", "b"].map((name) => ({ name: `app-${name}`, entry: "tests/router/echo-app.ts", mesh: name, vars: { NAME: name } })),
  });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  await control?.stop();
  await receiver?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function until(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

const traceOf = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);
const byId = (spans: ReceivedSpan[], id: string) => spans.find((s) => s.spanId === id);

describe("one trace through two routers in workerd", () => {
  it("links router a's server span, its outbound span, one child per try, and router b's server span of each try", async () => {
    const traceId = "5b8efff798038103d269b633813fc60c";
    const response = await mesh.inbound("a", new Request("http://a.test/?call=b&status=503", { headers: { traceparent: `00-${traceId}-eee19b7ec3c1b174-01` } }));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { traceparent: string; downstream: { status: number } };
    expect(body.downstream.status).toBe(503);
    // a: inbound, outbound, 2 tries; b: 2 inbound.
    await until(() => traceOf(traceId).length >= 6);
    const spans = traceOf(traceId);
    expect(spans).toHaveLength(6);

    const aServer = spans.find((s) => s.kind === SERVER && s.resource["service.name"] === "a")!;
    expect(aServer.parentSpanId).toBe("eee19b7ec3c1b174");
    expect(aServer.resource["weft.host"]).toBe("router");
    expect(aServer.attributes).toMatchObject({ "http.request.method": "GET", "url.path": "/", "server.address": "a.test", "http.response.status_code": 200, "weft.direction": "inbound" });
    // app a was handed the context with a's server span as parent.
    expect(body.traceparent).toBe(`00-${traceId}-${aServer.spanId}-01`);

    const outbound = spans.find((s) => s.name === "GET outbound")!;
    expect(outbound).toMatchObject({ kind: CLIENT, parentSpanId: aServer.spanId, statusCode: 2 });
    expect(outbound.attributes).toMatchObject({ "server.address": "b", "http.response.status_code": 503, "error.type": "503", "weft.src_identity": `spiffe://${TRUST_DOMAIN}/worker/a` });

    const tries = spans.filter((s) => s.name === "GET attempt");
    expect(tries.map((s) => [s.parentSpanId, s.attributes["weft.attempt"]]).sort()).toEqual([
      [outbound.spanId, 1],
      [outbound.spanId, 2],
    ]);
    expect(tries[0]!.attributes).toMatchObject({ "weft.backend": "b", "weft.endpoint": "b", "network.peer.address": "binding:B" });

    const bServers = spans.filter((s) => s.kind === SERVER && s.resource["service.name"] === "b");
    expect(bServers.map((s) => byId(spans, s.parentSpanId)?.name)).toEqual(["GET attempt", "GET attempt"]);
    expect(new Set(bServers.map((s) => s.parentSpanId)).size).toBe(2);
    for (const span of bServers) expect(span.attributes).toMatchObject({ "weft.src_identity": `spiffe://${TRUST_DOMAIN}/worker/a`, "http.response.status_code": 503 });
  });

  it("continues a B3 context from the internet, in B3", async () => {
    const traceId = "80f198ee56343ba864fe8b2a57d3eff7";
    const response = await mesh.inbound("a", new Request("http://a.test/?call=b", { headers: { b3: `${traceId}-e457b5a2e4d86bd1-1` } }));
    const body = (await response.json()) as { b3: string; traceparent: string | null; downstream: { body: { b3: string } } };
    expect(body.traceparent).toBeNull();
    expect(body.b3.startsWith(`${traceId}-`)).toBe(true);
    expect(body.downstream.body.b3.startsWith(`${traceId}-`)).toBe(true);
    await until(() => traceOf(traceId).length >= 4);
    const spans = traceOf(traceId);
    expect(spans.find((s) => s.kind === SERVER && s.resource["service.name"] === "a")!.parentSpanId).toBe("e457b5a2e4d86bd1");
    // app b's parent is b's server span.
    expect(byId(spans, body.downstream.body.b3.split("-")[1]!)).toMatchObject({ kind: SERVER, resource: { "service.name": "b" } });
  });

  it("honours an unsampled parent on every hop", async () => {
    const traceId = "9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a";
    const response = await mesh.inbound("a", new Request("http://a.test/?call=b", { headers: { traceparent: `00-${traceId}-1234567812345678-00` } }));
    const body = (await response.json()) as { traceparent: string; downstream: { body: { traceparent: string } } };
    expect(body.traceparent.endsWith("-00")).toBe(true);
    expect(body.downstream.body.traceparent.startsWith(`00-${traceId}-`) && body.downstream.body.traceparent.endsWith("-00")).toBe(true);
    const marker = "abababababababababababababababab";
    await mesh.inbound("a", new Request("http://a.test/?call=b", { headers: { traceparent: `00-${marker}-1234567812345678-01` } }));
    await until(() => traceOf(marker).length >= 4);
    expect(traceOf(traceId)).toHaveLength(0);
  });
});
