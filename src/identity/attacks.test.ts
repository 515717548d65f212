/**
 * The attack catalogue: each way a caller might get past `requireIdentity` without a valid
 * token for this service, and the answer it must get.
 */
import { exportJWK, generateKeyPair, importJWK, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { AuthorizationPolicy, DefaultPolicy } from "../core/authz/index.ts";
import { errorResponse } from "../core/errors.ts";
import { stack } from "../core/fetch.ts";
import { createManualClock, fakeUpstream, web } from "../testing/index.ts";
import { requireIdentity } from "./layers.ts";
import { BATCH, ISSUER, T0, TRUST_DOMAIN, WEB, b64json, claimsAt, createPlane, signWith, unsigned } from "./test-fixtures.ts";
import { createVerifier } from "./verifier.ts";

async function setup(defaultPolicy: DefaultPolicy = "all-authenticated", policies: AuthorizationPolicy[] = []) {
  const clock = createManualClock(T0);
  const plane = createPlane(clock.now);
  const app = fakeUpstream([200]);
  const inbound = stack(app, requireIdentity({ verifier: plane.verifier, service: "orders", policy: () => ({ policies, defaultPolicy }) }));
  // The issuer's real signing key, for tokens it would never sign itself.
  await plane.issuer.jwks();
  const record = (await plane.store.get())!.keys[0]!;
  const realKey = (await importJWK(record.privateJwk, "ES256")) as CryptoKey;
  const attacker = await generateKeyPair("ES256", { extractable: true });
  const send = async (headers: Record<string, string> = {}) => {
    const request = new Request("http://orders/api/items", { headers });
    try {
      return await web(inbound)(request);
    } catch (error) {
      return errorResponse(error, request);
    }
  };
  const withToken = (token: string) => send({ "weft-identity": token });
  return { clock, plane, app, send, withToken, realKey, kid: record.kid, publicJwk: record.publicJwk, attacker };
}

/** Asserts a 401 made by the mesh for the expected reason (so each case fails for its own cause). */
async function refused(response: Response, reason: RegExp): Promise<void> {
  expect(response.status).toBe(401);
  expect(response.headers.get("weft-error")).toBe("unauthenticated");
  const body = (await response.json()) as { error: { message: string } };
  expect(body.error.message).toMatch(reason);
}

describe("attack catalogue: the harness", () => {
  it("accepts a token made the attacks' way with nothing wrong, so each refusal below is the attack's", async () => {
    const { withToken, realKey, kid, app } = await setup();
    expect((await withToken(await signWith(realKey, { alg: "ES256", kid, typ: "JWT" }, claimsAt(T0)))).status).toBe(200);
    expect(app.requests[0]!.headers.get("weft-client-id")).toBe(WEB);
  });
});

describe("attack catalogue: requireIdentity refuses", () => {
  it("1. a call with no token, where the policy wants one: 401", async () => {
    const { send, app } = await setup();
    const response = await send();
    expect(response.status).toBe(401);
    expect(response.headers.get("weft-error")).toBe("unauthenticated");
    expect(app.calls()).toBe(0);
  });

  it("2. garbage for a token: 401", async () => {
    const { withToken } = await setup();
    for (const garbage of ["garbage", "a.b.c", "...", "Bearer x", "e30.e30.e30"]) await refused(await withToken(garbage), /malformed/);
  });

  it('3. alg "none" with no signature: 401', async () => {
    const { withToken, kid } = await setup();
    await refused(await withToken(unsigned({ alg: "none", kid }, claimsAt(T0), "")), /algorithm is not allowed/);
    await refused(await withToken(unsigned({ alg: "none" }, claimsAt(T0), "")), /algorithm is not allowed/);
  });

  it("4. HS256 signed with the bundle's public key as the HMAC secret (key confusion): 401", async () => {
    const { withToken, kid, publicJwk } = await setup();
    const encoder = new TextEncoder();
    for (const secret of [encoder.encode(JSON.stringify(publicJwk)), encoder.encode(publicJwk.x! + publicJwk.y!)]) {
      const token = await new SignJWT(claimsAt(T0)).setProtectedHeader({ alg: "HS256", kid }).sign(secret);
      await refused(await withToken(token), /algorithm is not allowed/);
    }
  });

  it("5. an unknown kid: 401, costing at most one bundle fetch per cooldown", async () => {
    const { withToken, attacker, plane } = await setup();
    await withToken(await plane.issuer.mint(WEB, "orders"));
    const before = plane.fetches();
    for (let i = 0; i < 20; i++) {
      const token = await signWith(attacker.privateKey, { alg: "ES256", kid: `made-up-${i}` }, claimsAt(T0));
      await refused(await withToken(token), /not in the trust bundle/);
    }
    expect(plane.fetches() - before).toBeLessThanOrEqual(1);
  });

  it("6. a key not in the bundle, claiming a bundle kid: 401", async () => {
    const { withToken, attacker, kid } = await setup();
    await refused(await withToken(await signWith(attacker.privateKey, { alg: "ES256", kid }, claimsAt(T0))), /signature does not verify/);
  });

  it("7. a valid signature over claims altered afterwards: 401", async () => {
    const { withToken, plane } = await setup();
    const [header, , signature] = (await plane.issuer.mint(WEB, "orders")).split(".");
    const forged = `${header}.${b64json(claimsAt(T0, { sub: "spiffe://weft.local/ns/kube-system/sa/admin" }))}.${signature}`;
    await refused(await withToken(forged), /signature does not verify/);
  });

  it("8. a token expired beyond the 30 s skew: 401", async () => {
    const { withToken, plane, clock } = await setup();
    const token = await plane.issuer.mint(WEB, "orders");
    await clock.advance(15 * 60_000 + 30_000);
    await refused(await withToken(token), /expired/);
  });

  it("9. nbf more than 30 s in the future: 401", async () => {
    const { withToken, realKey, kid } = await setup();
    await refused(await withToken(await signWith(realKey, { alg: "ES256", kid }, claimsAt(T0, { nbf: T0 / 1000 + 31 }))), /"nbf"/);
  });

  it("10. iat more than 30 s in the future: 401", async () => {
    const { withToken, realKey, kid } = await setup();
    await refused(await withToken(await signWith(realKey, { alg: "ES256", kid }, claimsAt(T0 + 60_000))), /issued in the future/);
  });

  it("11. the wrong aud, a missing aud, or several audiences including this one: 401", async () => {
    const { withToken, realKey, kid } = await setup();
    for (const aud of ["inventory", undefined, ["orders", "payments"], "orders "]) {
      await refused(await withToken(await signWith(realKey, { alg: "ES256", kid }, claimsAt(T0, { aud }))), /aud/);
    }
  });

  it("12. the wrong iss: 401", async () => {
    const { withToken, realKey, kid } = await setup();
    await refused(await withToken(await signWith(realKey, { alg: "ES256", kid }, claimsAt(T0, { iss: "https://evil.example" }))), /"iss"/);
  });

  it("13. a sub that is not a SPIFFE ID, or is one in another trust domain: 401", async () => {
    const { withToken, realKey, kid } = await setup();
    for (const sub of ["system:serviceaccount:shop:web", "spiffe://weft.local/ns/shop/sa/web/", "spiffe://evil.example/ns/shop/sa/web", undefined]) {
      await refused(await withToken(await signWith(realKey, { alg: "ES256", kid }, claimsAt(T0, { sub }))), /sub|subject/);
    }
  });

  it("14. a token replayed to another service than the one it was minted for: 401", async () => {
    const { withToken, plane, clock } = await setup();
    const forPayments = await plane.issuer.mint(WEB, "payments");
    const payments = createVerifier({ bundle: plane.bundle, issuer: ISSUER, audience: "payments", trustDomain: TRUST_DOMAIN, now: clock.now });
    await expect(payments.verify(forPayments)).resolves.toMatchObject({ id: WEB });
    await refused(await withToken(forPayments), /"aud"/);
  });

  it("15. a token signed by a key rotated out of the bundle, even one verified before: 401", async () => {
    const { withToken, plane } = await setup();
    const token = await plane.issuer.mint(WEB, "orders");
    expect((await withToken(token)).status).toBe(200);
    await plane.issuer.rotate({ revokePrevious: true });
    await plane.bundle.refresh();
    await refused(await withToken(token), /not in the trust bundle/);
  });

  it("16. a spoofed weft-client-id from outside, with no token: removed before the app sees it", async () => {
    const { send, app } = await setup("all-unauthenticated");
    expect((await send({ "weft-client-id": "spiffe://weft.local/ns/kube-system/sa/admin" })).status).toBe(200);
    expect(app.requests[0]!.headers.has("weft-client-id")).toBe(false);
  });

  it("17. a spoofed weft-client-id beside a valid token: replaced by the verified ID", async () => {
    const { send, app, plane } = await setup();
    const token = await plane.issuer.mint(WEB, "orders");
    expect((await send({ "weft-identity": token, "weft-client-id": "spiffe://weft.local/ns/kube-system/sa/admin" })).status).toBe(200);
    expect(app.requests[0]!.headers.get("weft-client-id")).toBe(WEB);
    expect(app.requests[0]!.headers.has("weft-identity")).toBe(false);
  });

  it("18. a present but invalid token where anonymous calls are allowed: still 401", async () => {
    const { withToken, app } = await setup("all-unauthenticated");
    await refused(await withToken("garbage"), /malformed/);
    expect(app.calls()).toBe(0);
  });

  it("19. an algorithm outside the allow-list (ES384, RS256), even with a matching key: 401", async () => {
    const { withToken, plane } = await setup();
    const p384 = await generateKeyPair("ES384", { extractable: true });
    const rsa = await generateKeyPair("RS256", { extractable: true });
    await plane.bundle.set({
      keys: [
        { ...(await exportJWK(p384.publicKey)), kid: "p384", use: "jwt-svid", alg: "ES384" },
        { ...(await exportJWK(rsa.publicKey)), kid: "rsa", use: "jwt-svid", alg: "RS256" },
      ],
    });
    await refused(await withToken(await signWith(p384.privateKey, { alg: "ES384", kid: "p384" }, claimsAt(T0))), /algorithm is not allowed/);
    await refused(await withToken(await signWith(rsa.privateKey, { alg: "RS256", kid: "rsa" }, claimsAt(T0))), /algorithm is not allowed/);
  });

  it("20. a token carrying its own key (embedded jwk, jku, x5u): 401", async () => {
    const { withToken, attacker, kid } = await setup();
    const jwk = await exportJWK(attacker.publicKey);
    for (const extra of [{ jwk }, { jku: "https://evil.example/jwks.json" }, { x5u: "https://evil.example/cert.pem" }]) {
      await refused(await withToken(await signWith(attacker.privateKey, { alg: "ES256", kid, ...extra }, claimsAt(T0))), /header may not carry/);
    }
  });

  it("21. a real-key token living longer than an hour, or with no exp: 401", async () => {
    const { withToken, realKey, kid } = await setup();
    await refused(await withToken(await signWith(realKey, { alg: "ES256", kid }, claimsAt(T0, { exp: T0 / 1000 + 7200 }))), /lifetime/);
    await refused(await withToken(await signWith(realKey, { alg: "ES256", kid }, claimsAt(T0, { exp: undefined }))), /"exp"/);
  });

  it("22. an oversized token, refused before it is parsed: 401", async () => {
    const { withToken } = await setup();
    await refused(await withToken(`${"a".repeat(9000)}.b.c`), /too long/);
  });

  it("23. a valid token from a caller the policy does not allow: 403", async () => {
    const policies: AuthorizationPolicy[] = [{ name: "web-only", target: { service: "orders" }, action: "ALLOW", from: [{ identities: [WEB] }] }];
    const { plane, withToken, app } = await setup("all-authenticated", policies);
    const response = await withToken(await plane.issuer.mint(BATCH, "orders"));
    expect(response.status).toBe(403);
    expect(response.headers.get("weft-error")).toBe("forbidden");
    expect((await withToken(await plane.issuer.mint(WEB, "orders"))).status).toBe(200);
    expect(app.calls()).toBe(1);
  });
});
