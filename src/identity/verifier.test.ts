import { importJWK } from "jose";
import { describe, expect, it } from "vitest";
import { MeshError } from "../core/errors.ts";
import { createManualClock } from "../testing/index.ts";
import type { TrustBundle } from "./trust-bundle.ts";
import { createVerifier } from "./verifier.ts";
import { ISSUER, T0, TRUST_DOMAIN, WEB, claimsAt, createPlane, signWith } from "./test-fixtures.ts";

function setup(verifier = {}) {
  const clock = createManualClock(T0);
  const plane = createPlane(clock.now, verifier);
  return { clock, ...plane };
}

/** Counts cold verifications: only they resolve a key through the bundle. */
function counting(bundle: TrustBundle) {
  let resolves = 0;
  const wrapped: TrustBundle = { ...bundle, resolve: (kid) => (resolves++, bundle.resolve(kid)) };
  return { wrapped, resolves: () => resolves };
}

describe("createVerifier", () => {
  it("returns the verified caller, audience, issuer, times, kid and jti", async () => {
    const { issuer, verifier } = setup();
    const token = await issuer.mint(WEB, "orders");
    const result = await verifier.verify(token);
    expect(result).toMatchObject({ id: WEB, audience: "orders", issuer: ISSUER, issuedAt: T0, expiresAt: T0 + 900_000 });
    expect(result.kid).toBe((await issuer.jwks()).keys[0]!.kid);
    expect(typeof result.jti).toBe("string");
    expect(Object.isFrozen(result)).toBe(true);
  });

  it("accepts a token until 30 s past exp, and not at 30 s", async () => {
    const { issuer, clock, verifier } = setup({ cacheSize: 0 });
    const token = await issuer.mint(WEB, "orders");
    await clock.advance(900_000 + 29_000);
    await expect(verifier.verify(token)).resolves.toMatchObject({ id: WEB });
    await clock.advance(1000);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: "unauthenticated", message: "the token has expired" });
  });

  it("gives a cached token no longer than an uncached one", async () => {
    const { issuer, clock, verifier } = setup();
    const token = await issuer.mint(WEB, "orders");
    await verifier.verify(token);
    await clock.advance(900_000 + 29_000);
    await expect(verifier.verify(token)).resolves.toMatchObject({ id: WEB });
    await clock.advance(1000);
    await expect(verifier.verify(token)).rejects.toMatchObject({ message: "the token has expired" });
  });

  it("verifies a repeated token from its cache, without the bundle's resolve", async () => {
    const { issuer, bundle, clock } = setup();
    const { wrapped, resolves } = counting(bundle);
    const verifier = createVerifier({ bundle: wrapped, issuer: ISSUER, audience: "orders", trustDomain: TRUST_DOMAIN, now: clock.now });
    const token = await issuer.mint(WEB, "orders");
    const first = await verifier.verify(token);
    expect(await verifier.verify(token)).toBe(first);
    expect(await verifier.verify(token)).toBe(first);
    expect(resolves()).toBe(1);
  });

  it("stops answering from the cache once the token is past exp plus skew", async () => {
    const { issuer, bundle, clock } = setup();
    const { wrapped, resolves } = counting(bundle);
    const verifier = createVerifier({ bundle: wrapped, issuer: ISSUER, audience: "orders", trustDomain: TRUST_DOMAIN, now: clock.now });
    const token = await issuer.mint(WEB, "orders");
    await verifier.verify(token);
    await clock.advance(900_000 + 31_000);
    await expect(verifier.verify(token)).rejects.toThrow(MeshError);
    expect(resolves()).toBe(2);
  });

  it("keeps at most cacheSize tokens, dropping the oldest", async () => {
    const { issuer, bundle, clock } = setup();
    const { wrapped, resolves } = counting(bundle);
    const verifier = createVerifier({ bundle: wrapped, issuer: ISSUER, audience: "orders", trustDomain: TRUST_DOMAIN, now: clock.now, cacheSize: 2 });
    const [a, b, c] = [await issuer.mint(WEB, "orders"), await issuer.mint(WEB, "orders"), await issuer.mint(WEB, "orders")];
    for (const t of [a, b, c]) await verifier.verify(t);
    expect(resolves()).toBe(3);
    await verifier.verify(c);
    await verifier.verify(b);
    expect(resolves()).toBe(3);
    await verifier.verify(a);
    expect(resolves()).toBe(4);
  });

  it("stops answering from the cache for a token whose key left the bundle", async () => {
    const { issuer, bundle, verifier } = setup();
    const token = await issuer.mint(WEB, "orders");
    await verifier.verify(token);
    await issuer.rotate({ revokePrevious: true });
    await bundle.refresh();
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: "unauthenticated", message: expect.stringContaining("not in the trust bundle") });
  });

  it("says the bundle is missing the key when the control plane was never reached", async () => {
    const { issuer, verifier, setDown } = setup();
    const token = await issuer.mint(WEB, "orders");
    setDown(true);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: "unauthenticated" });
  });

  it("refuses to be configured with HS256, none or EdDSA", () => {
    const { bundle } = setup();
    for (const alg of ["HS256", "none", "EdDSA"]) {
      expect(() => createVerifier({ bundle, issuer: ISSUER, audience: "orders", trustDomain: TRUST_DOMAIN, algorithms: [alg] })).toThrow(TypeError);
    }
  });

  it("accepts ES384 only when configured to", async () => {
    const clock = createManualClock(T0);
    const { generateKeyPair, exportJWK } = await import("jose");
    const pair = await generateKeyPair("ES384", { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "p384", use: "jwt-svid", alg: "ES384" }] };
    const plane = createPlane(clock.now);
    await plane.bundle.set(jwks);
    const token = await signWith(pair.privateKey, { alg: "ES384", kid: "p384" }, claimsAt(T0));
    await expect(plane.verifier.verify(token)).rejects.toMatchObject({ message: "the token's algorithm is not allowed" });
    const es384 = createVerifier({ bundle: plane.bundle, issuer: ISSUER, audience: "orders", trustDomain: TRUST_DOMAIN, now: clock.now, algorithms: ["ES256", "ES384"] });
    await expect(es384.verify(token)).resolves.toMatchObject({ id: WEB });
  });

  it("never puts the token into its error message", async () => {
    const { issuer, store, verifier } = setup();
    await issuer.mint(WEB, "orders");
    const key = (await importJWK((await store.get())!.keys[0]!.privateJwk, "ES256")) as CryptoKey;
    const kid = (await store.get())!.keys[0]!.kid;
    const token = await signWith(key, { alg: "ES256", kid }, claimsAt(T0, { iss: "https://evil.example" }));
    const error = await verifier.verify(token).then(
      () => expect.fail("accepted a token with the wrong issuer"),
      (e: unknown) => e as MeshError,
    );
    expect(error.message).not.toContain(token.split(".")[1]!);
    expect(error.message).not.toContain("evil");
  });
});
