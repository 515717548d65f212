/**
 * Identity (SPEC.md section 4): `POST /v1/identity/token` exchanges a bootstrap credential
 * (a Kubernetes projected ServiceAccount token, or a router worker's bootstrap secret) for a
 * token; `GET /.well-known/jwks.json` is the trust bundle; the admin rotates keys, hands out
 * worker bootstrap secrets and trusts Kubernetes clusters.
 */
import { z } from "zod";
import { DurationSchema, NameSchema, durationMs, formatDuration } from "../../../src/core/config/index.ts";
import { MeshError } from "../../../src/core/errors.ts";
import { DEFAULT_CERTIFICATE_LIFETIME_MS, MIN_CERTIFICATE_LIFETIME_MS } from "../../../src/identity/ca.ts";
import { MAX_TOKEN_LENGTH, MAX_TOKEN_LIFETIME_MS, generateBootstrapSecret, hashBootstrapSecret, workerId } from "../../../src/identity/index.ts";
import { callerOf, unwrap } from "../app.ts";
import type { ControlContext, RouteKit } from "../app.ts";
import { json, parse, readJson } from "../http.ts";
import type { BootstrapCredential } from "../store/index.ts";
import { nameParam } from "./resources.ts";

const TokenRequestSchema = z
  .strictObject({
    /** The destination service's name, or `weft-control`. */
    audience: NameSchema,
    lifetime: DurationSchema.refine((t) => {
      const ms = durationMs(t);
      return ms >= 1_000 && ms <= MAX_TOKEN_LIFETIME_MS;
    }, `must be between 1s and ${formatDuration(MAX_TOKEN_LIFETIME_MS)}`).optional(),
    serviceAccountToken: z.string().min(1).max(MAX_TOKEN_LENGTH).optional(),
    worker: z.strictObject({ service: NameSchema, secret: z.string().min(1).max(512) }).optional(),
  })
  .refine((b) => (b.serviceAccountToken === undefined) !== (b.worker === undefined), "give exactly one of serviceAccountToken or worker");

const CertificateRequestSchema = z
  .strictObject({
    /** A PEM PKCS #10 request over the workload's own ECDSA P-256 key; its subject is ignored. */
    csr: z.string().min(1).max(8192),
    lifetime: DurationSchema.refine((t) => {
      const ms = durationMs(t);
      return ms >= MIN_CERTIFICATE_LIFETIME_MS && ms <= DEFAULT_CERTIFICATE_LIFETIME_MS;
    }, `must be between ${formatDuration(MIN_CERTIFICATE_LIFETIME_MS)} and ${formatDuration(DEFAULT_CERTIFICATE_LIFETIME_MS)}`).optional(),
    serviceAccountToken: z.string().min(1).max(MAX_TOKEN_LENGTH).optional(),
    worker: z.strictObject({ service: NameSchema, secret: z.string().min(1).max(512) }).optional(),
  })
  .refine((b) => (b.serviceAccountToken === undefined) !== (b.worker === undefined), "give exactly one of serviceAccountToken or worker");

const PemSchema = z.string().min(1).max(32_768);
const CaRotateSchema = z.strictObject({
  /** When the new authority starts signing (its anchor is published at once): 1h by default. */
  activateIn: DurationSchema.optional(),
  /** An operator's own authority (cert-manager style): anchors, an issuer under one of them, and the issuer's PKCS #8 key. */
  bring: z.strictObject({ anchors: PemSchema, issuer: PemSchema, issuerKey: PemSchema }).optional(),
});

const RotateSchema = z.strictObject({ immediately: z.boolean().optional(), revokePrevious: z.boolean().optional() });

const WorkerSecretSchema = z.strictObject({
  /** A hash made by `hashBootstrapSecret` (`sha256:<base64url>`), to set a secret the caller chose. */
  secretSha256: z.string().regex(/^sha256:[A-Za-z0-9_-]{43}$/, "must be sha256:<43 base64url characters>").optional(),
});

const JwkSchema = z.looseObject({ kty: z.string().max(16), kid: z.string().min(1).max(256) }).refine((k) => !("d" in k) && !("k" in k), "must be a public key");
const ClusterSchema = z.strictObject({
  issuer: z.string().min(1).max(1024),
  audience: z.string().min(1).max(256),
  jwks: z.strictObject({ keys: z.array(JwkSchema).min(1).max(32) }),
});

/** A body that may be absent (`{}` then), else JSON within the limits. */
async function optionalBody(c: ControlContext, kit: RouteKit): Promise<unknown> {
  const length = c.req.header("content-length");
  if (!c.req.raw.body || length === "0") return {};
  return readJson(c.req.raw, { maxBytes: kit.limits.maxBodyBytes, maxDepth: kit.limits.maxJsonDepth });
}

