import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { createManualClock } from "../testing/index.ts";
import { createServiceAccountVerifier, generateBootstrapSecret, hashBootstrapSecret, verifyBootstrapSecret } from "./bootstrap.ts";
import { T0, TRUST_DOMAIN } from "./test-fixtures.ts";

const CLUSTER = "https://kubernetes.default.svc.cluster.local";

/** A fake cluster: an RS256 service-account key, its OIDC JWKS, and a projected-token maker. */
async function cluster() {
  const clock = createManualClock(T0);
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: "sa-key-1", use: "sig", alg: "RS256" }] };
  const iat = T0 / 1000;
  const token = (claims: Record<string, unknown> = {}, kid = "sa-key-1") =>
    new SignJWT({
      aud: ["weft"],
      iss: CLUSTER,
      sub: "system:serviceaccount:shop:web",
      iat,
      nbf: iat,
      exp: iat + 3600,
      "kubernetes.io": { namespace: "shop", pod: { name: "web-7d9f", uid: "p" }, serviceaccount: { name: "web", uid: "s" } },
      ...claims,
    })
      .setProtectedHeader({ alg: "RS256", kid })
      .sign(privateKey);
  let fetches = 0;
  const verifier = createServiceAccountVerifier({ issuer: CLUSTER, audience: "weft", trustDomain: TRUST_DOMAIN, jwks, now: clock.now });
  const fetched = createServiceAccountVerifier({
    issuer: CLUSTER,
    audience: "weft",
    trustDomain: TRUST_DOMAIN,
    jwks: async () => (fetches++, jwks),
    now: clock.now,
  });
  return { clock, token, verifier, fetched, fetches: () => fetches };
}

describe("createServiceAccountVerifier", () => {
  it("maps system:serviceaccount:<ns>:<sa> to spiffe://<td>/ns/<ns>/sa/<sa>", async () => {
    const { token, verifier } = await cluster();
    expect(await verifier.verify(await token())).toEqual({ id: "spiffe://weft.local/ns/shop/sa/web", namespace: "shop", serviceAccount: "web" });
  });

  it("fetches the cluster's JWKS through a function once, then verifies from it", async () => {
    const { token, fetched, fetches } = await cluster();
    await fetched.verify(await token());
    await fetched.verify(await token({ sub: "system:serviceaccount:jobs:batch", "kubernetes.io": undefined }));
    expect(fetches()).toBe(1);
  });

  it.each([
    ["another audience", { aud: ["kube-apiserver"] }],
    ["another issuer", { iss: "https://evil.example" }],
    ["a subject that is not a service account", { sub: "system:node:worker-1", "kubernetes.io": undefined }],
    ["a subject whose namespace could climb the SPIFFE path", { sub: "system:serviceaccount:..:web", "kubernetes.io": undefined }],
    ["a kubernetes.io claim that disagrees with sub", { "kubernetes.io": { namespace: "kube-system", serviceaccount: { name: "web" } } }],
    ["no exp (a legacy, never-expiring secret token)", { exp: undefined }],
  ])("refuses %s", async (_, claims) => {
    const { token, verifier } = await cluster();
    await expect(verifier.verify(await token(claims))).rejects.toMatchObject({ code: "unauthenticated" });
  });

  it("refuses an expired token and one signed by a key the cluster does not publish", async () => {
    const { token, verifier, clock } = await cluster();
    const good = await token();
    const other = await generateKeyPair("RS256");
    const forged = await new SignJWT({ aud: "weft", iss: CLUSTER, sub: "system:serviceaccount:shop:web", exp: T0 / 1000 + 60 })
      .setProtectedHeader({ alg: "RS256", kid: "sa-key-1" })
      .sign(other.privateKey);
    await expect(verifier.verify(forged)).rejects.toMatchObject({ message: "the ServiceAccount token does not verify" });
    await expect(verifier.verify(await token({}, "sa-key-2"))).rejects.toMatchObject({ code: "unauthenticated" });
    await clock.advance(3600_000 + 30_000);
    await expect(verifier.verify(good)).rejects.toMatchObject({ message: "the ServiceAccount token has expired" });
  });
});

describe("bootstrap secrets", () => {
  it("are 256 random bits, stored as a sha256 hash that does not contain them", async () => {
    const secret = generateBootstrapSecret();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generateBootstrapSecret()).not.toBe(secret);
    const hash = await hashBootstrapSecret(secret);
    expect(hash).toMatch(/^sha256:[A-Za-z0-9_-]{43}$/);
    expect(hash).not.toContain(secret);
  });

  it("verify against their hash, and nothing else does", async () => {
    const secret = generateBootstrapSecret();
    const hash = await hashBootstrapSecret(secret);
    expect(await verifyBootstrapSecret(secret, hash)).toBe(true);
    expect(await verifyBootstrapSecret(`${secret}x`, hash)).toBe(false);
    expect(await verifyBootstrapSecret(secret.slice(1), hash)).toBe(false);
    expect(await verifyBootstrapSecret("", await hashBootstrapSecret(""))).toBe(false);
    expect(await verifyBootstrapSecret(secret, hash.slice(0, -2))).toBe(false);
    expect(await verifyBootstrapSecret(secret, secret)).toBe(false);
    expect(await verifyBootstrapSecret(secret, `sha256:${secret}`)).toBe(false);
  });
});
