import { describe, expect, it } from "vitest";
import type { AuthorizationPolicy } from "./index.ts";
import { normalizePath } from "../path/index.ts";
import { authorize, loosePath, pathMatches, spiffeGlob } from "./index.ts";

const WEB = "spiffe://weft.local/ns/shop/sa/web";
const BATCH = "spiffe://weft.local/ns/jobs/sa/batch";
const call = (identity?: string, extra: Partial<{ route: string; method: string; path: string }> = {}) => ({
  service: "orders",
  identity,
  method: "GET",
  path: "/api/items",
  ...extra,
});
const policy = (p: Partial<AuthorizationPolicy> & Pick<AuthorizationPolicy, "name" | "action">): AuthorizationPolicy => ({
  target: { service: "orders" },
  ...p,
});

describe("authorize", () => {
  it("lets the default policy decide when no ALLOW policy targets the service", () => {
    expect(authorize([], "all-unauthenticated", call())).toMatchObject({ allowed: true, reason: "default:all-unauthenticated" });
    expect(authorize([], "all-authenticated", call())).toMatchObject({ allowed: false, code: "unauthenticated" });
    expect(authorize([], "all-authenticated", call(WEB))).toMatchObject({ allowed: true });
    expect(authorize([], "deny", call(WEB))).toMatchObject({ allowed: false, code: "forbidden", reason: "default:deny" });
  });

  it("denies on any matching DENY, even when an ALLOW also matches", () => {
    const policies = [policy({ name: "allow-all", action: "ALLOW" }), policy({ name: "no-batch", action: "DENY", from: [{ identities: ["spiffe://weft.local/ns/jobs/**"] }] })];
    expect(authorize(policies, "all-unauthenticated", call(BATCH))).toMatchObject({ allowed: false, reason: "no-batch", code: "forbidden" });
    expect(authorize(policies, "all-unauthenticated", call(WEB))).toMatchObject({ allowed: true, reason: "allow-all" });
  });

  it("requires a matching ALLOW once any ALLOW targets the service", () => {
    const policies = [policy({ name: "web-only", action: "ALLOW", from: [{ identities: [WEB] }] })];
    expect(authorize(policies, "all-unauthenticated", call(WEB))).toMatchObject({ allowed: true, reason: "web-only" });
    expect(authorize(policies, "all-unauthenticated", call(BATCH))).toMatchObject({ allowed: false, code: "forbidden" });
    expect(authorize(policies, "all-unauthenticated", call())).toMatchObject({ allowed: false, code: "unauthenticated" });
  });

  it("applies route-targeted policies only to that route", () => {
    const policies = [policy({ name: "admin-deny", action: "DENY", target: { service: "orders", route: "admin" } })];
    expect(authorize(policies, "all-unauthenticated", call(WEB, { route: "admin" })).allowed).toBe(false);
    expect(authorize(policies, "all-unauthenticated", call(WEB, { route: "api" })).allowed).toBe(true);
    expect(authorize(policies, "all-unauthenticated", call(WEB)).allowed).toBe(true);
  });

  it("ignores policies for other services", () => {
    const policies = [policy({ name: "deny-web", action: "DENY", target: { service: "web" } })];
    expect(authorize(policies, "all-unauthenticated", call(WEB)).allowed).toBe(true);
  });

  it("matches methods and Istio path patterns in `to`", () => {
    const policies = [policy({ name: "read-only", action: "ALLOW", to: [{ methods: ["GET", "HEAD"], paths: ["/api/*"] }] })];
    expect(authorize(policies, "deny", call(WEB)).allowed).toBe(true);
    expect(authorize(policies, "deny", call(WEB, { method: "post" })).allowed).toBe(false);
    expect(authorize(policies, "deny", call(WEB, { path: "/admin" })).allowed).toBe(false);
  });

  it("treats unauthenticated: true as every caller, as Linkerd does", () => {
    const policies = [policy({ name: "open", action: "ALLOW", from: [{ unauthenticated: true }] })];
    expect(authorize(policies, "deny", call()).allowed).toBe(true);
    expect(authorize(policies, "deny", call(WEB)).allowed).toBe(true);
  });

  it("reports AUDIT policies without letting them decide", () => {
    const policies = [policy({ name: "watch", action: "AUDIT", to: [{ paths: ["/api/*"] }] })];
    expect(authorize(policies, "deny", call(WEB))).toEqual({ allowed: false, reason: "default:deny", audited: ["watch"], code: "forbidden" });
  });
});

