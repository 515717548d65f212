/**
 * The mesh's certificate authority: X.509-SVIDs (SPIFFE X509-SVID: one URI SAN, the
 * workload's SPIFFE ID) for the sidecars' mutual TLS, signed by an intermediate issuer under
 * a trust anchor, with rotation of both that keeps old and new anchors in the bundle while
 * certificates of either can be live. Built on `@peculiar/x509` over WebCrypto, so it runs in
 * the control worker (workerd) and in Node alike. The CA never sees a workload's key: it signs
 * the public key of a CSR the workload made.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { parseSpiffeId } from "./spiffe-id.ts";
import { CA_ALGORITHM, generateWorkloadKey } from "./workload-key.ts";

export { CA_ALGORITHM, generateWorkloadKey } from "./workload-key.ts";

x509.cryptoProvider.set(crypto);

/** A workload certificate's lifetime: 24 h, Linkerd's `identity.issuer.issuanceLifetime`. */
export const DEFAULT_CERTIFICATE_LIFETIME_MS = 24 * 60 * 60 * 1000;

/** Shortest certificate a CSR may ask for: 10 s (tests ask for short ones to see renewal). */
export const MIN_CERTIFICATE_LIFETIME_MS = 10_000;

/**
 * Lifetime of an anchor and issuer the CA makes itself: 365 days, what `linkerd install`
 * and the step CLI recipe in Linkerd's docs give theirs. Rotation replaces them well before.
 */
export const DEFAULT_AUTHORITY_LIFETIME_MS = 365 * 24 * 60 * 60 * 1000;

/**
 * How long a new authority's anchor is published before it signs: 1 h, the same lead as the
 * JWT signing keys (twelve of the data plane's 5-minute bundle refreshes), so every peer
 * trusts the new anchor before it sees a certificate under it.
 */
export const DEFAULT_CA_PUBLISH_AHEAD_MS = 60 * 60 * 1000;

/**
 * Backdating of `notBefore`, and the slack on keeping a retired anchor: 30 s, the identity
 * code's clock skew allowance (`DEFAULT_CLOCK_SKEW_MS`), so a peer whose clock runs behind
 * does not refuse a fresh certificate.
 */
export const CA_CLOCK_SKEW_MS = 30_000;

/** One anchor and the issuer under it. The issuer's key is the only private part kept. */
export interface Authority {
  /** Trust anchors (PEM) this authority's certificates chain to: one for a CA-made authority, maybe more for a brought one. */
  anchors: string[];
  /** The issuing certificate (PEM): an intermediate under an anchor, or the anchor itself. */
  issuer: string;
  /** The issuer's private key (JWK). */
  issuerKey: JsonWebKey;
  /** Epoch ms from which this authority signs (until the next one's `activeFrom`). */
  activeFrom: number;
  /** True when the operator brought it (`PUT /v1/identity/ca`), false when the CA made it. */
  external: boolean;
}

/** The CA's persisted state: plain JSON for a Durable Object's storage. */
export interface CaState {
  /** Goes up with every change to the published anchors. */
  sequence: number;
  authorities: Authority[];
}

/** A signed workload certificate. */
export interface IssuedCertificate {
  /** The leaf (PEM). */
  certificate: string;
  /** Intermediates from the leaf's issuer up to (not including) the anchor (PEM). */
  chain: string[];
  /** The SPIFFE ID in its URI SAN. */
  id: string;
  /** Epoch ms. */
  notBefore: number;
  notAfter: number;
}

/** What the CA reports of an authority (for `weft check` and the admin API): no key. */
export interface AuthorityView {
  anchors: { subject: string; notAfter: string; fingerprint: string }[];
  issuer: { subject: string; notAfter: string };
  activeFrom: string;
  external: boolean;
  state: "signing" | "waiting" | "retiring";
}

/** A problem with input the CA was given (a CSR, a brought authority): the message is safe to show. */
export class CaInputError extends Error {
  override name = "CaInputError";
}

/** PEM with a final newline, so that certificates joined one after another stay readable. */
const pem = (cert: x509.X509Certificate) => `${cert.toString("pem").trim()}\n`;

function serial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0]! &= 0x7f; // positive
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const caExtensions = async (keys: CryptoKeyPair, pathLength: number) => [
  new x509.BasicConstraintsExtension(true, pathLength, true),
  new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
];

