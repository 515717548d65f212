/**
 * The data plane's copy of a trust bundle (a JWK Set): verification keys by `kid`, imported
 * once, refreshed in the background, kept when the control plane is unreachable, and
 * refreshed at once, at most every 30 s, when a token names a `kid` it does not know.
 */
import type { JWK } from "jose";
import { importJWK } from "jose";
import { JWT_SVID_USE } from "./keys.ts";

/**
 * Refresh interval when the bundle gives no `spiffe_refresh_hint`: five minutes, the SPIFFE
 * bundle standard's suggestion (SPIFFE_Trust_Domain_and_Bundle.md).
 */
export const DEFAULT_BUNDLE_REFRESH_MS = 5 * 60_000;

/**
 * The least time between fetches forced by an unknown `kid` or a failed fetch: 30 s, jose's
 * `createRemoteJWKSet` `cooldownDuration`. An attacker sending made-up kids costs the control
 * plane at most one fetch per verifier per 30 s.
 */
export const DEFAULT_BUNDLE_COOLDOWN_MS = 30_000;

/** Bounds on a server's refresh hint, so a bad hint can neither hammer nor freeze refreshes. */
const MIN_REFRESH_MS = 10_000;
const MAX_REFRESH_MS = 24 * 60 * 60_000;

/** Every algorithm a JWT-SVID may use (JWT-SVID.md: RS, ES and PS only; never HS*, none, EdDSA). */
export const JWT_SVID_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"] as const;

/** One verification key of the bundle. */
export interface BundleKey {
  kid: string;
  alg: string;
  key: CryptoKey;
}

/** Options of `createTrustBundle`. */
export interface TrustBundleOptions {
  /** Fetches the JWK Set (`GET /.well-known/jwks.json`, or the snapshot's `jwks`). */
  fetchJwks: () => Promise<unknown>;
  /** Wall-clock epoch ms; `Date.now` unless a test fixes it. */
  now?: () => number;
  /**
   * Keys of which `use` to take: `jwt-svid` (the default, SPIFFE bundles) or `sig` (OIDC
   * JWKS such as a Kubernetes cluster's, where `use` may also be absent). Others are ignored.
   */
  use?: "jwt-svid" | "sig";
  /** Algorithms whose keys are imported; keys for others are ignored. Default: all JWT-SVID ones. */
  algorithms?: readonly string[];
  /** Refresh interval when the bundle has no hint. */
  refreshInterval?: number;
  /** The least time between forced fetches (unknown `kid`, after a failure). */
  cooldown?: number;
  /**
   * Receives each background refresh, so a Workers host can hand it to `ctx.waitUntil`.
   * Without it the refresh still runs; its failure is kept in `status().lastError`.
   */
  background?: (task: Promise<unknown>) => void;
}

/** How fresh the bundle is, for health checks and `weft identity`. */
export interface TrustBundleStatus {
  /** Epoch ms of the last successful fetch, or undefined before the first. */
  loadedAt: number | undefined;
  sequence: number | undefined;
  kids: string[];
  /** The last fetch's failure, without detail that could hold a secret. */
  lastError: string | undefined;
}

/**
 * Verification keys by `kid`. Per isolate (or process): one per trust domain, shared by every
 * request. Lookups are synchronous once loaded; each lookup of a stale bundle starts a refresh
 * in the background and answers from what it has.
 */
export interface TrustBundle {
  /** The key for `kid`, or undefined; never waits. */
  get(kid: string): BundleKey | undefined;
  /**
   * The key for `kid`, loading the bundle first if it never was, and refreshing it once when
   * `kid` is unknown and the last fetch is older than the cooldown.
   */
  resolve(kid: string): Promise<BundleKey | undefined>;
  /** Fetches now, ignoring the cooldown (hosts call it at start and on a config push). */
  refresh(): Promise<void>;
  /** Replaces the keys with those of `jwks` (a bundle that came with a config snapshot). */
  set(jwks: unknown): Promise<void>;
  status(): TrustBundleStatus;
}

