import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import type { AuthorizationPolicy, AuthzDecision } from "../core/authz/index.ts";
import { errorResponse } from "../core/errors.ts";
import { metaOf, stack, withMeta } from "../core/fetch.ts";
import { flatHeaders } from "../core/headers.ts";
import { createManualClock, fakeUpstream } from "../testing/index.ts";
import type { PolicyView } from "./layers.ts";
import { attachIdentity, requireIdentity } from "./layers.ts";
import { createTokenSource } from "./token-source.ts";
import { BATCH, T0, WEB, createPlane } from "./test-fixtures.ts";

function setup() {
  const clock = createManualClock(T0);
  const plane = createPlane(clock.now);
  const tokens = createTokenSource({ now: clock.now, fetchToken: (audience) => plane.issuer.mint(WEB, audience) });
  return { clock, plane, tokens };
}

describe("attachIdentity", () => {
  it("sets weft-identity to a token for the destination's audience, replacing one the app set", async () => {
    const { plane, tokens } = setup();
    const upstream = fakeUpstream([200]);
    const outbound = stack(upstream, attachIdentity({ tokens, audience: "orders" }));
    await outbound(new Request("http://orders/api", { headers: { "weft-identity": "forged" } }));
    const token = upstream.requests[0]!.headers.get("weft-identity")!;
    expect(token).not.toBe("forged");
    expect((await plane.verifier.verify(token)).id).toBe(WEB);
  });

  it("takes the audience from the request when given a function, and keeps the request's metadata and body", async () => {
    const { tokens } = setup();
    const upstream = fakeUpstream([200]);
    const outbound = stack(upstream, attachIdentity({ tokens, audience: (request) => new URL(request.url).hostname }));
    await outbound(withMeta(new Request("http://payments/charge", { method: "POST", body: "amount=3" }), { deadline: 1234 }));
    const sent = upstream.requests[0]!;
    expect(decodeJwt(sent.headers.get("weft-identity")!).aud).toBe("payments");
    expect(metaOf(sent).deadline).toBe(1234);
    expect(upstream.bodies[0]).toBe("amount=3");
  });

  it("fails the call with unauthenticated, without sending it, when no token can be had", async () => {
    const upstream = fakeUpstream([200]);
    const tokens = createTokenSource({ fetchToken: async () => Promise.reject(new TypeError("fetch failed")) });
    const outbound = stack(upstream, attachIdentity({ tokens, audience: "orders" }));
    await expect(outbound(new Request("http://orders/"))).rejects.toMatchObject({ code: "unauthenticated" });
    expect(upstream.calls()).toBe(0);
  });
});

describe("requireIdentity", () => {
  function inbound(view: PolicyView, decisions: AuthzDecision[] = []) {
    const { plane } = setup();
    const app = fakeUpstream([200]);
    let current = view;
    const handler = stack(
      app,
      requireIdentity({
        verifier: plane.verifier,
        service: "orders",
        policy: () => current,
        route: (request) => (new URL(request.url).pathname.startsWith("/admin") ? "admin" : undefined),
        onDecision: (decision) => decisions.push(decision),
      }),
    );
    const call = async (path: string, as?: string, init: RequestInit = {}) => {
      const headers = new Headers(init.headers);
      if (as) headers.set("weft-identity", await plane.issuer.mint(as, "orders"));
      const request = new Request(`http://orders${path}`, { ...init, headers });
      try {
        return await handler(request);
      } catch (error) {
        return errorResponse(error, request);
      }
    };
    return { call, app, setView: (next: PolicyView) => (current = next) };
  }

  it("passes a verified caller to the app as weft-client-id, without the token, body and metadata intact", async () => {
    const { call, app } = inbound({ policies: [], defaultPolicy: "all-authenticated" });
    expect((await call("/api", WEB, { method: "PUT", body: "x=1" })).status).toBe(200);
    expect(app.requests[0]!.headers.get("weft-client-id")).toBe(WEB);
    expect(app.requests[0]!.headers.has("weft-identity")).toBe(false);
    expect(app.bodies[0]).toBe("x=1");
  });

  it("lets an anonymous call through when the default policy allows it, with no weft-client-id", async () => {
    const { call, app } = inbound({ policies: [], defaultPolicy: "all-unauthenticated" });
    expect((await call("/api", undefined, { headers: { "weft-client-id": WEB } })).status).toBe(200);
    expect(app.requests[0]!.headers.has("weft-client-id")).toBe(false);
  });

  it("drops headers with an underscore in the name, which CGI and WSGI apps read as weft-client-id", async () => {
    const { call, app } = inbound({ policies: [], defaultPolicy: "all-unauthenticated" });
    const headers = { weft_client_id: WEB, "X_Forwarded_User": "admin", "weft-client_id": WEB, "x-kept": "yes" };
    expect((await call("/api", undefined, { headers })).status).toBe(200);
    expect(flatHeaders(app.requests[0]!.headers).filter((name, i) => i % 2 === 0 && name.includes("_"))).toEqual([]);
    expect(app.requests[0]!.headers.get("x-kept")).toBe("yes");
    // A verified caller's ID still arrives, under its own name only.
    expect((await call("/api", WEB, { headers })).status).toBe(200);
    expect(flatHeaders(app.requests[1]!.headers).filter((name, i) => i % 2 === 0 && name.includes("_"))).toEqual([]);
    expect(app.requests[1]!.headers.get("weft-client-id")).toBe(WEB);
  });

  it("applies route-targeted policies with the route the request matched, and reports each decision", async () => {
    const policies: AuthorizationPolicy[] = [{ name: "admin-by-web", target: { service: "orders", route: "admin" }, action: "ALLOW", from: [{ identities: [WEB] }] }];
    const decisions: AuthzDecision[] = [];
    const { call } = inbound({ policies, defaultPolicy: "all-authenticated" }, decisions);
    expect((await call("/admin/reset", BATCH)).status).toBe(403);
    expect((await call("/admin/reset", WEB)).status).toBe(200);
    expect((await call("/api", BATCH)).status).toBe(200);
    expect(decisions.map((d) => d.reason)).toEqual(["no ALLOW policy matched", "admin-by-web", "default:all-authenticated"]);
  });

  it("answers 401, not 403, to an anonymous call a policy would let an identity make", async () => {
    const policies: AuthorizationPolicy[] = [{ name: "web-only", target: { service: "orders" }, action: "ALLOW", from: [{ identities: [WEB] }] }];
    const { call } = inbound({ policies, defaultPolicy: "all-unauthenticated" });
    expect((await call("/api")).status).toBe(401);
  });

  it("answers 403 under a deny default, and follows policy changes made at run time", async () => {
    const { call, setView } = inbound({ policies: [], defaultPolicy: "deny" });
    const denied = await call("/api", WEB);
    expect(denied.status).toBe(403);
    expect(denied.headers.get("weft-error")).toBe("forbidden");
    setView({ policies: [], defaultPolicy: "all-authenticated" });
    expect((await call("/api", WEB)).status).toBe(200);
  });

  it("answers a gRPC caller with grpc-status 16 for a missing identity", async () => {
    const { call } = inbound({ policies: [], defaultPolicy: "all-authenticated" });
    const response = await call("/pkg.Svc/Method", undefined, { method: "POST", headers: { "content-type": "application/grpc" } });
    expect(response.headers.get("grpc-status")).toBe("16");
  });
});
