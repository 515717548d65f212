/**
 * The zod schemas of SPEC.md section 3: services, endpoints, routes (Gateway API HTTPRoute),
 * retries, failure accrual, authorization policies and the snapshot. Shared by the control
 * API (which validates what users send) and the data plane (which validates what it reads
 * back from KV). Defaults follow Linkerd and Gateway API; each says where it comes from.
 */
import { z } from "zod";
import { normalizePath } from "../path/index.ts";
import { checkRegex } from "../regex/index.ts";
import { DURATION_PATTERN, parseDuration } from "./duration.ts";

/** A name: an RFC 1123 DNS label, as Kubernetes names services (lower case, ≤ 63). */
export const NameSchema = z
  .string()
  .max(63, "must be at most 63 characters")
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit");

/** A duration such as "250ms", "10s", "1m" (at most 24 hours). */
export const DurationSchema = z
  .string()
  .max(20)
  .regex(DURATION_PATTERN, 'must be a duration such as "250ms", "10s", "1m" or "1h"')
  .refine((text) => {
    const parsed = parseDuration(text);
    return parsed.ok && parsed.ms <= 86_400_000;
  }, "must be at most 24h");

const Identifier = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9._:-]*[A-Za-z0-9])?$/, "must be letters, digits, '.', '_', ':' or '-'");

const Labels = z
  .record(z.string().min(1).max(63).regex(/^[A-Za-z0-9._/-]+$/, "label keys are letters, digits, '.', '_', '/', '-'"), z.string().max(256))
  .refine((labels) => Object.keys(labels).length <= 32, "at most 32 labels");

/**
 * Label keys that name JavaScript's object machinery. `JSON.parse` keeps `__proto__` as a key,
 * but the copy a record schema makes drops it without a word (assigning `__proto__` sets the
 * prototype); `constructor` and `prototype` would shadow what every object inherits. Refused
 * by name, before the labels are copied.
 */
const RESERVED_LABEL_KEYS = new Set(["__proto__", "constructor", "prototype"]);

const SafeLabels = z
  .unknown()
  .superRefine((value, ctx) => {
    if (typeof value !== "object" || value === null) return;
    for (const key of Object.keys(value)) {
      if (RESERVED_LABEL_KEYS.has(key)) ctx.addIssue({ code: "custom", path: [key], message: `label key "${key}" is reserved` });
    }
  })
  .pipe(Labels);

