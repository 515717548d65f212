import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { decodeToken } from "../token.ts";
import { reportOf, verify } from "./identity.ts";

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);

async function signed(claims: Record<string, unknown>, alg = "ES256") {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", use: "jwt-svid", alg };
  const token = await new SignJWT(claims).setProtectedHeader({ alg, kid: "k1" }).sign(privateKey);
  return { token, jwk };
}

describe("weft identity's report", () => {
  it("verifies a token against a SPIFFE bundle's jwt-svid key", async () => {
    const { token, jwk } = await signed({ sub: "spiffe://td/worker/a", aud: "b" });
    expect(await verify(token, decodeToken(token), [jwk])).toEqual({ status: "verified", detail: "signature verified with key k1" });
  });

  it("refuses a token whose kid is not in the bundle, or signed by another key of that kid", async () => {
    const { token } = await signed({ sub: "x" });
    const other = await signed({ sub: "x" });
    expect((await verify(token, decodeToken(token), [])).status).toBe("unknown-key");
    expect((await verify(token, decodeToken(token), [other.jwk])).status).toBe("invalid");
  });

  it("refuses algorithms the mesh refuses before looking at keys", async () => {
    const header = Buffer.from(JSON.stringify({ alg: "HS256", kid: "k1" })).toString("base64url");
    const token = `${header}.${Buffer.from("{}").toString("base64url")}.c2ln`;
    expect(await verify(token, decodeToken(token), [])).toMatchObject({ status: "rejected-algorithm" });
  });

  it("reports expiry, lifetime and the key, and marks an expired token", async () => {
    const iat = NOW / 1000 - 600;
    const { token } = await signed({ sub: "spiffe://td/ns/shop/sa/web", aud: "orders", iss: "http://c", iat, exp: iat + 900, jti: "j1" });
    const report = reportOf(decodeToken(token), { status: "unchecked", detail: "-" }, NOW);
    expect(report).toMatchObject({ subject: "spiffe://td/ns/shop/sa/web", audience: "orders", issuer: "http://c", keyId: "k1", algorithm: "ES256", tokenId: "j1", lifetimeSeconds: 900, expiresInSeconds: 300, expired: false });
    expect(reportOf(decodeToken(token), { status: "unchecked", detail: "-" }, NOW + 301_000)).toMatchObject({ expired: true, expiresInSeconds: -1 });
  });
});

describe("weft identity --cert", () => {
  it("shows a workload certificate's SPIFFE ID and expiry, checks its chain against the served anchors, and fails one from another CA", async () => {
    const { createCa, createCsr, generateAuthority, generateWorkloadKey } = await import("../../src/identity/ca.ts");
    const { fakeControl, runWeft } = await import("../test-io.ts");
    let state: import("../../src/identity/ca.ts").CaState | undefined;
    const ca = createCa({ trustDomain: "td", state: { get: async () => state, put: async (s) => void (state = s) } });
    const issued = await ca.issue(await createCsr({ keys: await generateWorkloadKey() }), "spiffe://td/ns/shop/sa/web");
    const pem = [issued.certificate, ...issued.chain].join("");
    const anchors = (await ca.anchors()).anchors.join("");
    const control = fakeControl({ "GET /v1/identity/trust-anchors.pem": () => new Response(anchors, { headers: { "content-type": "application/x-pem-file" } }) });
    const now = issued.notBefore + 3_630_000;
    const good = await runWeft(["identity", "--cert", "-", "-o", "json"], { fetch: control, now, stdin: pem });
    expect(good.code).toBe(0);
    const report = JSON.parse(good.stdout);
    expect(report).toMatchObject({ id: "spiffe://td/ns/shop/sa/web", chain: 1, expired: false, verification: { status: "verified" } });
    // A certificate's times are whole seconds; the CA's are milliseconds: within a second.
    expect(Math.abs(report.expiresInSeconds - (24 * 3600 + 30 - 3630))).toBeLessThanOrEqual(1);
    const other = await generateAuthority("td", Date.now(), Date.now());
    const elsewhere = fakeControl({ "GET /v1/identity/trust-anchors.pem": () => new Response(other.anchors.join("")) });
    const bad = await runWeft(["identity", "--cert", "-"], { fetch: elsewhere, now, stdin: pem });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("✗ does not chain to the trust anchors");
    expect(bad.stdout).toContain("SPIFFE ID:   spiffe://td/ns/shop/sa/web");
  });
});
