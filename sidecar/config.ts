/**
 * The sidecar's settings, read once from environment variables (as linkerd2-proxy reads its
 * `LINKERD2_PROXY_*`): validated with zod in one pass that names every problem, then handed
 * on as a plain typed object. docs/sidecar.md lists each variable.
 */
import { hostname } from "node:os";
import { z } from "zod";
import { NameSchema, parseDuration } from "../src/core/config/index.ts";
import { readTracingEnv, type TracingConfig } from "../src/core/trace/index.ts";
import { isTrustDomain } from "../src/identity/index.ts";
import { DEFAULT_CLUSTER_DOMAIN } from "../src/proxy/index.ts";

/** Outbound port: the app's calls (SPEC.md section 8; linkerd2-proxy's outbound 4140). */
export const DEFAULT_OUTBOUND_PORT = 4140;
/** Inbound port: the Kubernetes Service targets it (SPEC.md section 8; linkerd2-proxy's 4143). */
export const DEFAULT_INBOUND_PORT = 4143;
/** Admin port: metrics and probes (SPEC.md section 8; linkerd2-proxy's 4191). */
export const DEFAULT_ADMIN_PORT = 4191;

/**
 * Where the kubelet writes the projected ServiceAccount token `weft inject` asks for (the
 * folder of Linkerd's `linkerd-identity-token` projection is `/var/run/secrets/tokens`).
 */
export const DEFAULT_TOKEN_PATH = "/var/run/secrets/tokens/weft-token";

/**
 * How long a draining sidecar lets in-flight requests finish: 120 s, linkerd2-proxy's
 * `LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD` default. The pod's `terminationGracePeriodSeconds`
 * (30 s by default) ends it sooner.
 */
export const DEFAULT_SHUTDOWN_GRACE_MS = 120_000;

/**
 * The endpoint lease asked for: 40 s, the control plane's default (the Kubernetes node
 * lease); the sidecar renews it at a third of that.
 */
export const DEFAULT_LEASE_TTL_MS = 40_000;

/**
 * How long a snapshot long-poll is held: 30 s. Below the control API's 90 s maximum and below
 * the idle timeouts of the proxies and load balancers a control plane may sit behind (AWS
 * ALB's default is 60 s), so a held poll is not cut as idle.
 */
export const DEFAULT_SNAPSHOT_WAIT_S = 30;

/**
 * How often metric deltas are pushed to the control plane: every 10 s, Prometheus'
 * `scrape_interval` in Linkerd's viz install, so `weft stat` is as fresh as `linkerd viz stat`.
 */
export const DEFAULT_STATS_INTERVAL_MS = 10_000;

/**
 * Requests in flight per listener before new ones get `overloaded` (503). Linkerd allows
 * 100,000 per direction (`LINKERD2_PROXY_*_MAX_IN_FLIGHT_REQUESTS`); a request held here costs
 * a few KB of a heap capped at 64 MB, so 10,000 keeps a flood inside the cap.
 */
export const DEFAULT_MAX_IN_FLIGHT = 10_000;

/**
 * Time a client has to send a request's whole header block, counted from the connection's
 * opening (its first request) or the request's first byte (later ones on a kept-alive
 * connection): 10 s, linkerd2-proxy's protocol-detection timeout
 * (how long it waits for a new connection's first bytes). hyper's default header read timeout
 * is 30 s and nginx's `client_header_timeout` 60 s; the sidecar's clients are its own app and
 * other sidecars, which send a header block in one write, so the shortest of these.
 */
export const DEFAULT_HEADER_TIMEOUT_MS = 10_000;

/**
 * Connections per traffic listener (4140, 4143) beyond which new ones are closed at once:
 * 10,000, the listener `connection_limit` of Envoy's edge configuration guide. An idle
 * connection holds a few KB of heap and about 10 KB of memory in all, so a full listener
 * stays within the sidecar's memory budget.
 */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** A listen address: host and port. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** The sidecar's settings. */