/** An endpoint's address: an http(s) origin (scheme, host, port; no path) or `binding:NAME`. */
export const AddressSchema = z
  .string()
  .max(512)
  .refine((text) => {
    if (/^binding:[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(text)) return true;
    if (!/^https?:\/\//.test(text)) return false;
    try {
      const url = new URL(text);
      return url.origin === text.replace(/\/$/, "") && url.username === "" && url.password === "";
    } catch {
      return false;
    }
  }, "must be an http(s)://host:port origin or binding:NAME");

/** One instance of a service (SPEC.md section 3). `leaseExpiresAt` is an ISO 8601 time. */
export const EndpointSchema = z.strictObject({
  id: Identifier,
  address: AddressSchema,
  // Gateway API backendRef weights are 0..1,000,000; an endpoint of weight 0 gets no traffic.
  weight: z.number().int().min(0).max(1_000_000).optional(),
  zone: z.string().max(63).optional(),
  labels: SafeLabels.optional(),
  leaseExpiresAt: z.iso.datetime({ offset: true }).optional(),
  // Mutual TLS (docs/identity.md): the SPIFFE ID this endpoint must present when its address
  // is https://. The control plane sets it from the identity of the workload that registered it.
  identity: z.string().startsWith("spiffe://").max(2048).optional(),
});

/** What a retry is for (SPEC.md section 3). */
export const RetryOnSchema = z.enum(["5xx", "gateway-error", "reset", "429", "deadline-per-try"]);

/** Linkerd's retry budget: ratio 0.2, 10 retries a second minimum, over a 10 s window. */
export const RetryBudgetSchema = z.strictObject({
  ratio: z.number().min(0).max(1000).default(0.2),
  minPerSecond: z.number().int().min(0).max(100_000).default(10),
  ttl: DurationSchema.refine((t) => {
    const ms = parseDuration(t);
    // Linkerd's proxy rejects a budget window outside 1 s..60 s.
    return ms.ok && ms.ms >= 1_000 && ms.ms <= 60_000;
  }, "must be between 1s and 60s").default("10s"),
});

/** Retries: a limit, what to retry on, a budget and backoff (Linkerd: 1 retry, 25 ms → 250 ms). */
export const RetrySchema = z.strictObject({
  limit: z.number().int().min(0).max(10).default(1),
  on: z.array(RetryOnSchema).min(1).max(5).default(["5xx", "reset"]),
  budget: RetryBudgetSchema.prefault({}),
  backoff: z
    .strictObject({ base: DurationSchema.default("25ms"), max: DurationSchema.default("250ms") })
    .prefault({}),
});

/** Linkerd's consecutive-failure accrual: 7 failures, penalty 1 s → 60 s, jitter 0.5. */
export const FailureAccrualSchema = z.strictObject({
  consecutiveFailures: z.number().int().min(1).max(1000).default(7),
  backoff: z
    .strictObject({
      min: DurationSchema.default("1s"),
      max: DurationSchema.default("60s"),
      jitter: z.number().min(0).max(1).default(0.5),
    })
    .prefault({}),
});

/** A rate: sustained requests per second and a burst above it. */
const RateSchema = z.strictObject({
  rps: z.number().positive().max(1_000_000),
  burst: z.number().int().min(0).max(1_000_000).default(0),
});

/**
 * A rate limit (Linkerd's HTTPLocalRateLimitPolicy): `rps`/`burst` for all callers together,
 * and for fairness a `perKey` share for each caller, by `key` (the verified caller by
 * default), with `overrides` for named keys (docs/rate-limits.md).
 */
export const RateLimitSchema = RateSchema.extend({
  key: z
    .discriminatedUnion("type", [
      z.strictObject({ type: z.literal("client") }),
      z.strictObject({ type: z.literal("ip") }),
      z.strictObject({ type: z.literal("header"), name: z.string().min(1).max(128).regex(/^[!#$%&'*+.^`|~0-9A-Za-z-]+$/, "must be an HTTP header name") }),
    ])
    .optional(),
  perKey: RateSchema.optional(),
  overrides: z.array(RateSchema.extend({ keys: z.array(z.string().max(512)).min(1).max(64) })).max(64).optional(),
});

const Version = z.number().int().min(0).optional();

// ---- End-user authentication (Istio's RequestAuthentication, per service) -------------------

/**
 * The signing algorithms a `jwtRules` entry may accept: asymmetric ones only, as Istio's
 * RequestAuthentication and the JWT BCP (RFC 8725 section 3.1) advise: an issuer's public
 * JWKS can never be an HMAC secret (HS/RS confusion), and `none` is never a signature.
 */
export const END_USER_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;

/** A header name: RFC 9110 token characters, lower-cased on the wire. */
const HeaderName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[!#$%&'*+.^`|~0-9A-Za-z-]+$/, "must be an HTTP header name (token characters)")
  .refine((name) => !name.includes("_"), "must not contain '_' (the inbound side drops such headers)")
  .refine((name) => !/^(weft-|host$|content-length$|transfer-encoding$|connection$|authorization$|cookie$)/i.test(name), "must not be a weft-* or hop, framing or credential header");

/** One issuer's rule (Istio's `JWTRule`): where its keys are, what it may sign, where its token is. */
export const JwtRuleSchema = z
  .strictObject({
    /** The token's `iss`, exactly. */
    issuer: z.string().min(1).max(512),
    /** Accepted `aud` values (any one); absent: any audience. */
    audiences: z.array(z.string().min(1).max(512)).min(1).max(16).optional(),
    /** The issuer's JWKS URL, fetched and cached (jose's remote key set); or `jwks` inline. */
    jwksUri: z.url({ protocol: /^https?$/ }).max(2048).optional(),
    /** The issuer's public keys inline (a JWKS document). */
    jwks: z.looseObject({ keys: z.array(z.looseObject({ kty: z.string() })).min(1).max(64) }).optional(),
    /** How long fetched keys are used before they are fetched again: jose's `cacheMaxAge` default, 10 min. */
    jwksCacheMaxAge: DurationSchema.default("10m"),
    /** After a fetch, no other for this long, even for an unknown `kid`: jose's `cooldownDuration` default, 30 s. */
    jwksCooldown: DurationSchema.default("30s"),
    /** Accepted `alg` values; RS256 and ES256 unless named. */
    algorithms: z.array(z.enum(END_USER_ALGORITHMS)).min(1).max(10).default(["RS256", "ES256"]),
    /** Headers the token may come in, with a prefix to cut (`Authorization: Bearer ` unless any location is named). */
    fromHeaders: z.array(z.strictObject({ name: z.string().min(1).max(128).regex(/^[!#$%&'*+.^`|~0-9A-Za-z-]+$/), prefix: z.string().max(64).optional() })).max(4).optional(),
    /** Cookies the token may come in. */
    fromCookies: z.array(z.string().min(1).max(128).regex(/^[!#$%&'*+.^`|~0-9A-Za-z-]+$/)).max(4).optional(),
    /** Allowance on `exp` and `nbf`: Envoy's jwt_authn `clock_skew_seconds` default, 60 s. */
    clockSkew: DurationSchema.default("60s"),
    /** Keep the token on the request to the app (Istio's `forwardOriginalToken`); removed by default. */
    forwardOriginalToken: z.boolean().default(false),
    /** Claims copied to headers for the app; those headers are removed from every request first. */
    outputClaimToHeaders: z.array(z.strictObject({ header: HeaderName, claim: z.string().min(1).max(256) })).max(16).optional(),
  })
  .refine((rule) => (rule.jwksUri === undefined) !== (rule.jwks === undefined), "set exactly one of jwksUri or jwks");

/** A service's end-user authentication: the issuers whose tokens it verifies. */
export const RequestAuthenticationSchema = z.strictObject({
  jwtRules: z.array(JwtRuleSchema).min(1).max(8),
});

export type JwtRule = z.infer<typeof JwtRuleSchema>;
export type RequestAuthentication = z.infer<typeof RequestAuthenticationSchema>;

// ---- end of end-user authentication ----------------------------------------------------------

/** A service (SPEC.md section 3). Linkerd's cluster default policy is all-unauthenticated. */
export const ServiceSchema = z.strictObject({
  name: NameSchema,
  version: Version,
  endpoints: z.array(EndpointSchema).max(1000).optional(),
  balancer: z.enum(["p2c-ewma", "round-robin"]).default("p2c-ewma"),
  defaultPolicy: z.enum(["all-authenticated", "all-unauthenticated", "deny"]).default("all-unauthenticated"),
  retry: RetrySchema.optional(),
  timeout: DurationSchema.optional(),
  failureAccrual: FailureAccrualSchema.optional(),
  rateLimit: RateLimitSchema.optional(),
  // Tap (issue 14): headers whose values `weft tap` never shows for calls to or from this
  // service, beside the ones it never shows anyway (authorization, cookie, weft-identity).
  tapIgnoreHeaders: z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, "must be a header name")).max(64).optional(),
  /** End-user JWTs this service verifies (docs/end-user-auth.md). */
  requestAuthentication: RequestAuthenticationSchema.optional(),
});

/**
 * A zod check for a match whose `type` may be "RegularExpression": its `value` must be RE2
 * syntax within the length and program-size limits (`../regex`), so that matching it costs
 * time linear in the input, whatever the input.
 */
const linearRegex = (ctx: z.core.ParsePayload<{ type: string; value: string }>) => {
  const { type, value } = ctx.value;
  if (type !== "RegularExpression" || typeof value !== "string") return;
  const checked = checkRegex(value);
  if (!checked.ok) ctx.issues.push({ code: "custom", message: checked.message, input: value, path: ["value"] });
};

const StringMatch = z
  .strictObject({
    name: z.string().min(1).max(256),
    value: z.string().max(4096),
    type: z.enum(["Exact", "RegularExpression"]).default("Exact"),
  })
  .check(linearRegex);

/**
 * Why `path` can never equal a request's path, which the data plane normalizes before
 * matching (`../path`): a path it would refuse, or one it would rewrite (say `//a` or
 * `/%61`), with the form to write instead. Undefined for a path in normal form.
 */
function unmatchable(path: string, wildcard = ""): string | undefined {
  const normalized = normalizePath(path);
  if (!normalized.ok) return `can never match: requests whose path ${normalized.reason} are refused`;
  if (normalized.path !== path) return `must be in the normal form requests are matched in: write "${normalized.path}${wildcard}"`;
  return undefined;
}

/** A path match: Gateway API's Exact, PathPrefix (default, "/") or RegularExpression. */
export const PathMatchSchema = z
  .strictObject({
    type: z.enum(["Exact", "PathPrefix", "RegularExpression"]).default("PathPrefix"),
    value: z.string().min(1).max(1024).default("/"),
  })
  .refine((p) => p.type === "RegularExpression" || p.value.startsWith("/"), { message: "must start with '/'", path: ["value"] })
  .check((ctx) => {
    const { type, value } = ctx.value;
    if (type === "RegularExpression" || typeof value !== "string" || !value.startsWith("/")) return;
    const why = unmatchable(value);
    if (why) ctx.issues.push({ code: "custom", message: why, input: value, path: ["value"] });
  })
  .check(linearRegex);

/** One HTTPRouteMatch: every condition given must hold. Gateway API caps headers and query at 16. */
export const RouteMatchSchema = z.strictObject({
  path: PathMatchSchema.optional(),
  method: z.enum(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]).optional(),
  headers: z.array(StringMatch).max(16).optional(),
  query: z.array(StringMatch).max(16).optional(),
});

const HeaderModifier = z.strictObject({
  set: z.array(z.strictObject({ name: z.string().min(1).max(256), value: z.string().max(4096) })).max(16).optional(),
  add: z.array(z.strictObject({ name: z.string().min(1).max(256), value: z.string().max(4096) })).max(16).optional(),
  remove: z.array(z.string().min(1).max(256)).max(16).optional(),
});

// --- Traffic tools (issue 16): mirroring and fault injection filters. ---

/** A share of requests: Gateway API's `percent` (0..100) or `fraction` (numerator/denominator). */
const Percent = z.number().min(0).max(100);

/**
 * Gateway API's RequestMirror: a copy of `percent` % (or `fraction`) of requests to another
 * service, fire-and-forget (docs/traffic.md). Bodies over `maxBodyBytes` are not mirrored.
 */
export const RequestMirrorSchema = z
  .strictObject({
    backendRef: z.strictObject({ service: NameSchema }),
    percent: Percent.optional(),
    fraction: z.strictObject({ numerator: z.number().int().min(0), denominator: z.number().int().min(1).max(1_000_000).default(100) }).optional(),
    maxBodyBytes: z.number().int().min(0).max(16 * 1024 * 1024).optional(),
    timeout: DurationSchema.optional(),
  })
  .refine((m) => !(m.percent !== undefined && m.fraction !== undefined), "give percent or fraction, not both")
  .refine((m) => m.fraction === undefined || m.fraction.numerator <= m.fraction.denominator, { message: "numerator must be at most denominator", path: ["fraction"] });

/**
 * Istio's HTTPFaultInjection: a delay and/or an abort, each on `percent` % of requests, and
 * only for requests carrying `header` when one is named (docs/traffic.md).
 */
export const FaultInjectionSchema = z
  .strictObject({
    delay: z.strictObject({ fixedDelay: DurationSchema, percent: Percent.default(100) }).optional(),
    abort: z
      .strictObject({
        httpStatus: z.number().int().min(200).max(599).optional(),
        grpcStatus: z.number().int().min(1).max(16).optional(),
        percent: Percent.default(100),
      })
      .refine((a) => (a.httpStatus === undefined) !== (a.grpcStatus === undefined), "give exactly one of httpStatus or grpcStatus")
      .optional(),
    header: z.strictObject({ name: z.string().min(1).max(256), value: z.string().max(4096).optional() }).optional(),
  })
  .refine((f) => f.delay !== undefined || f.abort !== undefined, "give a delay, an abort or both");

/** Gateway API's header-modifier and RequestMirror filters, and Weft's FaultInjection. */
export const FilterSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("RequestHeaderModifier"), requestHeaderModifier: HeaderModifier }),
  z.strictObject({ type: z.literal("ResponseHeaderModifier"), responseHeaderModifier: HeaderModifier }),
  z.strictObject({ type: z.literal("RequestMirror"), requestMirror: RequestMirrorSchema }),
  z.strictObject({ type: z.literal("FaultInjection"), faultInjection: FaultInjectionSchema }),
]);

/** A backend of a route and its share of the traffic (Gateway API weights, default 1). */
export const BackendSchema = z.strictObject({
  service: NameSchema,
  weight: z.number().int().min(0).max(1_000_000).default(1),
});

/** A route (SPEC.md section 3, after Gateway API HTTPRoute). No matches = everything ("/" prefix). */
export const RouteSchema = z.strictObject({
  name: NameSchema,
  version: Version,
  service: NameSchema,
  matches: z.array(RouteMatchSchema).max(64).default([]),
  backends: z.array(BackendSchema).min(1).max(16),
  timeouts: z.strictObject({ request: DurationSchema.optional(), backendRequest: DurationSchema.optional() }).optional(),
  retry: RetrySchema.optional(),
  filters: z.array(FilterSchema).max(16).optional(),
  /** The inbound rate limit of this route, in place of its service's (docs/rate-limits.md). */
  rateLimit: RateLimitSchema.optional(),
});

// --- Egress (issue 16): services outside the mesh, and the mesh-wide egress mode. ---

/** A DNS hostname (lower case, dotted labels), as an outside service is called. */
const Hostname = z
  .string()
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/, "must be a lower-case DNS hostname with at least one dot (api.example.com)");

/**
 * A service outside the mesh (Istio's ServiceEntry, Linkerd's EgressNetwork): the hostnames
 * workloads call it by, and how the mesh reaches it: `https` originates TLS (the app may call
 * plain http), with an optional SNI name and CA bundle (PEM) to verify it by; `address`
 * (`host:port`) connects there instead of resolving the hostname (a fixed egress address).
 * Calls to it get the route level's timeouts, retries and metrics (docs/egress.md).
 */
export const ExternalServiceSchema = z.strictObject({
  name: NameSchema,
  version: Version,
  hosts: z.array(Hostname).min(1).max(16),
  protocol: z.enum(["http", "https"]).default("https"),
  port: z.number().int().min(1).max(65_535).optional(),
  address: z
    .string()
    .max(260)
    .regex(/^([a-z0-9.-]+|\[[0-9a-f:]+\]):\d{1,5}$/i, "must be host:port")
    .optional(),
  tls: z.strictObject({ sni: Hostname.optional(), caBundle: z.string().min(1).max(65_536).regex(/-----BEGIN CERTIFICATE-----/, "must be PEM certificates").optional() }).optional(),
  timeout: DurationSchema.optional(),
  retry: RetrySchema.optional(),
  failureAccrual: FailureAccrualSchema.optional(),
});

/**
 * The mesh-wide egress mode: `allow` lets calls to undeclared outside hosts through as they
 * are, `allow-listed` only to declared ExternalServices, `deny` to none. Without one, a host
 * that names no service is `unknown-service`, as before egress existed.
 */
export const EgressModeSchema = z.enum(["allow", "deny", "allow-listed"]);

/** A glob on SPIFFE IDs: `*` matches within one path segment, `**` across segments. */
const IdentityGlob = z
  .string()
  .min(1)
  .max(512)
  .regex(/^(spiffe:\/\/[^\s]+|\*\*?)$/, "must be a SPIFFE ID or a glob of one (spiffe://domain/ns/*/sa/*), or * / **");

/** A pattern on a claim's value: exact, `prefix*`, `*suffix` or `*` (Istio's string match forms). */
const ClaimPattern = z.string().min(1).max(512);

/** A named claim (a dotted path for nested ones: `realm.roles`) and the values it may have. */
const ClaimMatch = z.strictObject({
  name: z.string().min(1).max(256),
  values: z.array(ClaimPattern).min(1).max(64),
});

/** An authorization policy (SPEC.md section 3): DENY first, then ALLOW, then the default. */
export const AuthorizationPolicySchema = z.strictObject({
  name: NameSchema,
  version: Version,
  target: z.strictObject({ service: NameSchema, route: NameSchema.optional() }),
  action: z.enum(["ALLOW", "DENY", "AUDIT"]),
  from: z
    .array(
      z.strictObject({
        identities: z.array(IdentityGlob).max(64).optional(),
        unauthenticated: z.boolean().optional(),
        // The verified end user (docs/end-user-auth.md): each list matches if any pattern does.
        issuers: z.array(ClaimPattern).max(16).optional(),
        subjects: z.array(ClaimPattern).max(64).optional(),
        audiences: z.array(ClaimPattern).max(16).optional(),
        claims: z.array(ClaimMatch).max(16).optional(),
      }),
    )
    .max(16)
    .optional(),
  to: z
    .array(
      z.strictObject({
        methods: z.array(z.string().min(1).max(16).regex(/^[A-Z]+$/, "must be an upper-case HTTP method")).max(16).optional(),
        paths: z
          .array(
            z
              .string()
              .min(1)
              .max(1024)
              .regex(/^\//, "must start with '/'")
              // The part before a trailing `*` is a path too, and must be in normal form.
              .check((ctx) => {
                if (!ctx.value.startsWith("/")) return;
                const wildcard = ctx.value.endsWith("*") ? "*" : "";
                const why = unmatchable(ctx.value.slice(0, ctx.value.length - wildcard.length), wildcard);
                if (why) ctx.issues.push({ code: "custom", message: why, input: ctx.value });
              }),
          )
          .max(64)
          .optional(),
      }),
    )
    .max(16)
    .optional(),
});

// --- Mesh-wide tracing (issue 13, scope item 3): the Tracing resource. ---

/** OpenTelemetry's sampler names (`OTEL_TRACES_SAMPLER`), as the Tracing resource takes them. */
export const SAMPLER_NAMES = ["parentbased_traceidratio", "parentbased_always_on", "parentbased_always_off", "traceidratio", "always_on", "always_off"] as const;

/** The one Tracing resource's name: it serves the whole mesh. */
export const MESH_TRACING_NAME = "mesh";

/** A sampling ratio, 0 (none) to 1 (every new trace), as `OTEL_TRACES_SAMPLER_ARG`. */
const Ratio = z.number().min(0, "must be from 0 to 1").max(1, "must be from 0 to 1");

/**
 * Mesh-wide sampling (docs/tracing.md), anchored on Istio's Telemetry
 * `tracing.randomSamplingPercentage` and OpenTelemetry's sampler names: one resource named
 * `mesh`; `sampler` (default `parentbased_traceidratio`) with its `ratio` (only for the two
 * ratio samplers; default 0.01), and `services`, per-service ratios that replace the ratio
 * for that service's proxies (the sampler stays parent-based or not). Where spans go stays
 * each host's `OTEL_EXPORTER_OTLP_*`; an `OTEL_TRACES_SAMPLER` set on a workload wins.
 */
export const MeshTracingSchema = z
  .strictObject({
    name: z.literal(MESH_TRACING_NAME, { error: `must be "${MESH_TRACING_NAME}": one Tracing resource serves the whole mesh` }),
    version: Version,
    sampler: z.enum(SAMPLER_NAMES).default("parentbased_traceidratio"),
    ratio: Ratio.optional(),
    services: z
      .record(NameSchema, Ratio)
      .refine((services) => Object.keys(services).length <= 1_000, "at most 1000 services")
      .optional(),
  })
  .superRefine((tracing, ctx) => {
    if (tracing.ratio !== undefined && !tracing.sampler.endsWith("traceidratio")) {
      ctx.addIssue({ code: "custom", path: ["ratio"], message: `only with sampler traceidratio or parentbased_traceidratio (${tracing.sampler} samples by no ratio)` });
    }
  });

/** A JWK in the trust bundle; checked loosely here, strictly by the identity verifier. */
export const JwkSchema = z.looseObject({ kty: z.string(), kid: z.string().min(1).max(128) });

/** Live tap sessions at once, mesh-wide; our number (each costs every matching host a bucket check per call). */
export const DEFAULT_MAX_TAPS = 32;

/** One live `weft tap` session as the snapshot carries it (src/core/tap). */
export const TapSessionSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9-]{1,64}$/),
  service: NameSchema,
  to: NameSchema.optional(),
  route: NameSchema.optional(),
  method: z.string().regex(/^[A-Z]{1,16}$/).optional(),
  pathPrefix: z.string().startsWith("/").max(512).optional(),
  maxRps: z.number().int().min(1).max(10_000),
  expiresAt: z.iso.datetime(),
});

/** The whole config the data plane needs, versioned (SPEC.md section 3). */
export const SnapshotSchema = z.strictObject({
  version: z.number().int().min(0),
  services: z.array(ServiceSchema).max(10_000),
  routes: z.array(RouteSchema).max(10_000),
  policies: z.array(AuthorizationPolicySchema).max(10_000),
  jwks: z.looseObject({ keys: z.array(JwkSchema).max(64) }),
  // Egress (issue 16): absent in snapshots from before it.
  externalServices: z.array(ExternalServiceSchema).max(10_000).optional(),
  egress: z.strictObject({ mode: EgressModeSchema }).optional(),
  // Tap (issue 14): the live `weft tap` sessions, so data planes learn of them on the channel
  // they already follow; absent or empty when nobody taps.
  taps: z.array(TapSessionSchema).max(DEFAULT_MAX_TAPS).optional(),
  // Mutual TLS (docs/identity.md): the CA's trust anchors (PEM), old and new during a rotation.
  trustAnchors: z.array(z.string().max(16_384)).max(16).optional(),
  // Mesh-wide tracing (issue 13): the Tracing resource, absent until one is applied.
  tracing: MeshTracingSchema.optional(),
});

/** A resource document as `weft apply` and `POST /v1/apply` take it, with its `kind`. */
export const ResourceSchema = z.discriminatedUnion("kind", [
  ServiceSchema.extend({ kind: z.literal("Service") }),
  RouteSchema.extend({ kind: z.literal("Route") }),
  AuthorizationPolicySchema.extend({ kind: z.literal("AuthorizationPolicy") }),
  ExternalServiceSchema.extend({ kind: z.literal("ExternalService") }),
  MeshTracingSchema.safeExtend({ kind: z.literal("Tracing") }),
]);

export type Duration = z.infer<typeof DurationSchema>;
export type Endpoint = z.infer<typeof EndpointSchema>;
export type RetryOn = z.infer<typeof RetryOnSchema>;
export type Retry = z.infer<typeof RetrySchema>;
export type FailureAccrual = z.infer<typeof FailureAccrualSchema>;
export type RateLimit = z.infer<typeof RateLimitSchema>;
export type Service = z.infer<typeof ServiceSchema>;
export type RouteMatch = z.infer<typeof RouteMatchSchema>;
export type Filter = z.infer<typeof FilterSchema>;
export type RequestMirror = z.infer<typeof RequestMirrorSchema>;
export type FaultInjection = z.infer<typeof FaultInjectionSchema>;
export type Backend = z.infer<typeof BackendSchema>;
export type Route = z.infer<typeof RouteSchema>;
export type AuthorizationPolicy = z.infer<typeof AuthorizationPolicySchema>;
export type Snapshot = z.infer<typeof SnapshotSchema>;
export type ExternalService = z.infer<typeof ExternalServiceSchema>;
export type EgressMode = z.infer<typeof EgressModeSchema>;
export type MeshTracing = z.infer<typeof MeshTracingSchema>;
export type SamplerName = (typeof SAMPLER_NAMES)[number];
export type TapSessionConfig = z.infer<typeof TapSessionSchema>;
export type Resource = z.infer<typeof ResourceSchema>;
/** The kinds of resource users write. */
export type ResourceKind = Resource["kind"];
