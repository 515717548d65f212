/**
 * End-user authentication, Istio's RequestAuthentication: verifies the JWT an end user's
 * client sends (an issuer Weft does not run: an OIDC provider, an API gateway), with keys from
 * the issuer's JWKS, and hands the verified claims to authorization and, as headers the
 * config names, to the app.
 */
import type { JWTPayload, JWTVerifyGetKey } from "jose";
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors, jwtVerify } from "jose";
import type { EndUser } from "../core/authz/index.ts";
import { durationMs, type JwtRule, type RequestAuthentication } from "../core/config/index.ts";
import { MeshError } from "../core/errors.ts";
import { withHeaders, withMeta, type Layer, type MeshHeaders, type MeshRequest } from "../core/fetch.ts";
import { MAX_TOKEN_LENGTH } from "./verifier.ts";

/** Where a token is looked for when a rule names no location: `Authorization: Bearer <token>` (RFC 6750 section 2.1). */
const DEFAULT_LOCATION = { name: "authorization", prefix: "Bearer " };

/**
 * How long a JWKS fetch may take, ms: jose's `timeoutDuration` default (5 s). A call that
 * waits on it is answered 401 when it runs out, as Envoy's jwt_authn answers when the remote
 * JWKS cannot be fetched.
 */
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;

/**
 * Remote key sets, per isolate or process, by URL and cache settings: shared by every rule
 * and every rebuild of the stacks, so a config update does not refetch a JWKS. Bounded
 * because URLs come from config.
 */
const remoteSets = new Map<string, JWTVerifyGetKey>();
const MAX_REMOTE_SETS = 256;

function keySetOf(rule: JwtRule, fetchTimeout: number): JWTVerifyGetKey {
  if (rule.jwks !== undefined) return createLocalJWKSet(rule.jwks as Parameters<typeof createLocalJWKSet>[0]);
  const key = JSON.stringify([rule.jwksUri, rule.jwksCacheMaxAge, rule.jwksCooldown, fetchTimeout]);
  let set = remoteSets.get(key);
  if (set === undefined) {
    set = createRemoteJWKSet(new URL(rule.jwksUri!), {
      cacheMaxAge: durationMs(rule.jwksCacheMaxAge),
      cooldownDuration: durationMs(rule.jwksCooldown),
      timeoutDuration: fetchTimeout,
    });
    if (remoteSets.size >= MAX_REMOTE_SETS) remoteSets.clear();
    remoteSets.set(key, set);
  }
  return set;
}

/**
 * Verified tokens kept per layer: 4096, as the workload verifier keeps
 * (`DEFAULT_VERIFIED_CACHE_SIZE`), so a client's repeated token costs a map lookup instead of
 * a signature check (`npm run bench:router`, `mesh+auth`).
 */
export const DEFAULT_END_USER_CACHE_SIZE = 4096;

/**
 * The longest a verified token is trusted without checking its signature again: 5 minutes,
 * so a key the issuer withdraws stops being honoured within that, as well as by `exp`.
 */
export const END_USER_CACHE_TTL_MS = 300_000;

/** Options of `authenticateEndUser`. */
export interface EndUserOptions {
  /** The service's `requestAuthentication`. */
  config: RequestAuthentication;
  /** The service's name: the `realm` of `www-authenticate` challenges. */
  service: string;
  /** Wall-clock epoch ms for `exp` and `nbf` (tokens carry wall-clock times); `Date.now` by default. */
  now?: () => number;
  /** How long a JWKS fetch may take, ms (`DEFAULT_JWKS_TIMEOUT_MS`). */
  jwksTimeout?: number;
  /** Verified tokens kept (`DEFAULT_END_USER_CACHE_SIZE`); 0 turns the cache off. */
  cacheSize?: number;
}

interface CompiledRule {
  rule: JwtRule;
  keys: JWTVerifyGetKey;
  headers: { name: string; prefix: string }[];
  cookies: string[];
}

