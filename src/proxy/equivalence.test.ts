/**
 * The core's contract holds for both kinds of request: the same stacks, config and scripted
 * upstreams give the same answers whether a host hands them Web `Request`s (the router
 * worker) or the light requests the Node sidecar builds from the wire.
 */
import { describe, expect, it } from "vitest";
import { SnapshotSchema, type Snapshot } from "../core/config/index.ts";
import { errorResponse } from "../core/errors.ts";
import { OwnedRequest, bodyStream, type Fetch, type MeshRequest, type MeshResponse } from "../core/fetch.ts";
import { HeaderList, flatHeaders } from "../core/headers.ts";
import { createRegistry } from "../core/metrics/index.ts";
import { createTokenSource } from "../identity/index.ts";
import { BATCH, T0, WEB, createPlane } from "../identity/test-fixtures.ts";
import { createManualClock, seededRandom } from "../testing/index.ts";
import { createProxy } from "./index.ts";

type Kind = "web" | "light";

const SNAPSHOT: Snapshot = SnapshotSchema.parse({
  version: 3,
  services: [
    { name: "web", defaultPolicy: "all-authenticated" },
    { name: "orders", retry: { limit: 2, on: ["5xx"] }, failureAccrual: { consecutiveFailures: 3 } },
    {
      name: "orders-v1",
      endpoints: [
        { id: "v1-a", address: "http://10.0.0.1:8080" },
        { id: "v1-b", address: "http://10.0.0.2:8080", weight: 2 },
      ],
    },
    { name: "orders-v2", endpoints: [{ id: "v2-a", address: "http://10.0.0.3:8080" }] },
  ],
  routes: [
    { name: "items", service: "orders", matches: [{ path: { type: "PathPrefix", value: "/items" } }], backends: [{ service: "orders-v1", weight: 3 }, { service: "orders-v2", weight: 1 }], timeouts: { request: "5s" } },
    { name: "admin", service: "orders", matches: [{ path: { type: "Exact", value: "/admin" } }], backends: [{ service: "orders-v1", weight: 1 }], filters: [{ type: "ResponseHeaderModifier", responseHeaderModifier: { set: [{ name: "cache-control", value: "no-store" }] } }] },
    { name: "home", service: "web", matches: [{ path: { type: "PathPrefix", value: "/" } }], backends: [{ service: "web", weight: 1 }] },
  ],
  policies: [{ name: "no-batch-admin", target: { service: "web" }, action: "DENY", from: [{ identities: [BATCH] }], to: [{ paths: ["/admin"] }] }],
  jwks: { keys: [] },
});

/** A request of `kind`: a Web `Request`, or the light request the sidecar builds. */
function request(kind: Kind, method: string, url: string, headers: [string, string][], body?: string): MeshRequest {
  // A string body would make a Web Request add its own content-type: say it, as a client does.
  if (body !== undefined) headers = [...headers, ["content-type", "text/plain"]];
  if (kind === "web") return new Request(url, { method, headers, ...(body !== undefined && { body }) });
  return new OwnedRequest(method, url, new HeaderList(headers.flatMap(([n, v]) => [n.toLowerCase(), v])), body === undefined ? null : new TextEncoder().encode(body));
}

/** An answer of `kind`: a Web `Response`, or a light one as the sidecar's upstream makes. */
function answer(kind: Kind, status: number, headers: [string, string][], body: string): MeshResponse {
  if (kind === "web") return new Response(body, { status, headers });
  return { status, headers: new HeaderList(headers.flatMap(([n, v]) => [n, v])), body: new TextEncoder().encode(body) };
}

/** What a caller or an upstream saw, in a form two runs can be compared by. */
async function seen(message: { headers: MeshRequest["headers"]; body: MeshRequest["body"] }, extra: Record<string, unknown>) {
  const flat = flatHeaders(message.headers);
  const pairs: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    // A token's bytes differ per mint (its jti); what matters is that one was sent.
    pairs.push(`${flat[i]}: ${flat[i] === "weft-identity" ? "<token>" : flat[i + 1]}`);
  }
  const stream = bodyStream(message.body);
  return { ...extra, headers: pairs.sort(), body: stream === null ? "" : await new Response(stream).text() };
}