describe("path rules on normalized paths (issue 10)", () => {
  const denyAdmin = [policy({ name: "no-admin", action: "DENY", to: [{ paths: ["/admin", "/admin/*"] }] })];
  /** What the proxy does: normalize (or refuse with 400), then authorize the normalized path. */
  const verdict = (policies: AuthorizationPolicy[], raw: string, defaultPolicy: "all-unauthenticated" | "deny" = "all-unauthenticated") => {
    const normalized = normalizePath(raw);
    if (!normalized.ok) return 400;
    const decision = authorize(policies, defaultPolicy, call(WEB, { path: normalized.path }));
    return decision.allowed ? 200 : decision.code === "forbidden" ? 403 : 401;
  };

  it.each([
    ["/%61dmin", 403],
    ["//admin", 403],
    ["/admin;x", 403],
    ["/ADMIN", 403],
    ["/admin%2fx", 400],
    ["/admin/../admin", 403],
    ["/./admin", 403],
    ["/%2e%2e/admin", 403],
    ["/Admin/Users;jsessionid=1", 403],
    ["/;x/admin", 403],
    ["/..;/admin", 400],
  ])("stops %s with %i under DENY /admin and /admin/*", (path, status) => {
    expect(verdict(denyAdmin, path)).toBe(status);
  });

  it("lets ordinary paths through a DENY on /admin", () => {
    for (const path of ["/", "/administrator", "/api/admin", "/adm", "/public;x"]) expect(verdict(denyAdmin, path), path).toBe(200);
  });

  it("matches DENY patterns loosely on their side too: case and ';' parameters in the pattern do not matter", () => {
    const policies = [policy({ name: "no-admin", action: "DENY", to: [{ paths: ["/Admin/*", "*.PHP"] }] })];
    expect(verdict(policies, "/admin/x")).toBe(403);
    expect(verdict(policies, "/ADMIN/x")).toBe(403);
    expect(verdict(policies, "/x/index.php")).toBe(403);
    expect(verdict(policies, "/x/index.html")).toBe(200);
  });

  it("matches ALLOW paths exactly, so an ALLOW grants no more than it names", () => {
    const policies = [policy({ name: "public", action: "ALLOW", to: [{ paths: ["/public/*"] }] })];
    expect(verdict(policies, "/public/x", "deny")).toBe(200);
    expect(verdict(policies, "//public//x", "deny")).toBe(200);
    expect(verdict(policies, "/%70ublic/x", "deny")).toBe(200);
    expect(verdict(policies, "/PUBLIC/x", "deny")).toBe(403);
    expect(verdict(policies, "/public/../admin", "deny")).toBe(403);
    expect(verdict(policies, "/public/%2e%2e/admin", "deny")).toBe(403);
  });

  it("reports AUDIT matches on the loose form, as DENY matches", () => {
    const policies = [policy({ name: "watch-admin", action: "AUDIT", to: [{ paths: ["/admin"] }] })];
    expect(authorize(policies, "all-unauthenticated", call(WEB, { path: "/ADMIN;x" })).audited).toEqual(["watch-admin"]);
  });

  it("forms the loose path by lower-casing and cutting ';' parameters per segment", () => {
    expect(["/Admin", "/admin;x", "/a;x/b;y/", "/;x/admin", "/;x", "/A%3Bb"].map(loosePath)).toEqual(["/admin", "/admin", "/a/b/", "/admin", "/", "/a%3bb"]);
  });
});

describe("SPIFFE globs", () => {
  it("match one segment with * and many with **", () => {
    expect(spiffeGlob("spiffe://weft.local/ns/*/sa/web").test(WEB)).toBe(true);
    expect(spiffeGlob("spiffe://weft.local/ns/*/sa/web").test("spiffe://weft.local/ns/a/b/sa/web")).toBe(false);
    expect(spiffeGlob("spiffe://weft.local/**").test(BATCH)).toBe(true);
    expect(spiffeGlob("spiffe://other.local/**").test(BATCH)).toBe(false);
    expect(spiffeGlob("**").test(WEB)).toBe(true);
  });

  it("match in time linear in the identity, however many wildcards the glob has", () => {
    // As a backtracking regex, 20 wildcards against 2,000 "a"s without the final "b" try
    // every way to place them: this never finished. RE2's automaton walks the ID once.
    const id = `spiffe://weft.local/${"a".repeat(2_000)}`;
    expect(spiffeGlob(`spiffe://weft.local/${"**a".repeat(20)}**b`).test(id)).toBe(false);
    expect(spiffeGlob(`spiffe://weft.local/${"*a".repeat(20)}*b`).test(id)).toBe(false);
    expect(spiffeGlob(`spiffe://weft.local/${"**a".repeat(20)}**`).test(id)).toBe(true);
  });

  it("take dots and other regex characters literally", () => {
    expect(spiffeGlob("spiffe://weft.local/worker/a").test("spiffe://weftXlocal/worker/a")).toBe(false);
    expect(spiffeGlob("spiffe://weft.local/a+(b)[c]{2}$^|?\\").test("spiffe://weft.local/a+(b)[c]{2}$^|?\\")).toBe(true);
  });
});