/** RFC 6750 section 3: a challenge, with an error code and a description free of the token. */
const challenge = (realm: string, error?: { code: string; description: string }) =>
  error === undefined ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="${error.code}", error_description="${error.description}"`;

/** The value of cookie `name` in a `cookie` header, or undefined. */
function cookieOf(header: string | null, name: string): string | undefined {
  if (header === null) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The `cookie` header without cookie `name`; removed when nothing is left. */
function dropCookie(headers: MeshHeaders, name: string): void {
  const header = headers.get("cookie");
  if (header === null) return;
  const kept = header.split(";").filter((part) => {
    const eq = part.indexOf("=");
    return !(eq > 0 && part.slice(0, eq).trim() === name);
  });
  if (kept.length === 0) headers.delete("cookie");
  else headers.set("cookie", kept.map((part) => part.trim()).join("; "));
}

/** What a jose failure means to the caller, in words that hold no part of the token. */
function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "the token has expired";
  if (error instanceof errors.JWTClaimValidationFailed) return `the token's ${error.claim} claim is not accepted`;
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token's signing algorithm is not accepted";
  if (error instanceof errors.JWKSNoMatchingKey) return "no key of the issuer matches the token";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) return "the issuer's keys could not be fetched";
  if (error instanceof errors.JOSENotSupported) return "the token's algorithm or key type is not supported";
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return "the token is malformed";
  return "the token could not be verified";
}

/**
 * A claim's value as one header value: a string of printable ASCII as it is, anything else
 * as JSON with every character outside printable ASCII escaped (`\u00e9`), so no claim can
 * break a header line or make a value the host's `Headers` refuses.
 */
const headerValue = (value: unknown) => {
  if (typeof value === "string" && /^[\x20-\x7e]*$/.test(value)) return value;
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
};

/**
 * Inbound, outermost (before workload identity and authorization): end-user authentication.
 *
 * Every request first loses the headers `outputClaimToHeaders` names, so a client cannot
 * pose as a verified user. Then the token is looked for where the rules say (by default
 * `Authorization: Bearer`). No token: the call goes on unauthenticated, and policy decides
 * (an ALLOW that names end-user conditions answers 401 with a bare `Bearer` challenge). A
 * token: its `iss` picks the rule, and jose verifies it against the issuer's keys with the
 * rule's algorithms, audiences and clock skew; `exp` and `sub` are required. A token that
 * does not verify is 401 `unauthenticated` with `www-authenticate: Bearer ...,
 * error="invalid_token"` (RFC 6750 section 3.1), whatever the policy. A verified token puts
 * the end user in the request's metadata (`endUser`) for authorization, its claims into the
 * configured headers, and is removed unless `forwardOriginalToken`.
 */
