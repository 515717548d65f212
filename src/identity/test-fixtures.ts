/**
 * Fixtures for this folder's tests only (not exported from `index.ts`): a small identity
 * plane (issuer, bundle, verifier) on a clock the test controls, and hand-made tokens.
 */
import { SignJWT, base64url } from "jose";
import type { Issuer } from "./issuer.ts";
import { createIssuer } from "./issuer.ts";
import type { KeyStore } from "./keys.ts";
import { memoryKeyStore } from "./keys.ts";
import type { TrustBundle } from "./trust-bundle.ts";
import { createTrustBundle } from "./trust-bundle.ts";
import type { Verifier, VerifierOptions } from "./verifier.ts";
import { createVerifier } from "./verifier.ts";

/** A fixed wall-clock start for tests: 2026-11-27T12:00:00Z. */
export const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);
/** The trust domain of every test issuer and verifier. */
export const TRUST_DOMAIN = "weft.local";
/** The tests' issuer URL (`iss`): the local control plane's default address. */
export const ISSUER = "http://127.0.0.1:8788";
/** A caller's SPIFFE ID. */
export const WEB = "spiffe://weft.local/ns/shop/sa/web";
/** Another caller's SPIFFE ID. */
export const BATCH = "spiffe://weft.local/ns/jobs/sa/batch";

/** An issuer, a bundle fetching from it, and a verifier for `orders`, all on `now`. */
export interface Plane {
  issuer: Issuer;
  store: KeyStore;
  bundle: TrustBundle;
  verifier: Verifier;
  /** How many times the bundle fetched. */
  fetches(): number;
  /** Makes the bundle's fetches fail (control plane down) or succeed again. */
  setDown(down: boolean): void;
  /** Background refreshes started so far, to await. */
  background: Promise<unknown>[];
}

/** Builds a `Plane` on `now`; `verifier` options override the defaults. */
export function createPlane(now: () => number, verifier: Partial<VerifierOptions> = {}, store: KeyStore = memoryKeyStore()): Plane {
  const issuer = createIssuer({ issuer: ISSUER, trustDomain: TRUST_DOMAIN, keys: store, now });
  let fetches = 0;
  let down = false;
  const background: Promise<unknown>[] = [];
  const bundle = createTrustBundle({
    now,
    fetchJwks: async () => {
      fetches++;
      if (down) throw new TypeError("fetch failed");
      return issuer.jwks();
    },
    background: (task) => background.push(task),
  });
  return {
    issuer,
    store,
    bundle,
    verifier: createVerifier({ bundle, issuer: ISSUER, audience: "orders", trustDomain: TRUST_DOMAIN, now, ...verifier }),
    fetches: () => fetches,
    setDown: (value) => {
      down = value;
    },
    background,
  };
}

/** Base64url of the JSON of `value`. */
export function b64json(value: unknown): string {
  return base64url.encode(JSON.stringify(value));
}

/** A token with the given header and claims and a signature of junk bytes. */
export function unsigned(header: object, claims: object, signature = "AAAA"): string {
  return `${b64json(header)}.${b64json(claims)}.${signature}`;
}

/** Standard claims for `sub` calling `aud` at epoch ms `at`, overridden by `extra`. */
export function claimsAt(at: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = Math.floor(at / 1000);
  return { sub: WEB, aud: "orders", iss: ISSUER, iat, exp: iat + 900, jti: "j1", ...extra };
}

/** Signs `claims` with `key` under `header` using jose (for tokens the issuer would not make). */
export function signWith(key: CryptoKey, header: { alg: string; kid?: string; [name: string]: unknown }, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}
