/**
 * How a data-plane host talks to the control plane (SPEC.md section 6): exchanges its
 * bootstrap credential for identity tokens, reads (and long-polls) the snapshot, registers
 * its endpoint with a lease, and pushes metric deltas. The router reaches the control worker
 * through its `CONTROL` service binding, the sidecar over HTTP: both are a Web `fetch`.
 */
import { SnapshotSchema, validate, type Snapshot } from "../core/config/index.ts";
import { MeshError } from "../core/errors.ts";
import type { TapBatch } from "../core/tap/index.ts";
import type { MetricsDelta } from "../core/metrics/index.ts";
import { createTokenSource, type TokenSource } from "../identity/index.ts";

/** The audience of tokens for calls to the control plane (SPEC.md section 4). */
export const CONTROL_AUDIENCE = "weft-control";

/** What a workload proves itself with: a router's bootstrap secret, or a pod's ServiceAccount token. */
export type BootstrapCredential =
  | { kind: "worker"; service: string; secret: string }
  /** Read afresh for every exchange: the kubelet rotates the projected token file. */
  | { kind: "serviceAccount"; token: () => Promise<string> | string };

/** Options of `createControlClient`. */
export interface ControlClientOptions {
  /** Reaches the control plane: a service binding's `fetch`, or the global `fetch`. */
  fetch: (request: Request) => Promise<Response>;
  /** The control plane's base URL (any host for a service binding, e.g. `http://control`). */
  url: string;
  credential: BootstrapCredential;
  /** Wall-clock epoch ms; `Date.now` unless a test fixes it. */
  now?: () => number;
  /** Receives background token renewals (a Workers host hands them to `ctx.waitUntil`). */
  background?: (task: Promise<unknown>) => void;
}

/** An endpoint registration: where this instance listens, for how long. */
export interface Registration {
  address: string;
  weight?: number;
  zone?: string;
  labels?: Record<string, string>;
  /** Lease duration, e.g. `"30s"`. */
  ttl?: string;
}

/** The control plane as a data-plane host sees it. Per isolate or process. */
export interface ControlClient {
  /** This workload's tokens, per destination audience, renewed in the background. */
  tokens: TokenSource;
  /** The `iss` of the tokens the control plane issues, learned from the first one. */
  issuer(): string | undefined;
  /**
   * The snapshot, or undefined when the one held (`version`) is still current. With `wait`
   * seconds, the control plane holds the call until a newer version exists (long-poll).
   */
  snapshot(options?: { version?: number; wait?: number; signal?: AbortSignal }): Promise<Snapshot | undefined>;
  /** Registers (or renews) endpoint `id` of `service`. */
  register(service: string, id: string, registration: Registration): Promise<void>;
  /** Removes endpoint `id` of `service` (on shutdown). */
  deregister(service: string, id: string): Promise<void>;
  /** Pushes a metrics delta, tagged with `host` (this instance) when given. */
  pushStats(delta: MetricsDelta, host?: string): Promise<void>;
  /** Pushes sampled `weft tap` events (issue 14). */
  pushTapEvents(batch: TapBatch): Promise<void>;
  /**
   * Mutual TLS: exchanges the bootstrap credential and a CSR over the workload's own key for
   * an X.509-SVID (`POST /v1/identity/certificate`).
   */
  certificate(csr: string, lifetime?: string): Promise<IssuedCertificateAnswer>;
}

/** The control plane's answer to a certificate request (PEM, ISO 8601 times). */
export interface IssuedCertificateAnswer {
  id: string;
  certificate: string;
  chain: string[];
  trustAnchors: string[];
  notBefore: string;
  expiresAt: string;
}

/** The claims part of a JWT, decoded without verification (only for our own tokens). */
function claimsOf(token: string): Record<string, unknown> | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const text = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A `MeshError` for a failed control-plane call, with the status but never a token. */
async function failure(what: string, response: Response): Promise<MeshError> {
  let detail = "";
  try {
    const body = (await response.json()) as { error?: { message?: string } };
    if (typeof body.error?.message === "string") detail = `: ${body.error.message.slice(0, 200)}`;
  } catch {
    // not JSON: the status says enough
  }
  const code = response.status === 401 ? "unauthenticated" : response.status === 403 ? "forbidden" : "upstream-unreachable";
  return new MeshError(code, `control plane refused ${what} (${response.status})${detail}`);
}

