/**
 * The end-user authentication cases, run the same way through the real router in workerd
 * (tests/router/end-user.test.ts) and the real sidecar (tests/sidecar/end-user.test.ts): one
 * service `api` whose `requestAuthentication` trusts an issuer Weft did not write
 * (`./issuer.ts`), and policies that match on its claims.
 */
import { expect, it } from "vitest";
import type { ExternalIssuer } from "./issuer.ts";

/** What the test app behind the service saw, and how the call was answered. */
export interface EndUserReply {
  status: number;
  headers: Headers;
  /** The app's echo: the headers that reached it (lower-case names). */
  seen: Record<string, string | undefined> | undefined;
}

/** Config: the service, trusting `issuer`, with claim headers, and the policies on it. */
export function endUserResources(issuer: ExternalIssuer, service = "api"): unknown[] {
  return [
    {
      kind: "Service",
      name: service,
      requestAuthentication: {
        jwtRules: [
          {
            issuer: issuer.issuer,
            jwksUri: issuer.jwksUri,
            audiences: ["api", "api-2"],
            // Short, so the rotation case need not wait jose's 30 s between fetches.
            jwksCooldown: "1s",
            outputClaimToHeaders: [
              { header: "x-user", claim: "sub" },
              { header: "x-roles", claim: "realm.roles" },
            ],
          },
        ],
      },
    },
    // Anyone on /public; an end user of the issuer on /me; admins on /admin; banned never.
    { kind: "AuthorizationPolicy", name: `${service}-public`, target: { service }, action: "ALLOW", to: [{ paths: ["/public*"] }] },
    { kind: "AuthorizationPolicy", name: `${service}-me`, target: { service }, action: "ALLOW", from: [{ issuers: [issuer.issuer], audiences: ["api*"] }], to: [{ paths: ["/me"] }] },
    { kind: "AuthorizationPolicy", name: `${service}-admin`, target: { service }, action: "ALLOW", from: [{ subjects: ["staff-*"], claims: [{ name: "realm.roles", values: ["admin", "owner"] }] }], to: [{ paths: ["/admin*"] }] },
    { kind: "AuthorizationPolicy", name: `${service}-banned`, target: { service }, action: "DENY", from: [{ claims: [{ name: "groups", values: ["banned"] }] }] },
  ];
}