/** Creates a trust bundle that fetches with `options.fetchJwks`. Nothing is fetched until first use. */
export function createTrustBundle(options: TrustBundleOptions): TrustBundle {
  const now = options.now ?? Date.now;
  const use = options.use ?? JWT_SVID_USE;
  const algorithms = new Set(options.algorithms ?? JWT_SVID_ALGORITHMS);
  const cooldown = options.cooldown ?? DEFAULT_BUNDLE_COOLDOWN_MS;
  let keys = new Map<string, BundleKey & { canonical: string }>();
  let loadedAt: number | undefined;
  let sequence: number | undefined;
  let lastError: string | undefined;
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let nextRefreshAt = Number.NEGATIVE_INFINITY;
  let inFlight: Promise<void> | undefined;

  async function install(document: unknown): Promise<void> {
    if (typeof document !== "object" || document === null || !Array.isArray((document as { keys?: unknown }).keys)) {
      throw new TypeError("the trust bundle is not a JWK Set");
    }
    const doc = document as { keys: unknown[]; spiffe_sequence?: unknown; spiffe_refresh_hint?: unknown };
    const next = new Map<string, BundleKey & { canonical: string }>();
    for (const entry of doc.keys) {
      const imported = await importKey(entry);
      if (imported && !next.has(imported.kid)) next.set(imported.kid, imported);
    }
    keys = next;
    loadedAt = now();
    sequence = typeof doc.spiffe_sequence === "number" ? doc.spiffe_sequence : undefined;
    lastError = undefined;
    const hint = typeof doc.spiffe_refresh_hint === "number" && doc.spiffe_refresh_hint > 0 ? doc.spiffe_refresh_hint * 1000 : undefined;
    const interval = Math.min(MAX_REFRESH_MS, Math.max(MIN_REFRESH_MS, hint ?? options.refreshInterval ?? DEFAULT_BUNDLE_REFRESH_MS));
    nextRefreshAt = loadedAt + interval;
  }

  async function importKey(entry: unknown): Promise<(BundleKey & { canonical: string }) | undefined> {
    if (typeof entry !== "object" || entry === null) return undefined;
    const jwk = entry as JWK;
    if (use === JWT_SVID_USE ? jwk.use !== JWT_SVID_USE : jwk.use !== undefined && jwk.use !== "sig") return undefined;
    if (typeof jwk.kid !== "string" || jwk.kid === "") return undefined;
    if ("d" in jwk || "k" in jwk) return undefined; // a private or symmetric key has no place in a bundle
    const alg = typeof jwk.alg === "string" ? jwk.alg : inferAlg(jwk);
    if (alg === undefined || !algorithms.has(alg)) return undefined;
    const publicJwk: JWK = { kty: jwk.kty };
    for (const member of ["crv", "x", "y", "n", "e"] as const) if (jwk[member] !== undefined) publicJwk[member] = jwk[member];
    const canonical = `${alg} ${JSON.stringify(publicJwk)}`;
    const known = keys.get(jwk.kid);
    if (known && known.canonical === canonical) return known;
    try {
      const key = await importJWK(publicJwk, alg);
      if (!(key instanceof CryptoKey) || key.type !== "public") return undefined;
      return { kid: jwk.kid, alg, key, canonical };
    } catch {
      return undefined;
    }
  }

  function fetchNow(): Promise<void> {
    if (inFlight) return inFlight;
    lastAttemptAt = now();
    inFlight = (async () => {
      try {
        await install(await options.fetchJwks());
      } catch (error) {
        // Static stability: keep every key we have, and try again after the cooldown.
        lastError = error instanceof Error ? error.name : "fetch failed";
        nextRefreshAt = now() + cooldown;
        throw error;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  }

  function refreshIfStale(): void {
    if (inFlight || loadedAt === undefined || now() < nextRefreshAt) return;
    const task = fetchNow().catch(() => {});
    options.background?.(task);
  }

  return {
    get(kid) {
      refreshIfStale();
      return keys.get(kid);
    },

    async resolve(kid) {
      refreshIfStale();
      const known = keys.get(kid);
      if (known) return known;
      if (inFlight || now() - lastAttemptAt >= cooldown) await fetchNow().catch(() => {});
      return keys.get(kid);
    },

    refresh: fetchNow,

    set: install,

    status: () => ({ loadedAt, sequence, kids: [...keys.keys()], lastError }),
  };
}

/** The algorithm of a key that does not say: from the curve for EC, RS256 for RSA (RFC 7518's usual). */
function inferAlg(jwk: JWK): string | undefined {
  if (jwk.kty === "EC") return jwk.crv === "P-256" ? "ES256" : jwk.crv === "P-384" ? "ES384" : jwk.crv === "P-521" ? "ES512" : undefined;
  if (jwk.kty === "RSA") return "RS256";
  return undefined;
}
