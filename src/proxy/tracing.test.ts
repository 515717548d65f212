import { describe, expect, it } from "vitest";
import type { Snapshot } from "../core/config/index.ts";
import { SnapshotSchema } from "../core/config/index.ts";
import { errorResponse } from "../core/errors.ts";
import { toWebResponse } from "../core/web.ts";
import type { Fetch } from "../core/fetch.ts";
import { createRegistry } from "../core/metrics/index.ts";
import { createTracer, SPAN_KIND_SERVER, STATUS_ERROR, type Span } from "../core/trace/index.ts";
import { T0, WEB, createPlane } from "../identity/test-fixtures.ts";
import { createManualClock, fakeUpstream, seededRandom } from "../testing/index.ts";
import { createProxy } from "./index.ts";

const snapshotOf = (input: Record<string, unknown>): Snapshot => SnapshotSchema.parse({ version: 1, services: [], routes: [], policies: [], jwks: { keys: [] }, ...input });

const call = async (fetch: Fetch, url: string, init?: RequestInit) => {
  try {
    return toWebResponse(await fetch(new Request(url, init)));
  } catch (error) {
    return errorResponse(error);
  }
};

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

describe("tracing in the assembled proxy", () => {
  const setup = (tracing: boolean) => {
    const plane = createPlane(() => T0);
    const app = fakeUpstream();
    const clock = createManualClock();
    const spans: Span[] = [];
    const tracer = tracing ? createTracer({ sampler: { parentBased: true, ratio: 1 }, sink: (span) => spans.push(span), random: seededRandom(3) }) : undefined;
    const proxy = createProxy({ service: "orders", identity: "spiffe://weft.test/ns/shop/sa/orders", registry: createRegistry({ clock }), connect: () => fakeUpstream(), app, verifier: plane.verifier, clock, tracer });
    proxy.update(
      snapshotOf({
        services: [{ name: "orders" }],
        policies: [{ name: "no-web", target: { service: "orders" }, action: "DENY", from: [{ identities: [WEB] }], to: [{ paths: ["/admin"] }] }],
      }),
    );
    return { plane, app, proxy, spans };
  };

  it("records an inbound refusal by policy as a failed server span with the verified caller and the code", async () => {
    const { plane, app, proxy, spans } = setup(true);
    const token = await plane.issuer.mint(WEB, "orders");
    const response = await call(proxy.inbound, "http://orders/admin?secret=1", { headers: { "weft-identity": token, traceparent: TRACEPARENT, "weft-timeout-ms": "900" } });
    expect(response.status).toBe(403);
    expect(app.calls()).toBe(0);
    expect(spans).toHaveLength(1);
    const span = spans[0]!;
    expect([span.kind, span.status, span.traceId, span.parentSpanId]).toEqual([SPAN_KIND_SERVER, STATUS_ERROR, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"]);
    const attributes = Object.fromEntries(Array.from({ length: span.attributes.length / 2 }, (_, i) => [span.attributes[2 * i], span.attributes[2 * i + 1]]));
    expect(attributes).toMatchObject({ "url.path": "/admin", "weft.error": "forbidden", "error.type": "forbidden", "http.response.status_code": 403, "weft.deadline_ms": 900, "weft.route": "default", "weft.src_identity": WEB });
    // The query string, which may carry secrets, is not recorded.
    expect(JSON.stringify(span.attributes)).not.toContain("secret");
  });

  it("passes trace headers through untouched, malformed ones too, when tracing is off", async () => {
    const { plane, app, proxy } = setup(false);
    const token = await plane.issuer.mint(WEB, "orders");
    await call(proxy.inbound, "http://orders/api", { headers: { "weft-identity": token, traceparent: "00-garbage", b3: "also-garbage" } });
    expect(app.requests[0]!.headers.get("traceparent")).toBe("00-garbage");
    expect(app.requests[0]!.headers.get("b3")).toBe("also-garbage");
  });
});
