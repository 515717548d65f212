/**
 * The credentials a workload exchanges for its first tokens (SPEC.md section 4): a Kubernetes
 * projected ServiceAccount token, verified against the cluster's OIDC JWKS, or, for router
 * workers, a per-workload bootstrap secret that the control plane keeps only as a hash.
 */
import { base64url, errors, jwtVerify } from "jose";
import { MeshError } from "../core/errors.ts";
import { DEFAULT_CLOCK_SKEW_MS } from "./issuer.ts";
import { serviceAccountId } from "./spiffe-id.ts";
import { createTrustBundle } from "./trust-bundle.ts";
import { MAX_TOKEN_LENGTH } from "./verifier.ts";

/**
 * Algorithms accepted on ServiceAccount tokens: RS256, which kube-apiserver signs with by
 * default, and ES256 for clusters given an EC service-account key.
 */
export const DEFAULT_SERVICE_ACCOUNT_ALGORITHMS: readonly string[] = ["RS256", "ES256"];

/** Options of `createServiceAccountVerifier`. */
export interface ServiceAccountVerifierOptions {
  /** The cluster's service-account issuer (`--service-account-issuer`), the tokens' `iss`. */
  issuer: string;
  /** The audience the projected token was requested for (e.g. `weft`). */
  audience: string;
  /** The trust domain the workload's SPIFFE ID is made in. */
  trustDomain: string;
  /** The cluster's OIDC JWKS, as a JWK Set or a function fetching it (refreshed like a bundle). */
  jwks: unknown;
  algorithms?: readonly string[];
  /** Allowance on `exp`/`nbf`, in ms; default 30 s. */
  skew?: number;
  /** Wall-clock epoch ms; `Date.now` unless a test fixes it. */
  now?: () => number;
}

/** A verified Kubernetes workload. */
export interface ServiceAccountIdentity {
  /** `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>` */
  id: string;
  namespace: string;
  serviceAccount: string;
}

/** Verifies Kubernetes projected ServiceAccount tokens. */
export interface ServiceAccountVerifier {
  /** The workload the token proves, or `MeshError("unauthenticated")`. */
  verify(token: string): Promise<ServiceAccountIdentity>;
}

const SUBJECT = /^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/;

/**
 * Creates a verifier of projected ServiceAccount tokens that maps
 * `system:serviceaccount:<ns>:<sa>` to `spiffe://<td>/ns/<ns>/sa/<sa>`. When the token carries
 * the `kubernetes.io` claim, its namespace and service account must agree with `sub`.
 */
export function createServiceAccountVerifier(options: ServiceAccountVerifierOptions): ServiceAccountVerifier {
  const now = options.now ?? Date.now;
  const algorithms = [...(options.algorithms ?? DEFAULT_SERVICE_ACCOUNT_ALGORITHMS)];
  const source = options.jwks;
  const keys = createTrustBundle({
    fetchJwks: typeof source === "function" ? (source as () => Promise<unknown>) : async () => source,
    use: "sig",
    algorithms,
    now,
  });
  return {
    async verify(token) {
      if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw fail("the ServiceAccount token is missing or too long");
      let payload;
      try {
        ({ payload } = await jwtVerify(
          token,
          async (header) => {
            if (typeof header.kid !== "string") throw fail("the ServiceAccount token names no key");
            const key = await keys.resolve(header.kid);
            if (!key || key.alg !== header.alg) throw fail("the ServiceAccount token's key is not in the cluster's JWKS");
            return key.key;
          },
          {
            algorithms,
            issuer: options.issuer,
            audience: options.audience,
            clockTolerance: (options.skew ?? DEFAULT_CLOCK_SKEW_MS) / 1000,
            currentDate: new Date(now()),
            requiredClaims: ["sub", "exp"],
          },
        ));
      } catch (error) {
        if (error instanceof MeshError) throw error;
        if (error instanceof errors.JWTExpired) throw fail("the ServiceAccount token has expired");
        if (error instanceof errors.JWTClaimValidationFailed) throw fail(`the ServiceAccount token's "${error.claim}" claim is not acceptable`);
        throw fail("the ServiceAccount token does not verify");
      }
      const match = typeof payload.sub === "string" ? SUBJECT.exec(payload.sub) : null;
      if (!match) throw fail("the ServiceAccount token's subject is not a service account");
      const namespace = match[1]!;
      const serviceAccount = match[3]!;
      const k8s = payload["kubernetes.io"] as { namespace?: unknown; serviceaccount?: { name?: unknown } } | undefined;
      if (k8s !== undefined && (k8s.namespace !== namespace || k8s.serviceaccount?.name !== serviceAccount)) {
        throw fail("the ServiceAccount token's kubernetes.io claim disagrees with its subject");
      }
      let id: string;
      try {
        id = serviceAccountId(options.trustDomain, namespace, serviceAccount);
      } catch {
        throw fail("the service account does not make a valid SPIFFE ID");
      }
      return { id, namespace, serviceAccount };
    },
  };
}

const HASH_PREFIX = "sha256:";

/** Makes a bootstrap secret: 32 random bytes, base64url. Give it to the worker; keep its hash. */
export function generateBootstrapSecret(): string {
  return base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
}

/**
 * The form in which the control plane stores a bootstrap secret: `sha256:<base64url>`. A plain
 * SHA-256 is enough because the secrets are 256 random bits, not passwords to be guessed.
 */
export async function hashBootstrapSecret(secret: string): Promise<string> {
  return HASH_PREFIX + base64url.encode(await digest(secret));
}

/**
 * True when `secret` hashes to `storedHash`. Compares the two digests in constant time, and
 * compares digests rather than secrets, so neither the content nor the length of the stored
 * secret shows in the timing.
 */
export async function verifyBootstrapSecret(secret: string, storedHash: string): Promise<boolean> {
  const actual = await digest(secret);
  let expected: Uint8Array = new Uint8Array(32);
  let wellFormed = false;
  if (storedHash.startsWith(HASH_PREFIX)) {
    try {
      const decoded = base64url.decode(storedHash.slice(HASH_PREFIX.length));
      if (decoded.length === 32) {
        expected = decoded;
        wellFormed = true;
      }
    } catch {
      // stays not well formed; still compare, so timing does not tell
    }
  }
  let difference = 0;
  for (let i = 0; i < 32; i++) difference |= actual[i]! ^ expected[i]!;
  return wellFormed && difference === 0 && typeof secret === "string" && secret.length > 0;
}

async function digest(secret: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(String(secret))));
}

function fail(message: string): MeshError {
  return new MeshError("unauthenticated", message);
}
