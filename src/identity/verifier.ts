/**
 * Token verification for one service: jose's `jwtVerify` over the trust bundle with an
 * algorithm allow-list, then the JWT-SVID rules jose does not know, and a bounded cache of
 * verified tokens so a caller's repeated token costs a map lookup instead of an ECDSA verify.
 */
import type { JWTHeaderParameters, JWTPayload } from "jose";
import { errors, jwtVerify } from "jose";
import { MeshError } from "../core/errors.ts";
import { DEFAULT_CLOCK_SKEW_MS, MAX_TOKEN_LIFETIME_MS } from "./issuer.ts";
import { parseSpiffeId } from "./spiffe-id.ts";
import type { BundleKey, TrustBundle } from "./trust-bundle.ts";
import { JWT_SVID_ALGORITHMS } from "./trust-bundle.ts";

/** The algorithms accepted unless configured otherwise: ES256 only (SPEC.md section 4). */
export const DEFAULT_ALGORITHMS: readonly string[] = ["ES256"];

/**
 * Verified tokens kept per verifier: 4096. A caller holds one live token per audience and
 * renews it every 10 minutes, so this covers a few thousand callers of one service; past
 * that the oldest entries go, and their next use costs one ECDSA verify.
 */
export const DEFAULT_VERIFIED_CACHE_SIZE = 4096;

/**
 * The longest token read, in characters: 8 KiB. Weft's are under 600; a Kubernetes
 * ServiceAccount token is 1 to 2 KiB. Anything longer is refused before it is parsed.
 */
export const MAX_TOKEN_LENGTH = 8192;

/** The only JOSE header members a JWT-SVID may carry (JWT-SVID.md: others MUST NOT be present). */
const ALLOWED_HEADER = new Set(["alg", "kid", "typ"]);

/** What a verified token says. Times are epoch ms. The object is frozen and may be shared. */
export interface VerifiedToken {
  /** The caller's SPIFFE ID (`sub`). */
  readonly id: string;
  readonly audience: string;
  readonly issuer: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly kid: string;
  readonly jti: string | undefined;
}

/** Options of `createVerifier`. */
export interface VerifierOptions {
  bundle: TrustBundle;
  /** The expected `iss`: the control plane's URL. */
  issuer: string;
  /** This service's name, which `aud` must be exactly. */
  audience: string;
  /** The trust domain `sub` must belong to. */
  trustDomain: string;
  /** Accepted `alg` values; default ES256 only. HS*, `none` and EdDSA are refused at creation. */
  algorithms?: readonly string[];
  /** Allowance on `exp`, `nbf` and `iat`, in ms; default 30 s. */
  skew?: number;
  /** The longest `exp - iat` accepted, in ms; default 1 hour. */
  maxLifetime?: number;
  /** Verified tokens kept; 0 turns the cache off. */
  cacheSize?: number;
  /** Wall-clock epoch ms; `Date.now` unless a test fixes it. */
  now?: () => number;
}

/** Verifies tokens addressed to one service. */
export interface Verifier {
  /** The token's claims, or a `MeshError("unauthenticated")` saying (without the token) why not. */
  verify(token: string): Promise<VerifiedToken>;
}

interface CacheEntry {
  result: VerifiedToken;
  key: CryptoKey;
  /** Epoch ms from which the entry is no good: `exp` plus the skew, as jose counts it. */
  until: number;
}

/**
 * Creates a verifier. Its cache (per isolate or process) is keyed by the token itself: the
 * engine hashes the string for the map, and a hit compares it in full, so no other token can
 * collide with a verified one. An entry is used only while its token is unexpired and its
 * key is still the bundle's key for that `kid`, so a key dropped from the bundle stops its
 * cached tokens as well.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const now = options.now ?? Date.now;
  const algorithms = [...(options.algorithms ?? DEFAULT_ALGORITHMS)];
  for (const alg of algorithms) {
    if (!(JWT_SVID_ALGORITHMS as readonly string[]).includes(alg)) throw new TypeError(`algorithm ${alg} is not allowed for JWT-SVIDs`);
  }
  const skew = options.skew ?? DEFAULT_CLOCK_SKEW_MS;
  const maxLifetime = options.maxLifetime ?? MAX_TOKEN_LIFETIME_MS;
  const cacheSize = options.cacheSize ?? DEFAULT_VERIFIED_CACHE_SIZE;
  const cache = new Map<string, CacheEntry>();
  const { bundle, audience, issuer, trustDomain } = options;

  async function cold(token: string): Promise<VerifiedToken> {
    if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw fail("the identity token is missing or too long");
    let used: BundleKey | undefined;
    let payload: JWTPayload;
    let header: JWTHeaderParameters;
    const at = now();
    try {
      ({ payload, protectedHeader: header } = await jwtVerify(
        token,
        async (protectedHeader) => {
          for (const name of Object.keys(protectedHeader)) if (!ALLOWED_HEADER.has(name)) throw fail(`the token's header may not carry "${name}"`);
          const { typ, kid, alg } = protectedHeader;
          if (typ !== undefined && typ !== "JWT" && typ !== "JOSE") throw fail("the token's typ is not JWT");
          if (typeof kid !== "string" || kid === "") throw fail("the token names no signing key (kid)");
          used = await bundle.resolve(kid);
          if (!used) throw fail("the token's signing key is not in the trust bundle");
          if (used.alg !== alg) throw fail("the token's algorithm does not match its key");
          return used.key;
        },
        {
          algorithms,
          issuer,
          audience,
          clockTolerance: skew / 1000,
          currentDate: new Date(at),
          requiredClaims: ["sub", "aud", "iss", "exp", "iat"],
        },
      ));
    } catch (error) {
      throw error instanceof MeshError ? error : fail(reasonOf(error));
    }
    const aud = Array.isArray(payload.aud) ? (payload.aud.length === 1 ? payload.aud[0] : undefined) : payload.aud;
    if (aud !== audience) throw fail("the token must name exactly one audience");
    const iat = payload.iat!;
    const exp = payload.exp!;
    if (iat * 1000 > at + skew) throw fail("the token was issued in the future");
    if ((exp - iat) * 1000 > maxLifetime) throw fail("the token's lifetime is longer than allowed");
    const id = parseSpiffeId(payload.sub);
    if (!id) throw fail("the token's subject is not a SPIFFE ID");
    if (id.trustDomain !== trustDomain) throw fail("the token's subject is in another trust domain");
    if (payload.jti !== undefined && typeof payload.jti !== "string") throw fail("the token's jti is not a string");
    const result: VerifiedToken = Object.freeze({
      id: payload.sub!,
      audience,
      issuer,
      issuedAt: iat * 1000,
      expiresAt: exp * 1000,
      kid: header.kid!,
      jti: payload.jti,
    });
    if (cacheSize > 0) {
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
      cache.set(token, { result, key: used!.key, until: exp * 1000 + skew });
    }
    return result;
  }

  return {
    verify(token) {
      const hit = cache.get(token);
      if (hit) {
        if (now() < hit.until && bundle.get(hit.result.kid)?.key === hit.key) return Promise.resolve(hit.result);
        cache.delete(token);
      }
      return cold(token);
    },
  };
}

function fail(message: string): MeshError {
  return new MeshError("unauthenticated", message);
}

/** A reason for a jose failure, naming the claim at fault but never its value or the token. */
function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "the token has expired";
  if (error instanceof errors.JWTClaimValidationFailed) return `the token's "${error.claim}" claim is not acceptable (${error.reason})`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token's algorithm is not allowed";
  if (error instanceof errors.JOSEError) return "the token is malformed";
  return "the token cannot be verified";
}