/** Makes an anchor and an intermediate issuer under it; the anchor's key is dropped once it has signed. */
export async function generateAuthority(trustDomain: string, now: number, activeFrom: number, lifetimeMs = DEFAULT_AUTHORITY_LIFETIME_MS): Promise<Authority> {
  const anchorKeys = await generateWorkloadKey();
  const issuerKeys = await generateWorkloadKey();
  const notBefore = new Date(now - CA_CLOCK_SKEW_MS);
  const notAfter = new Date(now + lifetimeMs);
  const stamp = new Date(now).toISOString();
  const anchor = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=weft trust anchor ${stamp}, O=${trustDomain}`,
    notBefore,
    notAfter,
    keys: anchorKeys,
    signingAlgorithm: CA_ALGORITHM,
    extensions: await caExtensions(anchorKeys, 1),
  });
  const issuer = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=weft issuer ${stamp}, O=${trustDomain}`,
    issuer: anchor.subject,
    notBefore,
    notAfter,
    signingKey: anchorKeys.privateKey,
    publicKey: issuerKeys.publicKey,
    signingAlgorithm: CA_ALGORITHM,
    extensions: [...(await caExtensions(issuerKeys, 0)), await x509.AuthorityKeyIdentifierExtension.create(anchorKeys.publicKey)],
  });
  return { anchors: [pem(anchor)], issuer: pem(issuer), issuerKey: (await crypto.subtle.exportKey("jwk", issuerKeys.privateKey)) as JsonWebKey, activeFrom, external: false };
}

/** Reads PEM certificates, refusing anything else. */
function certificates(text: string, what: string): x509.X509Certificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new CaInputError(`${what} holds no PEM certificate`);
  try {
    return blocks.map((block) => new x509.X509Certificate(block));
  } catch {
    throw new CaInputError(`${what} is not a valid certificate`);
  }
}

/**
 * Checks an authority an operator brings (cert-manager style: their own root, an issuer
 * under it and its key) and returns it as state: the issuer must be a CA, chain to one of the
 * anchors, hold an ECDSA P-256 key that matches `issuerKeyPkcs8`, and be valid now.
 */
export async function importAuthority(input: { anchors: string; issuer: string; issuerKey: string }, now: number, activeFrom: number): Promise<Authority> {
  const anchors = certificates(input.anchors, "anchors");
  const [issuer, ...rest] = certificates(input.issuer, "issuer");
  if (!issuer || rest.length > 0) throw new CaInputError("issuer must be exactly one certificate");
  const basic = issuer.getExtension(x509.BasicConstraintsExtension);
  if (!basic?.ca) throw new CaInputError("issuer is not a CA certificate (basicConstraints cA is not set)");
  if (issuer.notAfter.getTime() <= now || issuer.notBefore.getTime() > now + CA_CLOCK_SKEW_MS) throw new CaInputError("issuer is not valid now");
  let chained = false;
  for (const anchor of anchors) {
    if (anchor.notAfter.getTime() <= now) throw new CaInputError("an anchor has expired");
    if (await issuer.verify({ publicKey: anchor.publicKey, signatureOnly: true }).catch(() => false)) chained = true;
  }
  if (!chained) throw new CaInputError("issuer is not signed by any of the anchors");
  const body = input.issuerKey.match(/-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/)?.[1];
  if (!body) throw new CaInputError("issuerKey must be a PKCS #8 PEM private key (BEGIN PRIVATE KEY)");
  let key: CryptoKey;
  try {
    const der = Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
    key = await crypto.subtle.importKey("pkcs8", der, CA_ALGORITHM, true, ["sign"]);
  } catch {
    throw new CaInputError("issuerKey is not an ECDSA P-256 private key");
  }
  // The key must be the issuer's: sign a probe and check it with the certificate's public key.
  const probe = crypto.getRandomValues(new Uint8Array(32));
  const signature = await crypto.subtle.sign(CA_ALGORITHM, key, probe);
  const publicKey = await issuer.publicKey.export(CA_ALGORITHM, ["verify"]).catch(() => undefined);
  if (!publicKey || !(await crypto.subtle.verify(CA_ALGORITHM, publicKey, signature, probe))) throw new CaInputError("issuerKey does not match the issuer certificate");
  return { anchors: anchors.map(pem), issuer: pem(issuer), issuerKey: (await crypto.subtle.exportKey("jwk", key)) as JsonWebKey, activeFrom, external: true };
}

