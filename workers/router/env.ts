/**
 * The router worker's bindings and vars (SPEC.md section 5), validated with zod once per
 * isolate, so a misconfigured deployment answers every request with one clear error naming
 * each bad setting, instead of failing obscurely on some request later.
 */
import { z } from "zod";
import { NameSchema } from "../../src/core/config/index.ts";
import { isTrustDomain } from "../../src/identity/index.ts";

const binding = <T>(what: string, method: string) =>
  z.custom<T>((value) => typeof value === "object" && value !== null && typeof (value as Record<string, unknown>)[method] === "function", `must be a ${what} binding`);

const whole = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,10}$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** How long a snapshot read from KV is used before it is read again: "a few seconds". */
export const DEFAULT_CONFIG_TTL_MS = 5_000;

/** How often the isolate's metric deltas are pushed to the control plane. */
export const DEFAULT_STATS_INTERVAL_MS = 10_000;

const EnvSchema = z
  .object({
    /** The service this router fronts (one deployment per service). */
    WEFT_SERVICE: NameSchema,
    /** The mesh's trust domain; this router is `spiffe://<domain>/worker/<service>`. */
    WEFT_TRUST_DOMAIN: z.string().refine(isTrustDomain, "must be a trust domain name ([a-z0-9._-])"),
    /** This router's bootstrap secret (a Workers secret), exchanged for identity tokens. */
    WEFT_BOOTSTRAP_SECRET: z.string().min(16, "must be the secret the control plane issued (at least 16 characters)").max(512),
    /** Service binding to the control worker. */
    CONTROL: binding<Fetcher>("service", "fetch"),
    /** KV namespace the control worker publishes the snapshot to; without it the router asks CONTROL. */
    WEFT_CONFIG: binding<KVNamespace>("KV namespace", "get").optional(),
    /** The app behind this router: a service binding... */
    APP: binding<Fetcher>("service", "fetch").optional(),
    /** ...or an http(s) origin. */
    APP_ORIGIN: z.url({ protocol: /^https?$/ }).optional(),
    /** The control plane's URL as tokens name it (`iss`); learned from the first token when unset. */
    WEFT_ISSUER_URL: z.url({ protocol: /^https?$/ }).optional(),
    WEFT_CONFIG_TTL_MS: whole(0, 3_600_000).optional().transform((n) => n ?? DEFAULT_CONFIG_TTL_MS),
    WEFT_STATS_INTERVAL_MS: whole(1_000, 3_600_000).optional().transform((n) => n ?? DEFAULT_STATS_INTERVAL_MS),
    /** Rate Limiting binding for each caller's share (`rateLimit.perKey`), across isolates (docs/rate-limits.md). */
    WEFT_RATE_LIMIT: binding<RateLimit>("Rate Limiting", "limit").optional(),
    /** Rate Limiting binding for a limit's total (`rateLimit.rps`), across isolates. */
    WEFT_RATE_LIMIT_TOTAL: binding<RateLimit>("Rate Limiting", "limit").optional(),
    /** The `simple.period` of those bindings, in seconds: 10 or 60, as Cloudflare takes. */
    WEFT_RATE_LIMIT_PERIOD: z.enum(["10", "60"]).optional().transform((p) => Number(p ?? "60")),
    /** Optional Workers Analytics Engine dataset the golden metrics are also written to. */
    WEFT_ANALYTICS: binding<AnalyticsEngineDataset>("Analytics Engine", "writeDataPoint").optional(),
  });

/** The validated bindings and vars. */
export type RouterEnv = z.infer<typeof EnvSchema>;

/** The validated env, or every problem in one message (names only, never values: some are secrets). */
export function parseEnv(env: unknown): { ok: true; env: RouterEnv } | { ok: false; message: string } {
  const result = EnvSchema.safeParse(env);
  const problems = result.success ? [] : result.error.issues.map((issue) => `${issue.path.join(".") || "env"}: ${issue.message}`);
  // Checked beside the schema, not in it, so this problem is reported along with all the others.
  const raw = (typeof env === "object" && env !== null ? env : {}) as Record<string, unknown>;
  if ((raw.APP === undefined) === (raw.APP_ORIGIN === undefined)) problems.push("APP: set exactly one of APP (a service binding to the app) or APP_ORIGIN (its URL)");
  if (result.success && problems.length === 0) return { ok: true, env: result.data };
  return { ok: false, message: `the router is misconfigured: ${problems.join("; ")}` };
}
