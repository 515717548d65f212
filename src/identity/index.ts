/**
 * Workload identity for the mesh: an issuer of short-lived, audience-bound JWT-SVID-style
 * tokens with rotating keys, the trust bundle and verifier the data plane checks them with,
 * the token source a workload calls with, bootstrap credentials, and the two layers. The
 * certificate authority of the sidecars' mutual TLS is `./ca.ts`.
 */
export { DEFAULT_CLOCK_SKEW_MS, DEFAULT_PUBLISH_AHEAD_MS, DEFAULT_REFRESH_HINT_MS, DEFAULT_ROTATE_EVERY_MS, DEFAULT_TOKEN_LIFETIME_MS, MAX_TOKEN_LIFETIME_MS, RETAIN_AFTER_MS, createIssuer } from "./issuer.ts";
export type { Issuer, IssuerOptions, MintOptions, RotateOptions, TrustBundleDocument } from "./issuer.ts";
export { JWT_SVID_USE, SIGNING_ALG, generateSigningKey, memoryKeyStore, planRotation, signingKeyOf } from "./keys.ts";
export type { KeyRecord, KeyState, KeyStore, RotationPlan, RotationPolicy } from "./keys.ts";
export { DEFAULT_BUNDLE_COOLDOWN_MS, DEFAULT_BUNDLE_REFRESH_MS, JWT_SVID_ALGORITHMS, createTrustBundle } from "./trust-bundle.ts";
export type { BundleKey, TrustBundle, TrustBundleOptions, TrustBundleStatus } from "./trust-bundle.ts";
export { DEFAULT_ALGORITHMS, DEFAULT_VERIFIED_CACHE_SIZE, MAX_TOKEN_LENGTH, createVerifier } from "./verifier.ts";
export type { VerifiedToken, Verifier, VerifierOptions } from "./verifier.ts";
export { DEFAULT_RENEW_AT, DEFAULT_RENEW_RETRY_MS, createTokenSource } from "./token-source.ts";
export type { HeldToken, TokenSource, TokenSourceOptions } from "./token-source.ts";
export {
  DEFAULT_SERVICE_ACCOUNT_ALGORITHMS,
  createServiceAccountVerifier,
  generateBootstrapSecret,
  hashBootstrapSecret,
  verifyBootstrapSecret,
} from "./bootstrap.ts";
export type { ServiceAccountIdentity, ServiceAccountVerifier, ServiceAccountVerifierOptions } from "./bootstrap.ts";
export { DEFAULT_JWKS_TIMEOUT_MS, authenticateEndUser } from "./end-user.ts";
export type { EndUserOptions } from "./end-user.ts";
export { CLIENT_ID_HEADER, IDENTITY_HEADER, attachIdentity, requireIdentity } from "./layers.ts";
export type { AttachIdentityOptions, PolicyView, RequireIdentityOptions } from "./layers.ts";
export { MAX_SPIFFE_ID_BYTES, isTrustDomain, parseSpiffeId, serviceAccountId, workerId } from "./spiffe-id.ts";
export type { SpiffeId } from "./spiffe-id.ts";
// The certificate authority (`./ca.ts`) is imported from its own file, not from here: it
// loads @peculiar/x509, which the router worker and most of the sidecar's start do not need.