/** Options of `createCa`. */
export interface CaOptions {
  trustDomain: string;
  /** Reads and writes the state (the control worker's Durable Object storage). */
  state: { get(): Promise<CaState | undefined>; put(state: CaState): Promise<void> };
  /** Wall-clock epoch ms. */
  now?: () => number;
  /** Longest certificate it signs (and the default); 24 h. */
  certificateLifetimeMs?: number;
}

/** The certificate authority. One per control plane (its Durable Object serializes the writes). */
export interface Ca {
  /** Signs a certificate for `id` over the key of `csrPem` (whose signature must verify). */
  issue(csrPem: string, id: string, lifetimeMs?: number): Promise<IssuedCertificate>;
  /** The anchors every peer must trust now (PEM), oldest first. */
  anchors(): Promise<{ sequence: number; anchors: string[] }>;
  /** Adds a new CA-made authority that signs after `activateInMs` (default 1 h); the old one stays in the bundle. */
  rotate(activateInMs?: number): Promise<CaState>;
  /** Adds an operator's authority (see `importAuthority`) that signs after `activateInMs` (default 1 h). */
  bring(input: { anchors: string; issuer: string; issuerKey: string }, activateInMs?: number): Promise<CaState>;
  /** Drops authorities no live certificate can chain to; returns when to look again. */
  maintain(): Promise<{ nextCheckAt: number }>;
  /** What each authority is and does now, without keys. */
  describe(): Promise<AuthorityView[]>;
}

