/**
 * A small Kubernetes stand-in for the sidecar's end-to-end tests: the control plane in
 * workerd, a "cluster" whose ServiceAccount tokens it trusts (an ES256 key of our own, tokens
 * written to files as the kubelet projects them), and "pods", each an app server and a real
 * sidecar process on its own loopback address.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { freePort } from "../../workers/local.ts";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { request } from "undici";
import { SIDECAR_ENV, SIDECAR_NODE_FLAGS } from "../../sidecar/node-flags.ts";
import { startControl, type RunningControl, type StartControlOptions } from "../../workers/control/local.ts";

const ROOT = resolve(import.meta.dirname, "../..");

/** The admin secret of the tests' control planes. */
export const ADMIN = "sidecar-test-admin-0123456789abcdef";
/** The trust domain of the tests' mesh. */
export const TRUST_DOMAIN = "weft.test";
/** The tests' cluster's service-account issuer (`--service-account-issuer`). */
export const CLUSTER_ISSUER = "https://kubernetes.default.svc.cluster.local";
/** The audience `weft inject` asks the kubelet to project tokens for. */
export const TOKEN_AUDIENCE = "weft";

export { freePort };

/** Calls the control plane's admin API. */
export async function admin(control: { url: string }, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${control.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 300)}`);
  return { status: response.status, json };
}

/** A "cluster": signs projected ServiceAccount tokens the control plane has been told to trust. */
export interface Cluster {
  /** Writes a fresh token for `namespace`/`serviceAccount` into `file` (as the kubelet does). */
  project(file: string, namespace: string, serviceAccount: string, pod: string): Promise<void>;
}

/** Makes a key pair, registers its public JWKS with the control plane as cluster `name`. */
export async function createCluster(control: { url: string }, name = "test"): Promise<Cluster> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: `${name}-key-1`, alg: "ES256", use: "sig" };
  await admin(control, "PUT", `/v1/identity/clusters/${name}`, { issuer: CLUSTER_ISSUER, audience: TOKEN_AUDIENCE, jwks: { keys: [jwk] } });
  return {
    async project(file, namespace, serviceAccount, pod) {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({
        "kubernetes.io": { namespace, serviceaccount: { name: serviceAccount, uid: crypto.randomUUID() }, pod: { name: pod, uid: crypto.randomUUID() } },
      })
        .setProtectedHeader({ alg: "ES256", kid: jwk.kid, typ: "JWT" })
        .setIssuer(CLUSTER_ISSUER)
        .setAudience([TOKEN_AUDIENCE])
        .setSubject(`system:serviceaccount:${namespace}:${serviceAccount}`)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + 3600)
        .sign(privateKey);
      writeFileSync(file, token, { mode: 0o600 });
    },
  };
}

/** What the test app answers: who it is and what reached it. */
export interface Echo {
  pod: string;
  method: string;
  path: string;
  host: string | undefined;
  clientId: string | undefined;
  timeoutMs: string | undefined;
  attempt: string | undefined;
  identityHeader: string | undefined;
  bodyBytes: number;
  /** Every header the app received (Node's `req.headers`). */
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Calls to `/fail` by key, shared by every app of this process: a retry that the balancer
 * sends to another pod of the service still finds the count (its choice between two
 * endpoints follows their latencies, so it is not known in advance).
 */
const failures = new Map<string, number>();

/**
 * The app of a pod: echoes what it saw as JSON. `/slow?ms=N` answers after N ms; `/fail?times=N&key=K`
 * answers 503 to the first N calls with key K, on whichever pod; `/status/N` answers N; `/big?kb=N` streams N KiB;
 * `/overload?pod=P&s=S` answers 429 with `retry-after: S` when this is pod P (else 200).
 */
export function startApp(host: string, pod: string): Promise<App> {
  let calls = 0;
  let pending = 0;
  let mirrored = 0;
  let mirroredBytes = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    calls++;
    if (req.headers["weft-mirror"] === "1") mirrored++;
    pending++;
    res.once("close", () => pending--);
    const url = new URL(req.url ?? "/", "http://app");
    let bodyBytes = 0;
    req.on("data", (chunk: Buffer) => (bodyBytes += chunk.length));
    req.on("end", () => {
      if (req.headers["weft-mirror"] === "1") mirroredBytes += bodyBytes;
      const echo: Echo = {
        pod,
        method: req.method ?? "",
        path: url.pathname + url.search,
        host: req.headers.host,
        clientId: req.headers["weft-client-id"] as string | undefined,
        timeoutMs: req.headers["weft-timeout-ms"] as string | undefined,
        attempt: req.headers["weft-attempt"] as string | undefined,
        identityHeader: req.headers["weft-identity"] as string | undefined,
        bodyBytes,
        headers: req.headers,
      };
      const answer = (status: number) => {
        if (res.destroyed) return;
        res.writeHead(status, { "content-type": "application/json", "x-pod": pod });
        res.end(JSON.stringify(echo));
      };
      if (url.pathname === "/slow") return void setTimeout(() => answer(200), Number(url.searchParams.get("ms") ?? 100));
      if (url.pathname === "/fail") {
        const key = url.searchParams.get("key") ?? "";
        const seen = failures.get(key) ?? 0;
        failures.set(key, seen + 1);
        return answer(seen < Number(url.searchParams.get("times") ?? 1) ? 503 : 200);
      }
      if (url.pathname.startsWith("/status/")) return answer(Number(url.pathname.slice(8)));
      if (url.pathname === "/overload" && url.searchParams.get("pod") === pod) {
        res.writeHead(429, { "content-type": "application/json", "x-pod": pod, "retry-after": url.searchParams.get("s") ?? "1" });
        return void res.end(JSON.stringify(echo));
      }
      if (url.pathname === "/big") {
        const kb = Number(url.searchParams.get("kb") ?? 1024);
        res.writeHead(200, { "content-type": "application/octet-stream", "x-pod": pod });
        const chunk = Buffer.alloc(1024, 120);
        let sent = 0;
        const pump = () => {
          while (sent < kb) {
            sent++;
            if (!res.write(chunk)) return void res.once("drain", pump);
          }
          res.end();
        };
        return pump();
      }
      answer(200);
    });
  });
  return new Promise((resolvePort) =>
    server.listen(0, host, () => resolvePort({ server, port: (server.address() as { port: number }).port, calls: () => calls, pending: () => pending, mirrored: () => mirrored, mirroredBytes: () => mirroredBytes })),
  );
}

/** A pod's app: its server, and counts of what it received. */
export interface App {
  server: Server;
  port: number;
  calls: () => number;
  /** Requests received and not yet answered or seen closed. */
  pending: () => number;
  /** Requests that arrived marked as mirrored copies (`weft-mirror: 1`). */
  mirrored: () => number;
  /** Body bytes those copies carried. */
  mirroredBytes: () => number;
}

/** A running sidecar process. */
export interface SidecarProcess {
  child: ChildProcess;
  /** Everything it wrote to standard error so far (its JSON log). */
  log(): string;
  outbound: string;
  inbound: string;
  admin: string;
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>;
}

/** Starts `node sidecar/main.ts` with `env` (plus the heap flags), on the Node running the tests. */
export function spawnSidecar(env: Record<string, string>, addresses: { outbound: string; inbound: string; admin: string }): SidecarProcess {
  const child = spawn(process.execPath, [...SIDECAR_NODE_FLAGS, join(ROOT, "sidecar/main.ts")], {
    cwd: ROOT,
    env: { ...SIDECAR_ENV, PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  return { child, log: () => stderr, exited, ...addresses };
}

/** Polls `check` every 25 ms until it holds; throws after `timeoutMs`. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Polls `url` until it answers 200, or throws after `timeoutMs` with the sidecar's log. */
export async function waitReady(sidecar: SidecarProcess, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (sidecar.child.exitCode !== null) throw new Error(`the sidecar exited (${sidecar.child.exitCode}):\n${sidecar.log()}`);
    try {
      const response = await fetch(`${sidecar.admin}/ready`);
      await response.body?.cancel();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the sidecar was not ready within ${timeoutMs} ms:\n${sidecar.log()}`);
}

