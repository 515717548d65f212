import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { RequestAuthenticationSchema } from "../core/config/index.ts";
import { MeshError, errorResponse } from "../core/errors.ts";
import { metaOf, stack, type MeshRequest } from "../core/fetch.ts";
import { authenticateEndUser } from "./end-user.ts";

const ISSUER = "https://login.example";
const NOW = Date.UTC(2026, 0, 1);

async function setup(rule: Record<string, unknown> = {}) {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "a", alg: "ES256" };
  const config = RequestAuthenticationSchema.parse({ jwtRules: [{ issuer: ISSUER, jwks: { keys: [jwk] }, audiences: ["api"], ...rule }] });
  const seen: MeshRequest[] = [];
  const clock = { at: NOW };
  const fetch = stack(async (request) => {
    seen.push(request);
    return new Response("ok");
  }, authenticateEndUser({ config, service: "api", now: () => clock.at }));
  const sign = (claims: Record<string, unknown>, exp = NOW / 1000 + 600) =>
    new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "a" }).setIssuer(ISSUER).setAudience("api").setSubject("alice").setExpirationTime(exp).sign(privateKey);
  return { fetch, seen, sign, clock };
}

describe("authenticateEndUser", () => {
  it("reads the token from a named cookie, removes only that cookie, and puts the end user in the metadata", async () => {
    const { fetch, seen, sign } = await setup({ fromCookies: ["session"] });
    const token = await sign({});
    await fetch(new Request("http://api/", { headers: { cookie: `theme=dark; session=${token}; lang=en` } }));
    expect(seen[0]!.headers.get("cookie")).toBe("theme=dark; lang=en");
    expect(metaOf(seen[0]!).endUser).toMatchObject({ issuer: ISSUER, subject: "alice", audiences: ["api"] });
  });

  it("keeps the token with forwardOriginalToken, and ignores a token in Authorization when a header is named instead", async () => {
    const { fetch, seen, sign } = await setup({ fromHeaders: [{ name: "x-jwt" }], forwardOriginalToken: true });
    const token = await sign({});
    await fetch(new Request("http://api/", { headers: { "x-jwt": token } }));
    expect(seen[0]!.headers.get("x-jwt")).toBe(token);
    await fetch(new Request("http://api/", { headers: { authorization: "Bearer not-even-a-jwt" } }));
    expect(metaOf(seen[1]!).endUser).toBeUndefined();
  });

  it("writes claims that could break a header as escaped JSON", async () => {
    const { fetch, seen, sign } = await setup({ outputClaimToHeaders: [{ header: "x-name", claim: "name" }, { header: "x-obj", claim: "obj" }] });
    await fetch(new Request("http://api/", { headers: { authorization: `Bearer ${await sign({ name: "Zoë\r\nx-admin: 1", obj: { a: [1] } })}` } }));
    expect(seen[0]!.headers.get("x-name")).toBe('"Zo\\u00eb\\r\\nx-admin: 1"');
    expect(seen[0]!.headers.get("x-obj")).toBe('{"a":[1]}');
  });

  it("answers a bad token 401 with an RFC 6750 challenge that holds no part of the token", async () => {
    const { fetch, sign } = await setup();
    const token = await sign({}, NOW / 1000 - 120);
    const error = await fetch(new Request("http://api/", { headers: { authorization: `bearer ${token}` } })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MeshError);
    const response = errorResponse(error);
    expect(response.status).toBe(401);
    const challenge = response.headers.get("www-authenticate")!;
    expect(challenge).toBe('Bearer realm="api", error="invalid_token", error_description="the token has expired"');
    expect(await response.text()).not.toContain(token.split(".")[1]);
  });

  it.each(["Bearer ", "Bearer a.b", `Bearer ${"x".repeat(9000)}`])("refuses the malformed token %#", async (header) => {
    const { fetch } = await setup();
    await expect(fetch(new Request("http://api/", { headers: { authorization: header } }))).rejects.toMatchObject({ code: "unauthenticated" });
  });

  it("keeps a verified token no longer than its exp and the skew allowance", async () => {
    const { fetch, sign, clock } = await setup();
    const token = await sign({}, NOW / 1000 + 10);
    const call = () => fetch(new Request("http://api/", { headers: { authorization: `Bearer ${token}` } }));
    expect((await call()).status).toBe(200);
    clock.at = NOW + 10_000 + 60_000 - 1;
    expect((await call()).status).toBe(200);
    // jose's own boundary too: a token is expired once exp + skew is reached.
    clock.at += 1;
    await expect(call()).rejects.toMatchObject({ code: "unauthenticated" });
  });
});
