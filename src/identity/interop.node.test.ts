/**
 * Interoperability with a JWS implementation that is not jose: Node's own `crypto.sign` and
 * `crypto.verify` over the JWS signing input (RFC 7515), with the JWKs the bundle publishes.
 */
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createManualClock } from "../testing/index.ts";
import { ISSUER, T0, WEB, createPlane } from "./test-fixtures.ts";

async function setup() {
  const clock = createManualClock(T0);
  const plane = createPlane(clock.now);
  const token = await plane.issuer.mint(WEB, "orders");
  const bundle = await plane.issuer.jwks();
  const state = (await plane.store.get())!;
  return { plane, token, bundle, state };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("interoperability with node:crypto", () => {
  it("a token Weft mints verifies with crypto.verify and the bundle's published JWK", async () => {
    const { token, bundle } = await setup();
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const jwk = bundle.keys.find((k) => k.kid === JSON.parse(Buffer.from(header, "base64url").toString()).kid)!;
    const key = createPublicKey({ key: jwk as import("node:crypto").JsonWebKey, format: "jwk" });
    const input = Buffer.from(`${header}.${payload}`);
    expect(verify("sha256", input, { key, dsaEncoding: "ieee-p1363" }, Buffer.from(signature, "base64url"))).toBe(true);
    expect(JSON.parse(Buffer.from(payload, "base64url").toString())).toMatchObject({ sub: WEB, aud: "orders", iss: ISSUER });
    // The same check fails for a token altered by one character, so the check above means something.
    const altered = Buffer.from(`${header}.${payload.slice(0, -1)}${payload.endsWith("A") ? "B" : "A"}`);
    expect(verify("sha256", altered, { key, dsaEncoding: "ieee-p1363" }, Buffer.from(signature, "base64url"))).toBe(false);
  });

  it("a token made by crypto.sign with a bundle key verifies in Weft", async () => {
    const { plane, state } = await setup();
    const record = state.keys[0]!;
    const key = createPrivateKey({ key: record.privateJwk as import("node:crypto").JsonWebKey, format: "jwk" });
    const iat = T0 / 1000;
    const input = `${b64({ typ: "JWT", alg: "ES256", kid: record.kid })}.${b64({ iss: ISSUER, sub: WEB, aud: "orders", iat, exp: iat + 600 })}`;
    const signature = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" }).toString("base64url");
    const result = await plane.verifier.verify(`${input}.${signature}`);
    expect(result).toMatchObject({ id: WEB, audience: "orders", expiresAt: T0 + 600_000, jti: undefined });
  });

  it("a DER-encoded ECDSA signature, Node's default, is refused: JWS wants the raw r||s form", async () => {
    const { plane, state } = await setup();
    const record = state.keys[0]!;
    const key = createPrivateKey({ key: record.privateJwk as import("node:crypto").JsonWebKey, format: "jwk" });
    const iat = T0 / 1000;
    const input = `${b64({ alg: "ES256", kid: record.kid })}.${b64({ iss: ISSUER, sub: WEB, aud: "orders", iat, exp: iat + 600 })}`;
    const der = sign("sha256", Buffer.from(input), key).toString("base64url");
    await expect(plane.verifier.verify(`${input}.${der}`)).rejects.toMatchObject({ code: "unauthenticated" });
  });
});