export interface SidecarConfig {
  /** The service this pod is (its endpoints register under it; its inbound tokens carry it as audience). */
  service: string;
  controlUrl: string;
  trustDomain: string;
  /** The projected ServiceAccount token, read afresh at each exchange. */
  tokenPath: string;
  /** This pod's endpoint id (the pod name). */
  podName: string;
  /** The inbound origin other pods reach (`http://<pod IP>:<inbound port>`). */
  advertisedAddress: string;
  /**
   * The app's origin, where inbound requests go (`http://127.0.0.1:<app port>`); undefined for
   * a pod that only calls out (a Job without ports): it then registers no endpoint.
   */
  appOrigin: string | undefined;
  outbound: ListenAddress;
  inbound: ListenAddress;
  admin: ListenAddress;
  shutdownGraceMs: number;
  /** The bearer token that enables `POST /shutdown`; undefined keeps it disabled. */
  adminShutdownToken: string | undefined;
  leaseTtlMs: number;
  snapshotWaitS: number;
  statsIntervalMs: number;
  maxInFlight: number;
  /** Time allowed to send a request's header block, on 4140 and 4143. */
  headerTimeoutMs: number;
  /** Connections per traffic listener before new ones are closed. */
  maxConnections: number;
  /** Endpoint weight and zone, when set. */
  weight: number | undefined;
  zone: string | undefined;
  logLevel: "debug" | "info" | "warn" | "error";
  /** The cluster domain of `svc.<ns>.svc.<domain>` names (`src/proxy/naming.ts`). */
  clusterDomain: string;
  /** Namespaces besides the pod's own (from its identity) that `svc.<ns>...` names may carry. */
  namespaces: string[];
  /** Tracing from the `OTEL_*` variables (docs/tracing.md); undefined when off. */
  tracing: TracingConfig | undefined;
  /** `WEFT_ACCESS_LOG=json`: one log line per request, with its trace and span ids. */
  accessLog: boolean;
  /** Mutual TLS with other sidecars (`WEFT_MTLS`, on by default; docs/identity.md). */
  mtls: boolean;
  /** The certificate lifetime to ask the CA for (`WEFT_CERT_LIFETIME`); the CA's 24 h when unset. */
  certLifetime: string | undefined;
}

/** The result of reading the environment: the config, or every problem found. */
export type ConfigResult = { ok: true; config: SidecarConfig } | { ok: false; problems: string[] };

const port = (what: string) =>
  z
    .string()
    .regex(/^\d{1,5}$/, `must be a port number (got a non-number)`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= 65535, `${what} must be between 1 and 65535`);

const duration = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const parsed = parseDuration(text);
    if (!parsed.ok) {
      ctx.addIssue({ code: "custom", message: parsed.error });
      return z.NEVER;
    }
    if (parsed.ms < min || parsed.ms > max) {
      ctx.addIssue({ code: "custom", message: `must be between ${min} ms and ${max} ms` });
      return z.NEVER;
    }
    return parsed.ms;
  });

const listen = z
  .string()
  .transform((text, ctx): ListenAddress => {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s\[\]]+)):(\d{1,5})$/.exec(text);
    const portNumber = match ? Number(match[3]) : NaN;
    if (!match || portNumber < 0 || portNumber > 65535) {
      ctx.addIssue({ code: "custom", message: `"${text.slice(0, 60)}" is not host:port (e.g. 127.0.0.1:4140 or [::]:4143)` });
      return z.NEVER;
    }
    return { host: match[1] ?? match[2]!, port: portNumber };
  });

const origin = z.string().refine((text) => {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && (url.pathname === "/" || url.pathname === "") && !url.search && !url.hash && !url.username;
  } catch {
    return false;
  }
}, "must be an http(s) origin such as http://10.0.0.12:4143");