/** A pod: an app and its sidecar on one loopback address. */
export interface Pod {
  name: string;
  ip: string;
  service: string;
  app: App;
  sidecar: SidecarProcess;
  /** SIGKILLs the app and the sidecar at once, as a node failure would. */
  kill(): Promise<void>;
  /** Stops both gracefully (SIGTERM to the sidecar, then the app closes). */
  stop(): Promise<number | null>;
}

/** Options of `startPod`. */
export interface PodOptions {
  name: string;
  ip: string;
  service: string;
  namespace?: string;
  serviceAccount?: string;
  env?: Record<string, string>;
  /** Wait until `/ready` (default true). */
  ready?: boolean;
  /** Written as the projected token instead of one the cluster signs. */
  token?: string;
}

/** Starts a pod against `mesh`'s control plane. */
export async function startPod(mesh: { control: RunningControl; cluster: Cluster; dir: string }, options: PodOptions): Promise<Pod> {
  const { ip, name, service } = options;
  const app = await startApp(ip, name);
  const tokenFile = join(mesh.dir, `${name}.token`);
  if (options.token === undefined) await mesh.cluster.project(tokenFile, options.namespace ?? "shop", options.serviceAccount ?? service, name);
  else writeFileSync(tokenFile, options.token);
  const [outbound, inbound, adminPort] = await Promise.all([freePort(ip), freePort(ip), freePort(ip)]);
  const sidecar = spawnSidecar(
    {
      WEFT_SERVICE: service,
      WEFT_CONTROL_URL: mesh.control.url,
      WEFT_TRUST_DOMAIN: TRUST_DOMAIN,
      WEFT_TOKEN_PATH: tokenFile,
      WEFT_POD_NAME: name,
      WEFT_POD_IP: ip,
      WEFT_APP_HOST: ip,
      WEFT_APP_PORT: String(app.port),
      WEFT_OUTBOUND_LISTEN: `${ip}:${outbound}`,
      WEFT_INBOUND_LISTEN: `${ip}:${inbound}`,
      WEFT_ADMIN_LISTEN: `${ip}:${adminPort}`,
      WEFT_SHUTDOWN_GRACE: "5s",
      WEFT_STATS_INTERVAL: "1s",
      ...options.env,
    },
    { outbound: `http://${ip}:${outbound}`, inbound: `http://${ip}:${inbound}`, admin: `http://${ip}:${adminPort}` },
  );
  if (options.ready ?? true) {
    try {
      await waitReady(sidecar);
    } catch (error) {
      sidecar.child.kill("SIGKILL");
      app.server.close();
      throw error;
    }
  }
  const closeApp = () => {
    app.server.closeAllConnections();
    app.server.close();
  };
  return {
    name,
    ip,
    service,
    app,
    sidecar,
    async kill() {
      sidecar.child.kill("SIGKILL");
      closeApp();
      await sidecar.exited;
    },
    async stop() {
      if (sidecar.child.exitCode === null && sidecar.child.signalCode === null) sidecar.child.kill("SIGTERM");
      const code = await sidecar.exited;
      closeApp();
      return code;
    },
  };
}

