/**
 * The issuer: mints JWT-SVID-style tokens with the current signing key and publishes the
 * trust bundle, rotating keys on a schedule and on demand (SPEC.md section 4). The control
 * worker runs it over Durable Object storage; nothing here knows about storage but `KeyStore`.
 */
import type { JWK } from "jose";
import { SignJWT, importJWK } from "jose";
import type { KeyRecord, KeyState, KeyStore, RotationPlan, RotationPolicy } from "./keys.ts";
import { JWT_SVID_USE, SIGNING_ALG, generateSigningKey, planRotation, signingKeyOf } from "./keys.ts";
import { parseSpiffeId } from "./spiffe-id.ts";

/** Default token lifetime: 15 minutes (SPEC.md section 4). */
export const DEFAULT_TOKEN_LIFETIME_MS = 15 * 60_000;

/** The longest lifetime a token may have: 1 hour (SPEC.md section 4). Key retention relies on it. */
export const MAX_TOKEN_LIFETIME_MS = 60 * 60_000;

/** The clock skew verifiers allow on `exp`, `nbf` and `iat`: 30 seconds (SPEC.md section 4). */
export const DEFAULT_CLOCK_SKEW_MS = 30_000;

/**
 * How long each signing key signs: a day. Linkerd reissues every proxy certificate within 24 h
 * (`issuanceLifetime: 24h0m0s`, linkerd.md); a token-signing key needs no shorter life.
 */
export const DEFAULT_ROTATE_EVERY_MS = 24 * 60 * 60_000;

/**
 * How long before it signs a new key is in the bundle: an hour, twelve times the verifiers'
 * five-minute refresh hint, so a verifier that misses a few refreshes still has it in time.
 */
export const DEFAULT_PUBLISH_AHEAD_MS = 60 * 60_000;

/**
 * The refresh hint the bundle carries (`spiffe_refresh_hint`): five minutes, the interval the
 * SPIFFE bundle standard suggests when none is given (SPIFFE_Trust_Domain_and_Bundle.md).
 */
export const DEFAULT_REFRESH_HINT_MS = 5 * 60_000;

/**
 * How long a key stays published after it stops signing: the longest token lifetime plus the
 * verifiers' skew twice over (once for their leeway on `exp`, once for their clock being
 * behind ours), so no token it signed is ever refused for want of its key.
 */
export const RETAIN_AFTER_MS = MAX_TOKEN_LIFETIME_MS + 2 * DEFAULT_CLOCK_SKEW_MS;

/** A trust bundle document: an RFC 7517 JWK Set with the SPIFFE bundle members. */
export interface TrustBundleDocument {
  keys: JWK[];
  /** Monotonic, bumped on each change of the key set (SPIFFE bundle `spiffe_sequence`). */
  spiffe_sequence?: number;
  /** Seconds between refreshes the consumers should use (SPIFFE bundle `spiffe_refresh_hint`). */
  spiffe_refresh_hint?: number;
}

/** Options of `createIssuer`. Times are epoch milliseconds. */
export interface IssuerOptions {
  /** The issuer's URL, the tokens' `iss` (the control plane's URL, SPEC.md section 4). */
  issuer: string;
  /** The only trust domain it issues IDs in. */
  trustDomain: string;
  keys: KeyStore;
  /** Wall-clock epoch ms; `Date.now` unless a test fixes it. */
  now?: () => number;
  /** Default lifetime of minted tokens; at most `MAX_TOKEN_LIFETIME_MS`. */
  lifetime?: number;
  rotateEvery?: number;
  publishAhead?: number;
  refreshHint?: number;
}

/** What `mint` may override per token. */
export interface MintOptions {
  /** Lifetime in ms, at most `MAX_TOKEN_LIFETIME_MS`. */
  lifetime?: number;
}

/** Options of an on-demand rotation. */
export interface RotateOptions {
  /**
   * Sign with the new key at once instead of after `publishAhead` (for a compromised key).
   * Verifiers learn the new key through their refresh on an unknown `kid`.
   */
  immediately?: boolean;
  /**
   * Drop every other key from the bundle now, invalidating every token they signed (implies
   * `immediately`): for a leaked key.
   */
  revokePrevious?: boolean;
}

/** The issuer a control plane runs. Each method rotates first if rotation is due. */
export interface Issuer {
  /** Mints a token for `subject` (a SPIFFE ID in the trust domain) to call `audience`. */
  mint(subject: string, audience: string, options?: MintOptions): Promise<string>;
  /** The trust bundle to serve at `/.well-known/jwks.json`: public keys only. */
  jwks(): Promise<TrustBundleDocument>;
  /** Starts a rotation now; a key already waiting to sign is kept unless `immediately`. */
  rotate(options?: RotateOptions): Promise<KeyState>;
  /** Applies whatever rotation is due and says when next to look (for a host's alarm). */
  maintain(): Promise<{ nextCheckAt: number }>;
}

/**
 * Creates an issuer over `options.keys`. It holds the state in memory after the first read
 * and writes every change back, so one issuer instance owns one store. Rotation runs on a
 * schedule lazily (on the first call after it is due) and when a host calls `maintain()`.
 */