const EnvSchema = z.object({
  WEFT_SERVICE: NameSchema,
  WEFT_CONTROL_URL: origin,
  WEFT_TRUST_DOMAIN: z.string().refine(isTrustDomain, "must be a trust domain such as cluster.local").default("cluster.local"),
  WEFT_TOKEN_PATH: z.string().min(1).default(DEFAULT_TOKEN_PATH),
  WEFT_POD_NAME: z.string().regex(/^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$/, "must be a DNS name such as web-7d4b9c-x2x8q").optional(),
  WEFT_POD_IP: z.string().min(1).optional(),
  WEFT_ADVERTISED_ADDRESS: origin.optional(),
  WEFT_APP_PORT: port("WEFT_APP_PORT").optional(),
  WEFT_APP_HOST: z.string().min(1).default("127.0.0.1"),
  WEFT_OUTBOUND_LISTEN: listen.prefault(`127.0.0.1:${DEFAULT_OUTBOUND_PORT}`),
  WEFT_INBOUND_LISTEN: listen.prefault(`0.0.0.0:${DEFAULT_INBOUND_PORT}`),
  WEFT_ADMIN_LISTEN: listen.prefault(`0.0.0.0:${DEFAULT_ADMIN_PORT}`),
  WEFT_SHUTDOWN_GRACE: duration(0, 3_600_000).optional(),
  WEFT_ADMIN_SHUTDOWN_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  WEFT_LEASE_TTL: duration(1_000, 3_600_000).optional(),
  WEFT_SNAPSHOT_WAIT: duration(1_000, 90_000).optional(),
  WEFT_STATS_INTERVAL: duration(1_000, 3_600_000).optional(),
  WEFT_MAX_IN_FLIGHT: z.string().regex(/^\d{1,7}$/, "must be a whole number").transform(Number).refine((n) => n >= 1, "must be at least 1").optional(),
  WEFT_HEADER_TIMEOUT: duration(100, 300_000).optional(),
  WEFT_MAX_CONNECTIONS: z.string().regex(/^\d{1,7}$/, "must be a whole number").transform(Number).refine((n) => n >= 1, "must be at least 1").optional(),
  WEFT_WEIGHT: z.string().regex(/^\d{1,6}$/, "must be a whole number").transform(Number).optional(),
  WEFT_ZONE: z.string().min(1).max(63).optional(),
  WEFT_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  WEFT_ACCESS_LOG: z.enum(["json", "off"]).default("off"),
  WEFT_MTLS: z.enum(["on", "off"]).default("on"),
  WEFT_CERT_LIFETIME: z.string().regex(/^\d{1,6}(s|m|h)$/, "must be a duration such as 24h or 90s").optional(),
  WEFT_CLUSTER_DOMAIN: z
    .string()
    .transform((text) => text.toLowerCase().replace(/\.$/, ""))
    .pipe(z.string().max(253).regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/, "must be a DNS name such as cluster.local"))
    .default(DEFAULT_CLUSTER_DOMAIN),
  WEFT_NAMESPACES: z
    .string()
    .transform((text) => text.split(",").map((ns) => ns.trim()).filter((ns) => ns !== ""))
    .pipe(z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "must be Kubernetes namespace names (DNS labels), separated by commas")))
    .optional(),
});

/** Formats a host for a URL (brackets around IPv6). */
const urlHost = (host: string) => (host.includes(":") ? `[${host}]` : host);

/**
 * Reads the sidecar's settings from `env`. Every problem is reported at once, each naming
 * its variable; secret values never appear in a problem.
 */
