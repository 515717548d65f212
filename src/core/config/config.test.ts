import { describe, expect, it } from "vitest";
import {
  AuthorizationPolicySchema,
  ResourceSchema,
  RouteSchema,
  ServiceSchema,
  SnapshotSchema,
  durationMs,
  formatDuration,
  parseDuration,
  referenceIssues,
  validate,
} from "./index.ts";

describe("durations", () => {
  it.each([
    ["250ms", 250],
    ["10s", 10_000],
    ["1.5s", 1_500],
    ["1m", 60_000],
    ["2h", 7_200_000],
    ["0ms", 0],
  ])("parses %s as %i ms", (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, ms });
  });

  it.each(["", "10", "ms", "-1s", "1d", "1 s", "1e3ms", "10S", "١s"])("refuses %j", (text) => {
    expect(parseDuration(text).ok).toBe(false);
  });

  it("writes the shortest exact form back", () => {
    expect([1500, 1000, 60_000, 3_600_000, 0, 90_000].map(formatDuration)).toEqual(["1500ms", "1s", "1m", "1h", "0ms", "90s"]);
    expect(durationMs(formatDuration(12_345))).toBe(12_345);
  });
});

describe("service schema", () => {
  it("fills Linkerd's defaults", () => {
    const result = validate(ServiceSchema, { name: "orders", retry: {}, failureAccrual: {} });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.balancer).toBe("p2c-ewma");
    expect(result.value.defaultPolicy).toBe("all-unauthenticated");
    expect(result.value.retry).toEqual({
      limit: 1,
      on: ["5xx", "reset"],
      budget: { ratio: 0.2, minPerSecond: 10, ttl: "10s" },
      backoff: { base: "25ms", max: "250ms" },
    });
    expect(result.value.failureAccrual).toEqual({ consecutiveFailures: 7, backoff: { min: "1s", max: "60s", jitter: 0.5 } });
  });

  it("lists every problem at once, each with its path", () => {
    const result = validate(ServiceSchema, {
      name: "Orders_1",
      balancer: "fastest",
      timeout: "soon",
      endpoints: [{ id: "a", address: "ftp://x" }, { id: "", address: "http://127.0.0.1:8080/path" }],
      extra: true,
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const paths = result.issues.map((i) => i.path.join("."));
    expect(paths).toEqual(expect.arrayContaining(["name", "balancer", "timeout", "endpoints.0.address", "endpoints.1.id", "endpoints.1.address", ""]));
    expect(result.issues.length).toBeGreaterThanOrEqual(7);
  });

  it("accepts origins and service bindings as endpoint addresses", () => {
    for (const address of ["http://127.0.0.1:8080", "https://orders.example.com", "binding:ORDERS_V1", "http://[::1]:9000"]) {
      expect(validate(ServiceSchema, { name: "orders", endpoints: [{ id: "e1", address }] }).ok, address).toBe(true);
    }
    for (const address of ["binding:", "binding:1X", "http://user:pw@host:1", "http://host:1/path", "orders:80"]) {
      expect(validate(ServiceSchema, { name: "orders", endpoints: [{ id: "e1", address }] }).ok, address).toBe(false);
    }
  });

  it("refuses a retry budget window outside Linkerd's 1s..60s", () => {
    expect(validate(ServiceSchema, { name: "a", retry: { budget: { ttl: "500ms" } } }).ok).toBe(false);
    expect(validate(ServiceSchema, { name: "a", retry: { budget: { ttl: "2m" } } }).ok).toBe(false);
    expect(validate(ServiceSchema, { name: "a", retry: { budget: { ttl: "60s" } } }).ok).toBe(true);
  });
});

describe("route schema", () => {
  it("defaults an empty match list and backend weights", () => {
    const result = validate(RouteSchema, { name: "r", service: "orders", backends: [{ service: "orders-v1" }] });
    expect(result.ok && result.value.matches).toEqual([]);
    expect(result.ok && result.value.backends).toEqual([{ service: "orders-v1", weight: 1 }]);
  });

  it("checks paths and regular expressions", () => {
    const bad = validate(RouteSchema, {
      name: "r",
      service: "orders",
      matches: [{ path: { type: "PathPrefix", value: "api" } }, { path: { type: "RegularExpression", value: "([a-z" } }, { headers: [{ name: "x", value: "(", type: "RegularExpression" }] }],
      backends: [],
    });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.issues.map((i) => i.path.join("."))).toEqual(
      expect.arrayContaining(["matches.0.path.value", "matches.1.path.value", "matches.2.headers.0.value", "backends"]),
    );
  });
});