/** Runs the same script of calls through a proxy fed requests of `kind`; returns everything observable. */
async function run(kind: Kind) {
  const clock = createManualClock();
  // This workload is `web`: its verifier takes tokens for audience web.
  const plane = createPlane(() => T0, { audience: "web" });
  const tokens = createTokenSource({ fetchToken: (aud) => plane.issuer.mint(WEB, aud), now: () => T0 });
  const batch = await plane.issuer.mint(BATCH, "web");
  const web = await plane.issuer.mint(WEB, "web");
  const registry = createRegistry({ clock });
  const upstreamLog: unknown[] = [];
  const calls = new Map<string, number>();
  // Each endpoint's script, by its call count: v1-a fails its first two calls, v2-a its third.
  const script: Record<string, (n: number) => number> = {
    "http://10.0.0.1:8080": (n) => (n < 2 ? 503 : 200),
    "http://10.0.0.2:8080": () => 200,
    "http://10.0.0.3:8080": (n) => (n === 2 ? 500 : 201),
  };
  const connect = (endpoint: { address: string; id: string }): Fetch => async (req) => {
    const n = calls.get(endpoint.address) ?? 0;
    calls.set(endpoint.address, n + 1);
    upstreamLog.push(await seen(req, { endpoint: endpoint.id, method: req.method, url: req.url }));
    const status = script[endpoint.address]!(n);
    return answer(kind, status, [["x-endpoint", endpoint.id], ["content-type", "text/plain"]], `${endpoint.id} ${status}`);
  };
  const app: Fetch = async (req) => {
    upstreamLog.push(await seen(req, { endpoint: "app", method: req.method, url: req.url }));
    return answer(kind, 200, [["x-app", "1"], ["content-type", "text/plain"]], "app");
  };
  const proxy = createProxy({ service: "web", identity: WEB, registry, connect, app, tokens, verifier: plane.verifier, clock, random: seededRandom(11), now: () => T0 });
  proxy.update(SNAPSHOT);
  // Tokens minted before the run: signing is real async work, during which the manual clock
  // (driven by clock.run) could step, and budgets would differ by when it happened.
  await Promise.all(["orders-v1", "orders-v2"].map((audience) => tokens.token(audience)));
  await Promise.all([batch, web].map((token) => plane.verifier.verify(token)));

  const answers: unknown[] = [];
  const send = async (side: Fetch, req: MeshRequest) => {
    let response: MeshResponse;
    try {
      response = await clock.run(side(req));
    } catch (error) {
      response = errorResponse(error, req);
    }
    answers.push(await seen(response, { status: response.status }));
  };
  for (let i = 0; i < 24; i++) {
    await send(proxy.outbound, request(kind, i % 3 === 0 ? "POST" : "GET", `http://orders/items/${i}?q=${i}`, [["x-trace", String(i)], ["weft-timeout-ms", "900"]], i % 3 === 0 ? `order ${i}` : undefined));
  }
  await send(proxy.outbound, request(kind, "GET", "http://orders/admin", []));
  await send(proxy.outbound, request(kind, "GET", "http://orders/elsewhere", []));
  await send(proxy.outbound, request(kind, "GET", "http://nowhere/", []));
  await send(proxy.inbound, request(kind, "GET", "http://web/admin", [["weft-identity", batch]]));
  await send(proxy.inbound, request(kind, "GET", "http://web/admin", [["weft-identity", web], ["weft-client-id", "spiffe://forged"], ["weft-timeout-ms", "300"]]));
  await send(proxy.inbound, request(kind, "POST", "http://web/orders", [["weft-identity", web]], "a body"));
  await send(proxy.inbound, request(kind, "GET", "http://web/", [["weft-identity", "not-a-token"]]));
  await send(proxy.inbound, request(kind, "GET", "http://web/", []));
  return { answers, upstreamLog, metrics: registry.expose() };
}

describe("the stacks on Web requests and on the sidecar's light requests", () => {
  it("give the same statuses, headers, bodies, retries, split, metrics and errors", async () => {
    const webRun = await run("web");
    const lightRun = await run("light");
    // The script exercises what it claims to: retries, both backends, refusals of each kind.
    const statuses = webRun.answers.map((a) => (a as { status: number }).status);
    expect(new Set(statuses)).toEqual(new Set([200, 201, 404, 403, 401]));
    expect(webRun.metrics).toMatch(/weft_retry_total\{dst_service="orders"\} [1-9]/);
    expect(webRun.upstreamLog.some((u) => (u as { endpoint: string }).endpoint === "v2-a")).toBe(true);
    expect(lightRun.answers).toEqual(webRun.answers);
    expect(lightRun.upstreamLog).toEqual(webRun.upstreamLog);
    expect(lightRun.metrics).toBe(webRun.metrics);
  });
});
