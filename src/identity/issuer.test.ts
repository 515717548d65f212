import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { createManualClock } from "../testing/index.ts";
import { DEFAULT_PUBLISH_AHEAD_MS, DEFAULT_ROTATE_EVERY_MS, RETAIN_AFTER_MS, createIssuer } from "./issuer.ts";
import { memoryKeyStore } from "./keys.ts";
import { ISSUER, T0, TRUST_DOMAIN, WEB } from "./test-fixtures.ts";

const H = 60 * 60_000;

function setup() {
  const clock = createManualClock(T0);
  const store = memoryKeyStore();
  const issuer = createIssuer({ issuer: ISSUER, trustDomain: TRUST_DOMAIN, keys: store, now: clock.now });
  return { clock, store, issuer };
}

describe("createIssuer", () => {
  it("mints an ES256 token with kid, sub, one aud, iss, iat, a 15-minute exp and a jti", async () => {
    const { issuer } = setup();
    const token = await issuer.mint(WEB, "orders");
    const header = decodeProtectedHeader(token);
    const claims = decodeJwt(token);
    const { keys } = await issuer.jwks();
    expect(header).toEqual({ alg: "ES256", kid: keys[0]!.kid, typ: "JWT" });
    expect(claims).toMatchObject({ sub: WEB, aud: "orders", iss: ISSUER, iat: T0 / 1000, exp: T0 / 1000 + 900 });
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(decodeJwt(await issuer.mint(WEB, "orders")).jti).not.toBe(claims.jti);
  });

  it("takes a per-token lifetime up to one hour and refuses a longer one", async () => {
    const { issuer } = setup();
    const claims = decodeJwt(await issuer.mint(WEB, "orders", { lifetime: H }));
    expect(claims.exp! - claims.iat!).toBe(3600);
    await expect(issuer.mint(WEB, "orders", { lifetime: H + 1000 })).rejects.toThrow(RangeError);
    expect(() => createIssuer({ issuer: ISSUER, trustDomain: TRUST_DOMAIN, keys: memoryKeyStore(), lifetime: 2 * H })).toThrow(RangeError);
  });

  it("refuses to mint for a subject that is not a SPIFFE ID of its trust domain, or without an audience", async () => {
    const { issuer } = setup();
    await expect(issuer.mint("web", "orders")).rejects.toThrow(TypeError);
    await expect(issuer.mint("spiffe://other.domain/ns/a/sa/b", "orders")).rejects.toThrow(TypeError);
    await expect(issuer.mint(WEB, "")).rejects.toThrow(TypeError);
  });

  it("publishes a bundle of public keys with use jwt-svid, kid, alg, a sequence and a refresh hint", async () => {
    const { issuer } = setup();
    const bundle = await issuer.jwks();
    expect(bundle.spiffe_refresh_hint).toBe(300);
    expect(bundle.spiffe_sequence).toBe(1);
    expect(bundle.keys).toHaveLength(1);
    expect(bundle.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", use: "jwt-svid", alg: "ES256" });
    expect(bundle.keys[0]).not.toHaveProperty("d");
  });

  it("keeps its keys in the store as JSON, so a new issuer over the same store signs with the same key", async () => {
    const { store, issuer, clock } = setup();
    const first = decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid;
    const state = await store.get();
    const restarted = createIssuer({ issuer: ISSUER, trustDomain: TRUST_DOMAIN, keys: memoryKeyStore(JSON.parse(JSON.stringify(state))), now: clock.now });
    expect(decodeProtectedHeader(await restarted.mint(WEB, "orders")).kid).toBe(first);
  });

  it("publishes the next key an hour before it signs, switches on schedule, and drops the old one once its tokens are over", async () => {
    const { issuer, clock } = setup();
    const kidA = decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid;
    await clock.advance(DEFAULT_ROTATE_EVERY_MS - DEFAULT_PUBLISH_AHEAD_MS);
    const published = (await issuer.jwks()).keys.map((k) => k.kid);
    expect(published).toHaveLength(2);
    const kidB = published.find((k) => k !== kidA)!;
    expect(decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid).toBe(kidA);
    await clock.advance(DEFAULT_PUBLISH_AHEAD_MS);
    expect(decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid).toBe(kidB);
    await clock.advance(RETAIN_AFTER_MS - 1000);
    expect((await issuer.jwks()).keys.map((k) => k.kid)).toContain(kidA);
    await clock.advance(1000);
    expect((await issuer.jwks()).keys.map((k) => k.kid)).toEqual([kidB]);
  });

  it("says when next to look, for a host's alarm", async () => {
    const { issuer } = setup();
    expect(await issuer.maintain()).toEqual({ nextCheckAt: T0 + DEFAULT_ROTATE_EVERY_MS - DEFAULT_PUBLISH_AHEAD_MS });
  });

  it("rotates on demand by publishing a key that signs after publishAhead, once however often asked", async () => {
    const { issuer, clock } = setup();
    const kidA = decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid;
    const state = await issuer.rotate();
    await issuer.rotate();
    expect(state.keys).toHaveLength(2);
    expect((await issuer.jwks()).keys).toHaveLength(2);
    expect(decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid).toBe(kidA);
    await clock.advance(DEFAULT_PUBLISH_AHEAD_MS);
    expect(decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid).toBe(state.keys[1]!.kid);
  });

  it("rotates immediately on demand, keeping the old key published until its tokens are over", async () => {
    const { issuer } = setup();
    const kidA = decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid;
    await issuer.rotate({ immediately: true });
    const kidB = decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid;
    expect(kidB).not.toBe(kidA);
    expect((await issuer.jwks()).keys.map((k) => k.kid).sort()).toEqual([kidA, kidB].sort());
  });

  it("revokes every other key at once when asked, for a leaked key", async () => {
    const { issuer } = setup();
    const kidA = decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid;
    await issuer.rotate();
    const state = await issuer.rotate({ revokePrevious: true });
    expect(state.keys).toHaveLength(1);
    const kidC = decodeProtectedHeader(await issuer.mint(WEB, "orders")).kid;
    expect(kidC).not.toBe(kidA);
    expect((await issuer.jwks()).keys.map((k) => k.kid)).toEqual([kidC]);
  });

  it("bumps the bundle sequence on every change of the key set", async () => {
    const { issuer } = setup();
    const first = (await issuer.jwks()).spiffe_sequence!;
    await issuer.rotate();
    expect((await issuer.jwks()).spiffe_sequence).toBe(first + 1);
  });
});