/** Creates the CA over its stored state; the first use makes an anchor and issuer if there are none. */
export function createCa(options: CaOptions): Ca {
  const now = options.now ?? Date.now;
  const maxLifetime = options.certificateLifetimeMs ?? DEFAULT_CERTIFICATE_LIFETIME_MS;
  const keys = new Map<string, Promise<CryptoKey>>();
  let loaded: CaState | undefined;

  const load = async (): Promise<CaState> => {
    loaded ??= await options.state.get();
    if (!loaded || loaded.authorities.length === 0) {
      loaded = { sequence: (loaded?.sequence ?? 0) + 1, authorities: [await generateAuthority(options.trustDomain, now(), now())] };
      await options.state.put(loaded);
    }
    return loaded;
  };
  const save = async (state: CaState) => {
    loaded = state;
    await options.state.put(state);
  };

  /** The authority signing at `t`: the latest whose `activeFrom` has come. */
  const signingAt = (state: CaState, t: number): Authority => {
    let best = state.authorities[0]!;
    for (const a of state.authorities) if (a.activeFrom <= t && a.activeFrom >= best.activeFrom) best = a;
    return best;
  };

  const keyOf = (authority: Authority): Promise<CryptoKey> => {
    let key = keys.get(authority.issuer);
    if (!key) {
      key = crypto.subtle.importKey("jwk", authority.issuerKey, CA_ALGORITHM, false, ["sign"]);
      keys.set(authority.issuer, key);
    }
    return key;
  };

  const add = async (authority: Authority): Promise<CaState> => {
    const state = await load();
    const t = now();
    // At most one authority waits: a second rotation replaces the one not yet signing.
    const kept = state.authorities.filter((a) => a.activeFrom <= t);
    return (await save({ sequence: state.sequence + 1, authorities: [...kept, authority] }), loaded!);
  };

  return {
    async issue(csrPem, id, lifetimeMs) {
      const spiffe = parseSpiffeId(id);
      if (!spiffe || spiffe.trustDomain !== options.trustDomain) throw new CaInputError("the identity is not a SPIFFE ID of this trust domain");
      let csr: x509.Pkcs10CertificateRequest;
      try {
        csr = new x509.Pkcs10CertificateRequest(csrPem);
      } catch {
        throw new CaInputError("csr is not a PEM PKCS #10 certificate request");
      }
      const algorithm = csr.publicKey.algorithm as { name: string; namedCurve?: string };
      if (algorithm.name !== "ECDSA" || algorithm.namedCurve !== "P-256") throw new CaInputError("csr's key must be ECDSA P-256");
      if (!(await csr.verify().catch(() => false))) throw new CaInputError("csr's signature does not verify");
      const state = await load();
      const t = now();
      const authority = signingAt(state, t);
      const issuer = new x509.X509Certificate(authority.issuer);
      const lifetime = Math.min(Math.max(lifetimeMs ?? maxLifetime, MIN_CERTIFICATE_LIFETIME_MS), maxLifetime);
      const notBefore = t - CA_CLOCK_SKEW_MS;
      // Never past the issuer's own end: a chain is only as valid as its shortest link.
      const notAfter = Math.min(t + lifetime, issuer.notAfter.getTime());
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        // SPIFFE X509-SVID: the subject says nothing; the URI SAN is the identity, so it is critical.
        subject: "",
        issuer: issuer.subject,
        notBefore: new Date(notBefore),
        notAfter: new Date(notAfter),
        signingKey: await keyOf(authority),
        publicKey: csr.publicKey,
        signingAlgorithm: CA_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension([{ type: "url", value: id }], true),
          await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(issuer),
        ],
      });
      const selfIssued = authority.anchors.includes(authority.issuer);
      return { certificate: pem(leaf), chain: selfIssued ? [] : [authority.issuer], id, notBefore, notAfter };
    },
    async anchors() {
      const state = await load();
      const all = [...new Set(state.authorities.flatMap((a) => a.anchors))];
      return { sequence: state.sequence, anchors: all };
    },
    rotate: async (activateInMs = DEFAULT_CA_PUBLISH_AHEAD_MS) => add(await generateAuthority(options.trustDomain, now(), now() + activateInMs)),
    bring: async (input, activateInMs = DEFAULT_CA_PUBLISH_AHEAD_MS) => add(await importAuthority(input, now(), now() + activateInMs)),
    async maintain() {
      const state = await load();
      const t = now();
      const current = signingAt(state, t);
      // An authority that stopped signing at `until` is kept while a certificate it signed
      // can be live: the longest lifetime, plus the skew twice (backdating, and a peer's clock behind).
      const retireAt = (a: Authority) => {
        const next = state.authorities.filter((b) => b.activeFrom > a.activeFrom).map((b) => b.activeFrom);
        return next.length ? Math.min(...next) + maxLifetime + 2 * CA_CLOCK_SKEW_MS : Infinity;
      };
      const kept = state.authorities.filter((a) => a === current || a.activeFrom > t || retireAt(a) > t);
      if (kept.length !== state.authorities.length) await save({ sequence: state.sequence + 1, authorities: kept });
      const times = kept.flatMap((a) => [a.activeFrom > t ? a.activeFrom : Infinity, retireAt(a)]).filter((x) => x > t);
      return { nextCheckAt: Math.min(Infinity, ...times) };
    },
    async describe() {
      const state = await load();
      const t = now();
      const current = signingAt(state, t);
      return Promise.all(
        state.authorities.map(async (a) => {
          const issuer = new x509.X509Certificate(a.issuer);
          const anchors = await Promise.all(
            a.anchors.map(async (p) => {
              const c = new x509.X509Certificate(p);
              const digest = new Uint8Array(await c.getThumbprint("SHA-256"));
              return { subject: c.subject, notAfter: c.notAfter.toISOString(), fingerprint: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(":") };
            }),
          );
          const view: AuthorityView = {
            anchors,
            issuer: { subject: issuer.subject, notAfter: issuer.notAfter.toISOString() },
            activeFrom: new Date(a.activeFrom).toISOString(),
            external: a.external,
            state: a === current ? "signing" : a.activeFrom > t ? "waiting" : "retiring",
          };
          return view;
        }),
      );
    },
  };
}

/** Options of `createCsr`. */
export interface CsrOptions {
  /** The workload's key pair (ECDSA P-256); it stays with the workload. */
  keys: CryptoKeyPair;
}

/** Makes a PKCS #10 request (PEM) over a workload's own key; the CA takes the identity from the bootstrap credential, not from the CSR. */
export async function createCsr(options: CsrOptions): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: "", keys: options.keys, signingAlgorithm: CA_ALGORITHM });
  return csr.toString("pem");
}