describe("path patterns", () => {
  it("support exact, prefix, suffix and any", () => {
    expect([pathMatches("/a", "/a"), pathMatches("/a", "/ab"), pathMatches("/a*", "/ab"), pathMatches("*.png", "/x.png"), pathMatches("*", "/z")]).toEqual([true, false, true, true, true]);
  });
});

describe("end-user conditions (requestAuthentication's verified claims)", () => {
  const user = (claims: Record<string, unknown>) => ({
    issuer: "https://login.example",
    subject: String(claims.sub ?? "alice"),
    audiences: ["orders"],
    claims: { sub: "alice", ...claims },
  });
  const allowAdmins = policy({ name: "admins", action: "ALLOW", from: [{ issuers: ["https://login.*"], claims: [{ name: "realm.roles", values: ["admin"] }] }] });

  it("matches a nested list claim, and answers 401 to a caller with no end user, 403 to one without the claim", () => {
    expect(authorize([allowAdmins], "all-unauthenticated", { ...call(), endUser: user({ realm: { roles: ["reader", "admin"] } }) }).allowed).toBe(true);
    expect(authorize([allowAdmins], "all-unauthenticated", { ...call(), endUser: user({ realm: { roles: ["reader"] } }) })).toMatchObject({ allowed: false, code: "forbidden" });
    expect(authorize([allowAdmins], "all-unauthenticated", call())).toMatchObject({ allowed: false, code: "unauthenticated" });
  });

  it("matches subjects and audiences by exact, prefix and suffix patterns, and numbers and booleans as text", () => {
    const p = policy({ name: "p", action: "ALLOW", from: [{ subjects: ["staff-*"], audiences: ["*ders"], claims: [{ name: "level", values: ["3"] }, { name: "mfa", values: ["true"] }] }] });
    expect(authorize([p], "deny", { ...call(), endUser: user({ sub: "staff-ann", level: 3, mfa: true }) }).allowed).toBe(true);
    expect(authorize([p], "deny", { ...call(), endUser: user({ sub: "staff-ann", level: 3, mfa: false }) }).allowed).toBe(false);
    expect(authorize([p], "deny", { ...call(), endUser: user({ sub: "ann", level: 3, mfa: true }) }).allowed).toBe(false);
  });

  it("denies on a claim whatever else allows, and needs both the workload identity and the end user when an entry names both", () => {
    const deny = policy({ name: "banned", action: "DENY", from: [{ claims: [{ name: "groups", values: ["banned"] }] }] });
    expect(authorize([deny], "all-unauthenticated", { ...call(WEB), endUser: user({ groups: ["a", "banned"] }) })).toMatchObject({ allowed: false, code: "forbidden" });
    expect(authorize([deny], "all-unauthenticated", { ...call(WEB), endUser: user({ groups: "a" }) }).allowed).toBe(true);
    const both = policy({ name: "both", action: "ALLOW", from: [{ identities: [WEB], subjects: ["alice"] }] });
    expect(authorize([both], "deny", { ...call(WEB), endUser: user({}) }).allowed).toBe(true);
    expect(authorize([both], "deny", { ...call(BATCH), endUser: user({}) }).allowed).toBe(false);
    expect(authorize([both], "deny", call(WEB)).allowed).toBe(false);
  });

  it("reads only the claim's own keys: a claim named after Object's machinery matches nothing", () => {
    const p = policy({ name: "p", action: "ALLOW", from: [{ claims: [{ name: "constructor.name", values: ["Object"] }] }] });
    expect(authorize([p], "deny", { ...call(), endUser: user({}) }).allowed).toBe(false);
  });
});