export function createIssuer(options: IssuerOptions): Issuer {
  const now = options.now ?? Date.now;
  const lifetime = options.lifetime ?? DEFAULT_TOKEN_LIFETIME_MS;
  checkLifetime(lifetime);
  const policy: RotationPolicy = {
    rotateEvery: options.rotateEvery ?? DEFAULT_ROTATE_EVERY_MS,
    publishAhead: options.publishAhead ?? DEFAULT_PUBLISH_AHEAD_MS,
    retainAfter: RETAIN_AFTER_MS,
  };
  if (policy.publishAhead >= policy.rotateEvery) throw new RangeError("publishAhead must be shorter than rotateEvery");
  const refreshHintSeconds = Math.ceil((options.refreshHint ?? DEFAULT_REFRESH_HINT_MS) / 1000);
  let state: KeyState | undefined;
  let nextCheckAt = Number.NEGATIVE_INFINITY;
  const signingKeys = new Map<string, Promise<CryptoKey>>();
  // Every read-modify-write of the state runs in this queue, one at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const result = queue.then(task);
    queue = result.catch(() => {});
    return result;
  };

  async function load(): Promise<KeyState> {
    state ??= (await options.keys.get()) ?? { sequence: 0, keys: [] };
    return state;
  }

  async function apply(current: KeyState, plan: RotationPlan, extra: KeyRecord[] = [], revokeAllBut?: string): Promise<KeyState> {
    const at = now();
    let keys = current.keys.filter((key) => !plan.drop.includes(key.kid));
    if (plan.addActiveFrom !== undefined) keys.push(await generateSigningKey(at, plan.addActiveFrom));
    keys.push(...extra);
    if (revokeAllBut !== undefined) keys = keys.filter((key) => key.kid === revokeAllBut);
    keys.sort((a, b) => a.activeFrom - b.activeFrom);
    const next: KeyState = { sequence: current.sequence + 1, keys };
    await options.keys.put(next);
    for (const kid of signingKeys.keys()) if (!keys.some((key) => key.kid === kid)) signingKeys.delete(kid);
    state = next;
    return next;
  }

  async function maintainNow(): Promise<KeyState> {
    const current = await load();
    const at = now();
    if (at < nextCheckAt) return current;
    const plan = planRotation(current, at, policy);
    const next = plan.drop.length > 0 || plan.addActiveFrom !== undefined ? await apply(current, plan) : current;
    nextCheckAt = planRotation(next, at, policy).nextCheckAt;
    return next;
  }

  const ready = (): Promise<KeyState> => (state !== undefined && now() < nextCheckAt ? Promise.resolve(state) : serial(maintainNow));

  function signingKey(record: KeyRecord): Promise<CryptoKey> {
    let key = signingKeys.get(record.kid);
    if (!key) {
      key = importJWK(record.privateJwk, SIGNING_ALG) as Promise<CryptoKey>;
      signingKeys.set(record.kid, key);
    }
    return key;
  }

  return {
    async mint(subject, audience, mintOptions = {}) {
      const id = parseSpiffeId(subject);
      if (!id || id.trustDomain !== options.trustDomain) throw new TypeError(`not a SPIFFE ID in trust domain ${options.trustDomain}`);
      if (typeof audience !== "string" || audience === "") throw new TypeError("a token needs exactly one audience");
      const tokenLifetime = mintOptions.lifetime ?? lifetime;
      checkLifetime(tokenLifetime);
      const current = await ready();
      const at = now();
      const record = signingKeyOf(current, at)!;
      const iat = Math.floor(at / 1000);
      return new SignJWT({})
        .setProtectedHeader({ alg: SIGNING_ALG, kid: record.kid, typ: "JWT" })
        .setSubject(subject)
        .setAudience(audience)
        .setIssuer(options.issuer)
        .setIssuedAt(iat)
        .setExpirationTime(iat + Math.floor(tokenLifetime / 1000))
        .setJti(crypto.randomUUID())
        .sign(await signingKey(record));
    },

    async jwks() {
      const current = await ready();
      return {
        keys: current.keys.map((key) => ({ ...key.publicJwk, use: JWT_SVID_USE, kid: key.kid, alg: key.alg })),
        spiffe_sequence: current.sequence,
        spiffe_refresh_hint: refreshHintSeconds,
      };
    },

    rotate(rotateOptions = {}) {
      return serial(async () => {
        const current = await maintainNow();
        const at = now();
        const waiting = current.keys.find((key) => key.activeFrom > at);
        const immediately = rotateOptions.immediately === true || rotateOptions.revokePrevious === true;
        let next = current;
        if (immediately || !waiting) {
          const key = await generateSigningKey(at, immediately ? at : at + policy.publishAhead);
          // A key that was waiting to sign never will once another signs at once: drop it.
          const plan: RotationPlan = { drop: immediately && waiting ? [waiting.kid] : [], nextCheckAt: at };
          next = await apply(current, plan, [key], rotateOptions.revokePrevious ? key.kid : undefined);
        }
        nextCheckAt = planRotation(next, at, policy).nextCheckAt;
        return structuredClone(next);
      });
    },

    maintain() {
      return serial(async () => {
        nextCheckAt = Number.NEGATIVE_INFINITY;
        await maintainNow();
        return { nextCheckAt };
      });
    },
  };
}

function checkLifetime(lifetime: number): void {
  if (!(lifetime >= 1000 && lifetime <= MAX_TOKEN_LIFETIME_MS)) throw new RangeError(`token lifetime must be between 1 s and ${MAX_TOKEN_LIFETIME_MS / 60_000} min`);
}
