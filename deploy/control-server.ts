/**
 * The control plane for clusters without Cloudflare: the control worker in workerd (through
 * Miniflare, as `weft dev` runs it) inside a pod, its Durable Object and KV state on a
 * volume. At start, and every 10 minutes, it tells the control plane to trust this cluster's
 * ServiceAccount tokens, reading the issuer and JWKS from the API server's OIDC discovery
 * (what `kubectl get --raw /openid/v1/jwks` shows), so pods can exchange their projected
 * tokens for mesh identities.
 *
 * Environment: WEFT_ADMIN_TOKEN (required, from a Secret), WEFT_TRUST_DOMAIN (cluster.local),
 * WEFT_ISSUER_URL (the URL pods reach the control plane at), WEFT_DATA_DIR (/var/lib/weft),
 * WEFT_PORT (8788), WEFT_CLUSTER_NAME (in-cluster), WEFT_TOKEN_AUDIENCE (weft).
 */
import { readFile } from "node:fs/promises";
import { Agent } from "undici";
import { startControl } from "../workers/control/local.ts";

/** How often the cluster's JWKS is read again: 10 minutes, so a rotated signing key is trusted soon after. */
const CLUSTER_SYNC_MS = 10 * 60_000;

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const API_SERVER = "https://kubernetes.default.svc";

const env = process.env;
const adminToken = env.WEFT_ADMIN_TOKEN;
if (!adminToken || adminToken.length < 16) {
  process.stderr.write("weft-control: WEFT_ADMIN_TOKEN is required (at least 16 characters, from a Secret)\n");
  process.exit(78);
}
const port = Number(env.WEFT_PORT ?? 8788);
const control = await startControl({
  adminToken,
  port,
  host: "0.0.0.0",
  persistDir: env.WEFT_DATA_DIR ?? "/var/lib/weft",
  trustDomain: env.WEFT_TRUST_DOMAIN ?? "cluster.local",
  ...(env.WEFT_ISSUER_URL && { issuerUrl: env.WEFT_ISSUER_URL }),
});
const local = `http://127.0.0.1:${port}`;
process.stderr.write(`${JSON.stringify({ level: "info", event: "control-plane-listening", port })}\n`);

/** Reads the cluster's OIDC issuer and JWKS with this pod's own token and the cluster CA. */
async function syncCluster(): Promise<void> {
  const [token, ca] = await Promise.all([readFile(`${SERVICE_ACCOUNT_DIR}/token`, "utf8"), readFile(`${SERVICE_ACCOUNT_DIR}/ca.crt`, "utf8")]);
  const dispatcher = new Agent({ connect: { ca } });
  const get = async (path: string) => {
    const response = await fetch(`${API_SERVER}${path}`, { headers: { authorization: `Bearer ${token.trim()}` }, dispatcher } as RequestInit);
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return response.json() as Promise<Record<string, unknown>>;
  };
  const discovery = await get("/.well-known/openid-configuration");
  const jwks = await get("/openid/v1/jwks");
  const response = await fetch(`${local}/v1/identity/clusters/${env.WEFT_CLUSTER_NAME ?? "in-cluster"}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ issuer: discovery.issuer, audience: env.WEFT_TOKEN_AUDIENCE ?? "weft", jwks }),
  });
  if (!response.ok) throw new Error(`trusting the cluster: ${response.status} ${(await response.text()).slice(0, 200)}`);
  await dispatcher.close();
}

const sync = () =>
  syncCluster().then(
    () => process.stderr.write(`${JSON.stringify({ level: "info", event: "cluster-trusted" })}\n`),
    (error: unknown) => process.stderr.write(`${JSON.stringify({ level: "warn", event: "cluster-sync-failed", reason: String((error as Error).message ?? error).slice(0, 300) })}\n`),
  );
await sync();
const timer = setInterval(sync, CLUSTER_SYNC_MS);

const stop = async () => {
  clearInterval(timer);
  await control.stop();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