/** A control plane, a cluster it trusts, and a folder for token files. */
export interface Mesh {
  control: RunningControl;
  cluster: Cluster;
  dir: string;
  pods: Pod[];
  /** Kills every pod still running and stops the control plane. */
  destroy(): Promise<void>;
}

/** Starts the control plane and the cluster. */
export async function startMesh(options: Partial<StartControlOptions> = {}): Promise<Mesh> {
  const control = await startControl({ adminToken: ADMIN, port: 0, trustDomain: TRUST_DOMAIN, ...options });
  const cluster = await createCluster(control);
  const dir = mkdtempSync(join(tmpdir(), "weft-sidecar-"));
  const pods: Pod[] = [];
  return {
    control,
    cluster,
    dir,
    pods,
    async destroy() {
      await Promise.all(pods.map((pod) => pod.kill().catch(() => {})));
      await control.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A call's outcome: status, headers and the body (parsed when JSON). */
export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/**
 * Sends a request to the app-facing outbound listener of `pod` in origin form with
 * `Host: service` (`fetch` would not let the test set `Host`, so this uses undici directly).
 */
export async function callVia(pod: Pod, service: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {}): Promise<Reply> {
  const response = await request(`${pod.sidecar.outbound}${path}`, {
    method: (init.method ?? "GET") as "GET",
    headers: { ...init.headers, host: service },
    ...(init.body !== undefined && { body: init.body }),
  });
  const text = await response.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.statusCode, headers: response.headers, body };
}

/** The value of one sample of `/metrics` text, or undefined. */
export function sample(metrics: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of metrics.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total = (total ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

/** The `/metrics` text of a sidecar. */
export async function metricsOf(sidecar: SidecarProcess): Promise<string> {
  return (await fetch(`${sidecar.admin}/metrics`)).text();
}