export function loadConfig(env: Record<string, string | undefined>): ConfigResult {
  // Empty strings count as unset, as a Kubernetes manifest writes `value: ""`.
  const defined = Object.fromEntries(Object.entries(env).filter(([key, value]) => key.startsWith("WEFT_") && value !== undefined && value !== ""));
  const parsed = EnvSchema.safeParse(defined);
  const tracing = readTracingEnv(env);
  const tracingProblems = tracing.ok ? [] : tracing.problems;
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? "environment");
      const message = issue.code === "invalid_type" && defined[name] === undefined ? "is required" : issue.message;
      return `${name} ${message}`;
    });
    return { ok: false, problems: [...problems, ...tracingProblems] };
  }
  const e = parsed.data;
  const problems: string[] = [...tracingProblems];
  let advertised = e.WEFT_ADVERTISED_ADDRESS?.replace(/\/+$/, "");
  if (advertised === undefined) {
    if (e.WEFT_POD_IP === undefined) problems.push("WEFT_POD_IP is required (the pod's IP from the downward API, status.podIP), unless WEFT_ADVERTISED_ADDRESS is set");
    else advertised = `http://${urlHost(e.WEFT_POD_IP)}:${e.WEFT_INBOUND_LISTEN.port}`;
  }
  const ports = [e.WEFT_OUTBOUND_LISTEN, e.WEFT_INBOUND_LISTEN, e.WEFT_ADMIN_LISTEN].map((l) => l.port).filter((p) => p !== 0);
  if (new Set(ports).size !== ports.length) problems.push("WEFT_OUTBOUND_LISTEN, WEFT_INBOUND_LISTEN and WEFT_ADMIN_LISTEN must use different ports");
  if (e.WEFT_APP_PORT !== undefined && ports.includes(e.WEFT_APP_PORT) && ["127.0.0.1", "localhost", "::1"].includes(e.WEFT_APP_HOST)) problems.push("WEFT_APP_PORT must differ from the sidecar's own ports");
  if (problems.length) return { ok: false, problems };
  const podName = e.WEFT_POD_NAME ?? hostname().toLowerCase();
  return {
    ok: true,
    config: {
      service: e.WEFT_SERVICE,
      controlUrl: e.WEFT_CONTROL_URL.replace(/\/+$/, ""),
      trustDomain: e.WEFT_TRUST_DOMAIN,
      tokenPath: e.WEFT_TOKEN_PATH,
      podName,
      advertisedAddress: advertised!,
      appOrigin: e.WEFT_APP_PORT === undefined ? undefined : `http://${urlHost(e.WEFT_APP_HOST)}:${e.WEFT_APP_PORT}`,
      outbound: e.WEFT_OUTBOUND_LISTEN,
      inbound: e.WEFT_INBOUND_LISTEN,
      admin: e.WEFT_ADMIN_LISTEN,
      shutdownGraceMs: e.WEFT_SHUTDOWN_GRACE ?? DEFAULT_SHUTDOWN_GRACE_MS,
      adminShutdownToken: e.WEFT_ADMIN_SHUTDOWN_TOKEN,
      leaseTtlMs: e.WEFT_LEASE_TTL ?? DEFAULT_LEASE_TTL_MS,
      snapshotWaitS: Math.round((e.WEFT_SNAPSHOT_WAIT ?? DEFAULT_SNAPSHOT_WAIT_S * 1000) / 1000),
      statsIntervalMs: e.WEFT_STATS_INTERVAL ?? DEFAULT_STATS_INTERVAL_MS,
      maxInFlight: e.WEFT_MAX_IN_FLIGHT ?? DEFAULT_MAX_IN_FLIGHT,
      headerTimeoutMs: e.WEFT_HEADER_TIMEOUT ?? DEFAULT_HEADER_TIMEOUT_MS,
      maxConnections: e.WEFT_MAX_CONNECTIONS ?? DEFAULT_MAX_CONNECTIONS,
      weight: e.WEFT_WEIGHT,
      zone: e.WEFT_ZONE,
      logLevel: e.WEFT_LOG_LEVEL,
      clusterDomain: e.WEFT_CLUSTER_DOMAIN,
      namespaces: e.WEFT_NAMESPACES ?? [],
      tracing: tracing.ok ? tracing.config : undefined,
      accessLog: e.WEFT_ACCESS_LOG === "json",
      mtls: e.WEFT_MTLS === "on",
      certLifetime: e.WEFT_CERT_LIFETIME,
    },
  };
}