/** Mounts the identity routes. */
export function identityRoutes(kit: RouteKit): void {
  const { mount, deps, limits } = kit;

  mount("/v1/identity/token", {
    POST: {
      access: "public",
      handle: async (c) => {
        const body = parse(TokenRequestSchema, await readJson(c.req.raw, { maxBytes: limits.maxBodyBytes, maxDepth: limits.maxJsonDepth }), "the token request");
        const credential: BootstrapCredential = body.worker
          ? { kind: "worker", service: body.worker.service, secret: body.worker.secret }
          : { kind: "serviceAccount", token: body.serviceAccountToken! };
        const issued = unwrap(await deps.store().issueToken(credential, body.audience, body.lifetime === undefined ? undefined : durationMs(body.lifetime)));
        return json({ token: issued.token, id: issued.id, audience: issued.audience, expiresAt: new Date(issued.expiresAt).toISOString() });
      },
    },
  });

  mount("/v1/identity/certificate", {
    POST: {
      access: "public",
      handle: async (c) => {
        const body = parse(CertificateRequestSchema, await readJson(c.req.raw, { maxBytes: limits.maxBodyBytes, maxDepth: limits.maxJsonDepth }), "the certificate request");
        const credential: BootstrapCredential = body.worker
          ? { kind: "worker", service: body.worker.service, secret: body.worker.secret }
          : { kind: "serviceAccount", token: body.serviceAccountToken! };
        const issued = unwrap(await deps.store().issueCertificate(credential, body.csr, body.lifetime === undefined ? undefined : durationMs(body.lifetime)));
        return json({
          id: issued.id,
          certificate: issued.certificate,
          chain: issued.chain,
          trustAnchors: issued.trustAnchors,
          notBefore: new Date(issued.notBefore).toISOString(),
          expiresAt: new Date(issued.notAfter).toISOString(),
        });
      },
    },
  });

  mount("/v1/identity/trust-anchors.pem", {
    GET: {
      access: "public",
      handle: async () =>
        new Response((await deps.store().trustAnchors()).join(""), { headers: { "content-type": "application/x-pem-file", "cache-control": "public, max-age=300" } }),
    },
  });

  mount("/v1/identity/ca", {
    GET: { access: "admin", handle: async () => json({ authorities: await deps.store().caStatus() }) },
  });

  mount("/v1/identity/ca/rotate", {
    POST: {
      access: "admin",
      handle: async (c) => {
        const body = parse(CaRotateSchema, await optionalBody(c, kit), "the CA rotation request");
        const authorities = unwrap(await deps.store().rotateCa(body.activateIn === undefined ? undefined : durationMs(body.activateIn), body.bring, callerOf(c).id));
        return json({ authorities });
      },
    },
  });

  mount("/.well-known/jwks.json", {
    GET: {
      access: "public",
      handle: async () =>
        // Five minutes: the bundle's own refresh hint; a new key is published an hour before it signs.
        json(await deps.store().jwks(), 200, { "cache-control": "public, max-age=300" }),
    },
  });

  mount("/v1/identity/rotate", {
    POST: {
      access: "admin",
      handle: async (c) => {
        const options = parse(RotateSchema, await optionalBody(c, kit), "the rotation request");
        const rotated = await deps.store().rotateKeys(options, callerOf(c).id);
        await deps.onKeysRotated?.();
        return json(rotated);
      },
    },
  });

  mount("/v1/identity/workers", {
    GET: { access: "admin", handle: async () => json({ items: await deps.store().workerSecrets() }) },
  });

  mount("/v1/identity/workers/:service", {
    PUT: {
      access: "admin",
      handle: async (c) => {
        const service = nameParam(c.req.param("service"));
        const body = parse(WorkerSecretSchema, await optionalBody(c, kit), "the bootstrap secret request");
        const secret = body.secretSha256 === undefined ? generateBootstrapSecret() : undefined;
        const hash = body.secretSha256 ?? (await hashBootstrapSecret(secret!));
        const { created } = await deps.store().setWorkerSecret(service, hash, callerOf(c).id);
        // The secret is shown once, here, and never stored: give it to the worker as WEFT_BOOTSTRAP_SECRET.
        const answer: Record<string, unknown> = { service, id: workerId(deps.trustDomain, service) };
        if (secret !== undefined) answer.secret = secret;
        return json(answer, created ? 201 : 200);
      },
    },
    DELETE: {
      access: "admin",
      handle: async (c) => {
        const service = nameParam(c.req.param("service"));
        if (!(await deps.store().deleteWorkerSecret(service, callerOf(c).id))) throw new MeshError("unknown-service", `no bootstrap secret for "${service}"`);
        return json({ service, deleted: true });
      },
    },
  });

  mount("/v1/identity/clusters", {
    GET: { access: "admin", handle: async () => json({ items: await deps.store().clusters() }) },
  });

  mount("/v1/identity/clusters/:name", {
    PUT: {
      access: "admin",
      handle: async (c) => {
        const name = nameParam(c.req.param("name"));
        const cluster = parse(ClusterSchema, await readJson(c.req.raw, { maxBytes: limits.maxBodyBytes, maxDepth: limits.maxJsonDepth }), "the cluster");
        const { created } = await deps.store().putCluster(name, cluster, callerOf(c).id);
        return json({ name, ...cluster }, created ? 201 : 200);
      },
    },
    DELETE: {
      access: "admin",
      handle: async (c) => {
        const name = nameParam(c.req.param("name"));
        if (!(await deps.store().deleteCluster(name, callerOf(c).id))) throw new MeshError("unknown-service", `no cluster "${name}"`);
        return json({ name, deleted: true });
      },
    },
  });
}
