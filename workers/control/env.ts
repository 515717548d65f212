/**
 * The control worker's bindings and vars, validated with zod once per isolate (and once per
 * Durable Object instance), so a misconfigured deployment fails at its first request with
 * every problem named, and the rest of the code reads typed values.
 */
import { z } from "zod";
import { isTrustDomain } from "../../src/identity/index.ts";
import { DEFAULT_MAX_WAITERS, DEFAULT_PUBLISH_INTERVAL_MS, DEFAULT_VERSIONED_SNAPSHOT_TTL_S } from "./limits.ts";

const binding = <T>(what: string, method: string) =>
  z.custom<T>((value) => typeof value === "object" && value !== null && typeof (value as Record<string, unknown>)[method] === "function", `must be a ${what} binding`);

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,10}$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** What `wrangler.toml` (and the local runner) must provide. */
const EnvSchema = z.object({
  /** KV namespace the snapshot is published to (`snapshot`, `snapshot:<version>`); routers read it. */
  WEFT_CONFIG: binding<KVNamespace>("KV namespace", "put"),
  /** The store's Durable Object namespace: one object, named `config`, holds everything. */
  STORE: binding<DurableObjectNamespace>("Durable Object namespace", "idFromName"),
  /** The metrics aggregator's Durable Object namespace: one object, named `stats`. */
  STATS: binding<DurableObjectNamespace>("Durable Object namespace", "idFromName"),
  /** The trust domain of every identity the control plane issues. */
  WEFT_TRUST_DOMAIN: z.string().refine(isTrustDomain, "must be a trust domain name ([a-z0-9._-])"),
  /** The control plane's URL: the `iss` of every token it issues (SPEC.md section 4). */
  WEFT_ISSUER_URL: z.url({ protocol: /^https?$/ }),
  /** SHA-256 (hex) of the admin bearer secret; the secret itself is never stored. Unset: no bearer admin. */
  WEFT_ADMIN_TOKEN_SHA256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits")
    .transform((s) => s.toLowerCase())
    .optional(),
  /** SHA-256 (hex) of the read-only bearer secret (dashboard login, reads); unset: none. */
  WEFT_READ_TOKEN_SHA256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits")
    .transform((s) => s.toLowerCase())
    .optional(),
  /** SHA-256 (hex) of the tap-only bearer secret (`weft tap`); unset: none. */
  WEFT_TAP_TOKEN_SHA256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits")
    .transform((s) => s.toLowerCase())
    .optional(),
  /** Comma-separated SPIFFE IDs whose control-plane tokens (aud `weft-control`) count as admin. */
  WEFT_ADMIN_IDENTITIES: z
    .string()
    .optional()
    .transform((s) => (s ?? "").split(",").map((id) => id.trim()).filter(Boolean)),
  /** Least ms between KV snapshot writes (default: KV's 1 write/s per key). */
  WEFT_PUBLISH_INTERVAL_MS: integer(0, 3_600_000).optional().transform((n) => n ?? DEFAULT_PUBLISH_INTERVAL_MS),
  /** Most snapshot long-polls held at once; beyond it, 503 `overloaded`. */
  WEFT_MAX_LONG_POLLS: integer(1, 1_000_000).optional().transform((n) => n ?? DEFAULT_MAX_WAITERS),
  /**
   * The mesh-wide egress mode every snapshot carries (issue 16, docs/egress.md): `allow`,
   * `deny` or `allow-listed`. Unset: no egress; a host that names no service is unknown.
   */
  WEFT_EGRESS_MODE: z.enum(["allow", "deny", "allow-listed"]).optional(),
  /** Seconds `snapshot:<version>` keys live in KV. */
  WEFT_VERSIONED_SNAPSHOT_TTL_S: integer(60, 31_536_000).optional().transform((n) => n ?? DEFAULT_VERSIONED_SNAPSHOT_TTL_S),
});

/** The validated bindings and vars. */
export type ControlEnv = z.infer<typeof EnvSchema>;

const parsed = new WeakMap<object, ControlEnv>();

/**
 * Validates the worker's `env`, once per `env` object (per isolate). Throws a `TypeError`
 * naming every bad or missing binding (names only, never values: some are secrets).
 */
export function parseEnv(env: unknown): ControlEnv {
  if (typeof env === "object" && env !== null) {
    const hit = parsed.get(env);
    if (hit) return hit;
  }
  const result = EnvSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".") || "env"}: ${i.message}`).join("; ");
    throw new TypeError(`weft-control is misconfigured: ${problems}`);
  }
  if (typeof env === "object" && env !== null) parsed.set(env, result.data);
  return result.data;
}