export function authenticateEndUser(options: EndUserOptions): Layer {
  const now = options.now ?? Date.now;
  const realm = options.service;
  const timeout = options.jwksTimeout ?? DEFAULT_JWKS_TIMEOUT_MS;
  const rules: CompiledRule[] = options.config.jwtRules.map((rule) => {
    const named = rule.fromHeaders !== undefined || rule.fromCookies !== undefined;
    return {
      rule,
      keys: keySetOf(rule, timeout),
      headers: named ? (rule.fromHeaders ?? []).map((h) => ({ name: h.name.toLowerCase(), prefix: h.prefix ?? "" })) : [DEFAULT_LOCATION],
      cookies: rule.fromCookies ?? [],
    };
  });
  const outputHeaders = [...new Set(options.config.jwtRules.flatMap((rule) => (rule.outputClaimToHeaders ?? []).map((o) => o.header.toLowerCase())))];
  const invalid = (description: string) => new MeshError("unauthenticated", `the end-user token is not valid: ${description}`, { challenge: challenge(realm, { code: "invalid_token", description }) });

  /** The token and where it was, from the first rule location that holds one. */
  const find = (request: MeshRequest): { token: string; header?: string; cookie?: string } | undefined => {
    for (const { headers, cookies } of rules) {
      for (const { name, prefix } of headers) {
        const value = request.headers.get(name);
        if (value === null) continue;
        // The scheme is case-insensitive (RFC 9110 section 11.1); the token is what follows it.
        // A scheme with nothing after it (`Bearer`, its space trimmed by the host) is an empty token.
        if (prefix !== "" && value.trim().toLowerCase() === prefix.trim().toLowerCase()) return { token: "", header: name };
        if (prefix !== "" && value.slice(0, prefix.length).toLowerCase() !== prefix.toLowerCase()) continue;
        return { token: value.slice(prefix.length).trim(), header: name };
      }
      for (const cookie of cookies) {
        const value = cookieOf(request.headers.get("cookie"), cookie);
        if (value !== undefined) return { token: value, cookie };
      }
    }
    return undefined;
  };

  // Verified tokens, per layer (so per isolate or process and config): the rule and payload,
  // and until when the entry may be used (`exp` with the rule's skew, at most the TTL).
  const cacheSize = options.cacheSize ?? DEFAULT_END_USER_CACHE_SIZE;
  const verified = new Map<string, { rule: JwtRule; payload: JWTPayload; until: number }>();

  /** Verifies `token` against the rule its `iss` names; throws `invalid` answers. */
  const verify = async (token: string): Promise<{ rule: JwtRule; payload: JWTPayload }> => {
    const at = now();
    const hit = verified.get(token);
    if (hit !== undefined && at < hit.until) return hit;
    if (hit !== undefined) verified.delete(token);
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw invalid("the token is malformed");
    }
    const compiled = rules.find((r) => r.rule.issuer === unverified.iss);
    if (compiled === undefined) throw invalid("the token's issuer is not accepted");
    const { rule } = compiled;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, compiled.keys, {
        issuer: rule.issuer,
        ...(rule.audiences !== undefined && { audience: rule.audiences }),
        algorithms: rule.algorithms,
        clockTolerance: durationMs(rule.clockSkew) / 1000,
        currentDate: new Date(at),
        requiredClaims: ["exp", "sub"],
      }));
    } catch (error) {
      throw invalid(describe(error));
    }
    if (cacheSize > 0) {
      if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!);
      verified.set(token, { rule, payload, until: Math.min((payload.exp ?? 0) * 1000 + durationMs(rule.clockSkew), at + END_USER_CACHE_TTL_MS) });
    }
    return { rule, payload };
  };

  return (next) => async (request) => {
    const owned = withHeaders(request, (headers) => {
      for (const name of outputHeaders) headers.delete(name);
    });
    const found = find(owned);
    if (found === undefined) {
      try {
        return await next(owned);
      } catch (error) {
        // A policy that wanted an end user: tell the client how to authenticate (RFC 6750 section 3).
        if (error instanceof MeshError && error.code === "unauthenticated" && error.challenge === undefined) {
          throw new MeshError("unauthenticated", error.message, { cause: error.cause, challenge: challenge(realm) });
        }
        throw error;
      }
    }
    const { token } = found;
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw invalid("the token is empty or too long");
    const { rule, payload } = await verify(token);
    const audiences = payload.aud === undefined ? [] : Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const endUser: EndUser = { issuer: rule.issuer, subject: String(payload.sub), audiences, claims: payload };
    withMeta(owned, { endUser });
    const headers = owned.headers;
    for (const { header, claim } of rule.outputClaimToHeaders ?? []) {
      const value = claim === "sub" || claim === "iss" ? payload[claim] : lookup(payload, claim);
      if (value !== undefined && value !== null) headers.set(header, headerValue(value));
    }
    if (!rule.forwardOriginalToken) {
      if (found.header !== undefined) headers.delete(found.header);
      if (found.cookie !== undefined) dropCookie(headers, found.cookie);
    }
    return next(owned);
  };
}

/** The claim at `name` (a dotted path for a nested one), or undefined. */
function lookup(payload: JWTPayload, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let value: unknown = payload;
  for (const part of name.split(".")) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
