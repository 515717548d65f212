/**
 * The issuer's signing keys as plain JSON (so a Durable Object, KV or a file can hold them),
 * the tiny storage interface they live behind, and the pure rules of rotation: which key
 * signs now, when the next one is published, and when a retired one may be dropped.
 */
import type { JWK } from "jose";
import { calculateJwkThumbprint, exportJWK } from "jose";

/** The one signing algorithm the issuer uses (SPEC.md section 4): ECDSA P-256 with SHA-256. */
export const SIGNING_ALG = "ES256";

/** The JWT-SVID bundle's `use` for JWT signing keys (SPIFFE JWT-SVID.md, "Bundle distribution"). */
export const JWT_SVID_USE = "jwt-svid";

/** One signing key, private and public halves as JWKs, with the instant it starts to sign. */
export interface KeyRecord {
  /** The RFC 7638 thumbprint of the public key: unique per key and stable across restarts. */
  kid: string;
  alg: typeof SIGNING_ALG;
  privateJwk: JWK;
  publicJwk: JWK;
  /** Epoch ms the key was made (and published: every key in the state is published). */
  createdAt: number;
  /** Epoch ms from which it signs; the key signs until the next key's `activeFrom`. */
  activeFrom: number;
}

/** Everything the issuer persists: its keys, oldest `activeFrom` first, and a bundle sequence. */
export interface KeyState {
  /** Bumped on every change of the published key set (the bundle's `spiffe_sequence`). */
  sequence: number;
  keys: KeyRecord[];
}

/**
 * Where the issuer keeps its `KeyState`: a Durable Object's storage in the control worker,
 * memory in tests. One issuer writes to one store (a Durable Object serializes that for free).
 */
export interface KeyStore {
  get(): Promise<KeyState | undefined>;
  put(state: KeyState): Promise<void>;
}

/** A `KeyStore` in memory, holding a deep copy so callers cannot change it behind its back. */
export function memoryKeyStore(initial?: KeyState): KeyStore {
  let state = initial === undefined ? undefined : structuredClone(initial);
  return {
    get: async () => (state === undefined ? undefined : structuredClone(state)),
    put: async (next) => {
      state = structuredClone(next);
    },
  };
}

/** Makes a new P-256 signing key with WebCrypto, exported as JWKs, signing from `activeFrom`. */
export async function generateSigningKey(createdAt: number, activeFrom: number): Promise<KeyRecord> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const privateJwk = await exportJWK(pair.privateKey);
  const exported = await exportJWK(pair.publicKey);
  const kid = await calculateJwkThumbprint(exported);
  const publicJwk: JWK = { kty: exported.kty, crv: exported.crv, x: exported.x, y: exported.y, kid, use: JWT_SVID_USE, alg: SIGNING_ALG } as JWK;
  return { kid, alg: SIGNING_ALG, privateJwk: { ...privateJwk, kid, alg: SIGNING_ALG }, publicJwk, createdAt, activeFrom };
}

/** The timing of rotation, all in ms. */
export interface RotationPolicy {
  /** How long each key signs before the next takes over. */
  rotateEvery: number;
  /** How long before it signs a new key is published, so every verifier has it in time. */
  publishAhead: number;
  /** How long a key stays published after it stops signing: its last token's life plus leeway. */
  retainAfter: number;
}

/** What rotation asks for at a given instant; empty when nothing is due. */
export interface RotationPlan {
  /** Add a key that signs from this epoch ms (publish it now). */
  addActiveFrom?: number;
  /** Kids to remove from the state and the bundle. */
  drop: string[];
  /** The next epoch ms at which the plan may change: when hosts should look again (an alarm). */
  nextCheckAt: number;
}

/** The key that signs at `now`: the latest whose `activeFrom` has come, else the earliest. */
export function signingKeyOf(state: KeyState, now: number): KeyRecord | undefined {
  let signer: KeyRecord | undefined;
  for (const key of state.keys) if (key.activeFrom <= now && (!signer || key.activeFrom >= signer.activeFrom)) signer = key;
  return signer ?? earliest(state.keys);
}

/**
 * What rotation requires at `now` under `policy`, as a pure function of the state:
 * - no key at all: add one that signs at once (nobody can have a stale bundle yet);
 * - no key waiting and the signer's turn ends within `publishAhead`: add the next one, to sign
 *   no sooner than `publishAhead` from now, so it is in every bundle before it signs;
 * - a key whose successor has signed for `retainAfter`: drop it, since every token it
 *   signed has expired, with leeway.
 */
export function planRotation(state: KeyState, now: number, policy: RotationPolicy): RotationPlan {
  const keys = [...state.keys].sort((a, b) => a.activeFrom - b.activeFrom);
  if (keys.length === 0) return { addActiveFrom: now, drop: [], nextCheckAt: now };
  const signer = signingKeyOf(state, now)!;
  const events: number[] = [];
  const drop: string[] = [];
  for (let i = 0; i < keys.length - 1; i++) {
    const key = keys[i]!;
    if (key === signer || key.activeFrom > signer.activeFrom) continue;
    // It stopped signing when the key after it started.
    const dropAt = keys[i + 1]!.activeFrom + policy.retainAfter;
    if (dropAt <= now) drop.push(key.kid);
    else events.push(dropAt);
  }
  const waiting = keys.some((key) => key.activeFrom > now);
  let addActiveFrom: number | undefined;
  if (!waiting) {
    const publishAt = signer.activeFrom + policy.rotateEvery - policy.publishAhead;
    if (publishAt <= now) {
      addActiveFrom = Math.max(signer.activeFrom + policy.rotateEvery, now + policy.publishAhead);
      events.push(addActiveFrom);
    } else events.push(publishAt);
  } else {
    for (const key of keys) if (key.activeFrom > now) events.push(key.activeFrom);
  }
  const nextCheckAt = Math.min(...events.filter((t) => t > now), Number.POSITIVE_INFINITY);
  const plan: RotationPlan = { drop, nextCheckAt };
  if (addActiveFrom !== undefined) plan.addActiveFrom = addActiveFrom;
  return plan;
}

function earliest(keys: readonly KeyRecord[]): KeyRecord | undefined {
  let first: KeyRecord | undefined;
  for (const key of keys) if (!first || key.activeFrom < first.activeFrom) first = key;
  return first;
}