describe("route regexes", () => {
  const routeWith = (match: Record<string, unknown>) => ({ name: "r", service: "orders", matches: [match], backends: [{ service: "orders" }] });
  const issuesOf = (match: Record<string, unknown>) => {
    const result = validate(RouteSchema, routeWith(match));
    return result.ok ? [] : result.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("accepts RE2 patterns, the catastrophic-for-backtracking ones included, since RE2 matches them in linear time", () => {
    expect(issuesOf({ path: { type: "RegularExpression", value: "/api/([a-z]+/?)+" } })).toEqual([]);
    expect(issuesOf({ headers: [{ name: "x", value: "(a+)+$", type: "RegularExpression" }], query: [{ name: "q", value: "^(\\w+\\s?)*$", type: "RegularExpression" }] })).toEqual([]);
    expect(issuesOf({ path: { type: "RegularExpression", value: "/users/(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})" } })).toEqual([]);
  });

  it("refuses backreferences, naming them, at the value's path", () => {
    expect(issuesOf({ path: { type: "RegularExpression", value: "/(a+)/\\1" } })).toEqual([
      "matches.0.path.value: must be RE2 syntax, which matches in linear time: backreferences (\\1, \\k<name>) are not supported",
    ]);
    expect(issuesOf({ headers: [{ name: "x", value: "(?<w>a)\\k<w>", type: "RegularExpression" }] })).toEqual([expect.stringMatching(/^matches\.0\.headers\.0\.value: .*backreferences/)]);
  });

  it("refuses lookahead and lookbehind, naming them", () => {
    for (const value of ["/(?=admin)a.*", "/(?!admin).*", "/(?<=x)y", "/(?<!x)y"]) {
      expect(issuesOf({ path: { type: "RegularExpression", value } }), value).toEqual([expect.stringMatching(/^matches\.0\.path\.value: .*lookahead and lookbehind/)]);
    }
    expect(issuesOf({ query: [{ name: "q", value: "a(?=b)", type: "RegularExpression" }] })).toEqual([expect.stringMatching(/^matches\.0\.query\.0\.value: .*lookahead/)]);
  });

  it("refuses other syntax RE2 does not have, with the parser's reason", () => {
    expect(issuesOf({ path: { type: "RegularExpression", value: "/a++" } })).toEqual([expect.stringMatching(/possessive/)]);
    expect(issuesOf({ path: { type: "RegularExpression", value: "/x{1001}" } })).toEqual([expect.stringMatching(/invalid repeat count/)]);
    expect(issuesOf({ headers: [{ name: "x", value: "\\u0041", type: "RegularExpression" }] })).toEqual([expect.stringMatching(/invalid escape sequence/)]);
  });

  it("refuses a pattern whose RE2 program is over Envoy's default size of 100, and one over 1024 characters", () => {
    const [issue] = issuesOf({ path: { type: "RegularExpression", value: "/[a-z]{200}" } });
    expect(issue).toMatch(/^matches\.0\.path\.value: is too complex: its RE2 program size is \d+, the limit 100/);
    expect(issuesOf({ headers: [{ name: "x", value: "a|".repeat(600) + "a", type: "RegularExpression" }] })).toEqual(["matches.0.headers.0.value: must be at most 1024 characters"]);
    // The length limit is the regex's: an exact header value may still be up to 4096 characters.
    expect(issuesOf({ headers: [{ name: "x", value: "a".repeat(4096) }] })).toEqual([]);
  });
});

describe("paths in routes and policies", () => {
  const routeIssues = (type: string, value: string) => {
    const result = validate(RouteSchema, { name: "r", service: "orders", matches: [{ path: { type, value } }], backends: [{ service: "orders" }] });
    return result.ok ? [] : result.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  const policyIssues = (paths: string[]) => {
    const result = validate(AuthorizationPolicySchema, { name: "p", target: { service: "orders" }, action: "DENY", to: [{ paths }] });
    return result.ok ? [] : result.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("accepts paths in the normal form requests are matched in", () => {
    expect(routeIssues("Exact", "/api/items")).toEqual([]);
    expect(routeIssues("PathPrefix", "/api/")).toEqual([]);
    expect(policyIssues(["/admin", "/admin/*", "/*", "/Admin;x", "/a%3Bb"])).toEqual([]);
  });

  it("refuses a path that normalization would rewrite, giving the form to write", () => {
    expect(routeIssues("PathPrefix", "//api")).toEqual(['matches.0.path.value: must be in the normal form requests are matched in: write "/api"']);
    expect(routeIssues("Exact", "/%61pi/./x")).toEqual(['matches.0.path.value: must be in the normal form requests are matched in: write "/api/x"']);
    expect(policyIssues(["/admin/../secret/*"])).toEqual(['to.0.paths.0: must be in the normal form requests are matched in: write "/secret/*"']);
  });

  it("refuses a path no request can have, since such requests are refused", () => {
    expect(policyIssues(["/admin%2Fx"])).toEqual([expect.stringMatching(/^to\.0\.paths\.0: can never match: requests whose path has an encoded '\/'/)]);
    expect(routeIssues("Exact", "/a\\b")).toEqual([expect.stringMatching(/^matches\.0\.path\.value: can never match/)]);
    // One issue for a pattern that does not start with '/', not two.
    expect(policyIssues(["admin"])).toEqual(["to.0.paths.0: must start with '/'"]);
  });
});

describe("authorization policy schema", () => {
  it("accepts SPIFFE globs and refuses other identities", () => {
    const policy = { name: "p", target: { service: "orders" }, action: "ALLOW", from: [{ identities: ["spiffe://weft.local/ns/*/sa/web"] }] };
    expect(validate(AuthorizationPolicySchema, policy).ok).toBe(true);
    const bad = { ...policy, action: "MAYBE", from: [{ identities: ["web"] }] };
    const result = validate(AuthorizationPolicySchema, bad);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues.map((i) => i.path.join("."))).toEqual(["action", "from.0.identities.0"]);
  });
});

describe("resources and snapshots", () => {
  it("tells resources apart by kind", () => {
    expect(validate(ResourceSchema, { kind: "Service", name: "a" }).ok).toBe(true);
    const result = validate(ResourceSchema, { kind: "Gateway", name: "a" });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues[0]?.path).toEqual(["kind"]);
  });

  it("finds dangling references and duplicates across resources", () => {
    const snapshot = validate(SnapshotSchema, {
      version: 3,
      services: [{ name: "orders" }, { name: "orders" }],
      routes: [{ name: "r", service: "orders", backends: [{ service: "orders-v2", weight: 0 }] }],
      policies: [{ name: "p", target: { service: "web", route: "r" }, action: "DENY" }],
      jwks: { keys: [] },
    });
    expect(snapshot.ok).toBe(true);
    if (!snapshot.ok) return;
    expect(referenceIssues(snapshot.value).map((i) => i.path.join("."))).toEqual([
      "services.1.name",
      "routes.0.backends.0.service",
      "routes.0.backends",
      "policies.0.target.service",
      "policies.0.target.route",
    ]);
  });
});

describe("requestAuthentication", () => {
  const rule = { issuer: "https://login.example", jwksUri: "https://login.example/jwks" };

  it("fills the defaults: RS256 and ES256, Authorization: Bearer, 60 s skew, jose's cache times, token removed", () => {
    const result = validate(ServiceSchema, { name: "api", requestAuthentication: { jwtRules: [rule] } });
    expect(result.ok && result.value.requestAuthentication?.jwtRules[0]).toMatchObject({ algorithms: ["RS256", "ES256"], clockSkew: "60s", jwksCacheMaxAge: "10m", jwksCooldown: "30s", forwardOriginalToken: false });
  });

  it.each([
    ["an HMAC algorithm", { ...rule, algorithms: ["HS256"] }],
    ["alg none", { ...rule, algorithms: ["none"] }],
    ["both a JWKS URL and inline keys", { ...rule, jwks: { keys: [{ kty: "RSA" }] } }],
    ["neither a JWKS URL nor inline keys", { issuer: rule.issuer }],
    ["a JWKS URL that is not http(s)", { ...rule, jwksUri: "file:///etc/passwd" }],
    ["a claim header in the weft- namespace", { ...rule, outputClaimToHeaders: [{ header: "weft-client-id", claim: "sub" }] }],
    ["a claim header with an underscore", { ...rule, outputClaimToHeaders: [{ header: "x_user", claim: "sub" }] }],
    ["a claim header that is a credential", { ...rule, outputClaimToHeaders: [{ header: "Authorization", claim: "sub" }] }],
  ])("refuses %s", (_, jwtRule) => {
    expect(validate(ServiceSchema, { name: "api", requestAuthentication: { jwtRules: [jwtRule] } }).ok).toBe(false);
  });

  it("takes end-user conditions in a policy's from", () => {
    const result = validate(AuthorizationPolicySchema, { name: "p", target: { service: "api" }, action: "ALLOW", from: [{ issuers: ["https://login.example"], subjects: ["staff-*"], claims: [{ name: "groups", values: ["admin"] }] }] });
    expect(result.ok).toBe(true);
  });
});