/** Creates a client for the control plane at `options.url`. */
export function createControlClient(options: ControlClientOptions): ControlClient {
  const base = options.url.replace(/\/+$/, "");
  let issuer: string | undefined;

  const withCredential = async (body: Record<string, unknown>) => {
    const credential = options.credential;
    if (credential.kind === "worker") body.worker = { service: credential.service, secret: credential.secret };
    else body.serviceAccountToken = await credential.token();
    return body;
  };

  const exchange = async (audience: string): Promise<string> => {
    const body = await withCredential({ audience });
    const response = await options.fetch(
      new Request(`${base}/v1/identity/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    );
    if (!response.ok) throw await failure("the identity exchange", response);
    const { token } = (await response.json()) as { token?: unknown };
    if (typeof token !== "string") throw new MeshError("unauthenticated", "control plane answered the identity exchange without a token");
    const iss = claimsOf(token)?.iss;
    if (typeof iss === "string") issuer = iss;
    return token;
  };

  const tokenOptions: Parameters<typeof createTokenSource>[0] = { fetchToken: exchange };
  if (options.now) tokenOptions.now = options.now;
  if (options.background) tokenOptions.background = options.background;
  const tokens = createTokenSource(tokenOptions);

  const call = async (method: string, path: string, init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}) => {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${await tokens.token(CONTROL_AUDIENCE)}`);
    const requestInit: RequestInit = { method, headers };
    if (init.body !== undefined) {
      headers.set("content-type", "application/json");
      requestInit.body = JSON.stringify(init.body);
    }
    if (init.signal) requestInit.signal = init.signal;
    return options.fetch(new Request(`${base}${path}`, requestInit));
  };

  return {
    tokens,
    issuer: () => issuer,
    async snapshot({ version, wait, signal } = {}) {
      const query = wait ? `?wait=${wait}` : "";
      const headers: Record<string, string> = version !== undefined && version >= 0 ? { "if-none-match": `"${version}"` } : {};
      const response = await call("GET", `/v1/snapshot${query}`, { headers, ...(signal && { signal }) });
      if (response.status === 304) return undefined;
      if (!response.ok) throw await failure("the snapshot read", response);
      const checked = validate(SnapshotSchema, await response.json());
      if (!checked.ok) throw new MeshError("upstream-unreachable", `control plane sent an invalid snapshot (${checked.issues.length} problems)`);
      return checked.value;
    },
    async register(service, id, registration) {
      const response = await call("PUT", `/v1/services/${encodeURIComponent(service)}/endpoints/${encodeURIComponent(id)}`, { body: registration });
      if (!response.ok) throw await failure("the endpoint registration", response);
      await response.body?.cancel();
    },
    async deregister(service, id) {
      const response = await call("DELETE", `/v1/services/${encodeURIComponent(service)}/endpoints/${encodeURIComponent(id)}`);
      if (!response.ok && response.status !== 404) throw await failure("the endpoint removal", response);
      await response.body?.cancel();
    },
    async certificate(csr, lifetime) {
      const body = await withCredential(lifetime === undefined ? { csr } : { csr, lifetime });
      const response = await options.fetch(
        new Request(`${base}/v1/identity/certificate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
      );
      if (!response.ok) throw await failure("the certificate request", response);
      const answer = (await response.json()) as Partial<IssuedCertificateAnswer>;
      if (typeof answer.certificate !== "string" || !Array.isArray(answer.chain) || !Array.isArray(answer.trustAnchors) || typeof answer.expiresAt !== "string" || typeof answer.notBefore !== "string") {
        throw new MeshError("upstream-unreachable", "control plane answered the certificate request without a certificate");
      }
      return answer as IssuedCertificateAnswer;
    },
    async pushStats(delta, host) {
      const query = host ? `?host=${encodeURIComponent(host)}` : "";
      const response = await call("POST", `/v1/stats${query}`, { body: delta });
      if (!response.ok) throw await failure("the metrics push", response);
      await response.body?.cancel();
    },
    async pushTapEvents(batch) {
      const response = await call("POST", "/v1/tap-events", { body: batch });
      if (!response.ok) throw await failure("the tap events push", response);
      await response.body?.cancel();
    },
  };
}