/** Defines the cases; `ctx()` gives the running issuer and a way to call the service from outside. */
export function endUserCases(ctx: () => { issuer: ExternalIssuer; call: (path: string, headers?: Record<string, string>) => Promise<EndUserReply> }): void {
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const challenge = (reply: EndUserReply) => reply.headers.get("www-authenticate") ?? "";

  it("passes a call without a token unauthenticated, and policy decides: /public 200, /me 401 with a Bearer challenge", async () => {
    const { call } = ctx();
    const open = await call("/public");
    expect(open.status).toBe(200);
    const closed = await call("/me");
    expect(closed.status).toBe(401);
    expect(closed.headers.get("weft-error")).toBe("unauthenticated");
    expect(challenge(closed)).toBe('Bearer realm="api"');
  });

  it("accepts a valid RS256 token: the app gets the claims as headers and not the token", async () => {
    const { issuer, call } = ctx();
    const [token] = issuer.sign([{ kid: "k1", claims: issuer.claims("alice", "api", { realm: { roles: ["reader"] } }) }]);
    const reply = await call("/me", bearer(token!));
    expect(reply.status).toBe(200);
    expect(reply.seen?.["x-user"]).toBe("alice");
    expect(reply.seen?.["x-roles"]).toBe('["reader"]');
    expect(reply.seen?.authorization).toBeUndefined();
  });

  it("strips claim headers a client sends itself, with or without a token", async () => {
    const { issuer, call } = ctx();
    const spoof = { "x-user": "staff-root", "x-roles": '["admin"]', "X-User": "staff-root" };
    const anonymous = await call("/public", spoof);
    expect(anonymous.status).toBe(200);
    expect(anonymous.seen?.["x-user"]).toBeUndefined();
    expect(anonymous.seen?.["x-roles"]).toBeUndefined();
    // A token without the roles claim: the spoofed x-roles goes and nothing replaces it.
    const [token] = issuer.sign([{ kid: "k1", claims: issuer.claims("bob", "api") }]);
    const withToken = await call("/public", { ...spoof, ...bearer(token!) });
    expect(withToken.seen?.["x-user"]).toBe("bob");
    expect(withToken.seen?.["x-roles"]).toBeUndefined();
  });

  it("refuses an expired token, a wrong issuer and a wrong audience with 401 invalid_token, whatever the path", async () => {
    const { issuer, call } = ctx();
    const now = Math.floor(Date.now() / 1000);
    const [expired, wrongIssuer, wrongAudience] = issuer.sign([
      // Expired five minutes ago: past the 60 s skew allowance.
      { kid: "k1", claims: { ...issuer.claims("alice", "api"), iat: now - 900, exp: now - 300 } },
      { kid: "k1", claims: { ...issuer.claims("alice", "api"), iss: "https://evil.example.test/" } },
      { kid: "k1", claims: issuer.claims("alice", "billing") },
    ]);
    for (const [token, why] of [
      [expired!, "expired"],
      [wrongIssuer!, "issuer"],
      [wrongAudience!, "aud claim"],
    ] as const) {
      const reply = await call("/public", bearer(token));
      expect(reply.status, why).toBe(401);
      expect(reply.headers.get("weft-error")).toBe("unauthenticated");
      expect(challenge(reply)).toContain('error="invalid_token"');
      expect(challenge(reply)).toContain(why);
      expect(reply.seen).toBeUndefined();
    }
  });

  it("refuses alg: none and an HS256 token keyed with the issuer's public key (HS/RS confusion)", async () => {
    const { issuer, call } = ctx();
    const claims = issuer.claims("staff-root", "api", { realm: { roles: ["admin"] } });
    const [none, confused] = issuer.sign([
      { kid: "k1", claims, mode: "none" },
      { kid: "k1", claims, mode: "hs-public" },
    ]);
    for (const token of [none!, confused!]) {
      const reply = await call("/admin", bearer(token));
      expect(reply.status).toBe(401);
      expect(challenge(reply)).toContain('error="invalid_token"');
    }
    // The same claims, properly signed, are let in: the refusals above are the algorithm's.
    const [good] = issuer.sign([{ kid: "k1", claims }]);
    expect((await call("/admin", bearer(good!))).status).toBe(200);
  });

  it("applies claims-based ALLOW and DENY rules: subject prefix, nested list claim, a banned group", async () => {
    const { issuer, call } = ctx();
    const [reader, staffReader, staffOwner, banned] = issuer.sign([
      { kid: "k1", claims: issuer.claims("alice", "api", { realm: { roles: ["admin"] } }) },
      { kid: "k1", claims: issuer.claims("staff-ann", "api", { realm: { roles: ["reader"] } }) },
      { kid: "k1", claims: issuer.claims("staff-ann", "api-2", { realm: { roles: ["reader", "owner"] } }) },
      { kid: "k1", claims: issuer.claims("staff-bad", "api", { realm: { roles: ["admin"] }, groups: ["users", "banned"] }) },
    ]);
    expect((await call("/admin/x", bearer(reader!))).status).toBe(403);
    expect((await call("/admin/x", bearer(staffReader!))).status).toBe(403);
    expect((await call("/admin/x", bearer(staffOwner!))).status).toBe(200);
    const deny = await call("/public", bearer(banned!));
    expect(deny.status).toBe(403);
    expect(deny.headers.get("weft-error")).toBe("forbidden");
  });

  it("learns a rotated key: an unknown kid is refused until the issuer publishes it, then accepted, the old key still good", async () => {
    const { issuer, call } = ctx();
    issuer.addKey("k2", "ES256");
    const [early] = issuer.sign([{ kid: "k2", claims: issuer.claims("carol", "api") }]);
    const refused = await call("/me", bearer(early!));
    expect(refused.status).toBe(401);
    expect(challenge(refused)).toContain("no key of the issuer matches the token");
    issuer.publish(["k1", "k2"]);
    // The remote key set refetches on an unknown kid once its cooldown (1 s here) has passed.
    const before = issuer.fetches();
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const [rotated, old] = issuer.sign([
      { kid: "k2", claims: issuer.claims("carol", "api") },
      { kid: "k1", claims: issuer.claims("dave", "api") },
    ]);
    const accepted = await call("/me", bearer(rotated!));
    expect(accepted.status).toBe(200);
    expect(accepted.seen?.["x-user"]).toBe("carol");
    expect(issuer.fetches()).toBeGreaterThan(before);
    expect((await call("/me", bearer(old!))).status).toBe(200);
  });

  it("caches the issuer's keys: a hundred verified calls fetch the JWKS no more", async () => {
    const { issuer, call } = ctx();
    const [token] = issuer.sign([{ kid: "k1", claims: issuer.claims("erin", "api") }]);
    expect((await call("/me", bearer(token!))).status).toBe(200);
    const before = issuer.fetches();
    for (let i = 0; i < 100; i++) expect((await call("/me", bearer(token!))).status).toBe(200);
    expect(issuer.fetches()).toBe(before);
  });
}
