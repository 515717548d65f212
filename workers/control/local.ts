/**
 * Runs the control worker locally, without a Cloudflare account: bundles it with esbuild and
 * serves it from workerd through Miniflare, with KV and the Durable Objects persisted on disk
 * when asked. Tests, `weft dev`, the Node sidecar's tests and the CLI's tests start it here.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { hashBootstrapSecret } from "../../src/identity/index.ts";
import { COMPATIBILITY_DATE, ROOT, bundleWorker, freePort } from "../local.ts";
import { DEFAULT_MAX_WAITERS } from "./limits.ts";

export { COMPATIBILITY_DATE } from "../local.ts";

/** The local control plane's address when no port is given: SPEC.md section 9's default `WEFT_CONTROL_URL`. */
export const DEFAULT_LOCAL_PORT = 8788;

/**
 * Descriptors workerd holds per waiting long-poll: 2 (the client's connection and a second
 * socket per request in flight; measured by `bench/long-polls.ts` from /proc/<pid>/fd).
 */
export const FDS_PER_LONG_POLL = 2;

/**
 * Descriptors kept out of the long-poll budget: 256 (workerd idles at about 50: SQLite files
 * of the Durable Objects, KV and cache, its listening socket; the rest for admin calls).
 */
export const RESERVED_FDS = 256;

/**
 * The long-poll cap the local runner picks for a descriptor limit: so many that twice as many
 * long-polls at once (the cap held, as many again in flight to be refused) fit in what workerd
 * may open, and never above the worker's own default. Past the limit workerd exits on
 * `EMFILE` instead of answering 503 `overloaded`.
 */
export function longPollCapFor(fdLimit: number | undefined): number {
  if (fdLimit === undefined || !Number.isFinite(fdLimit)) return DEFAULT_MAX_WAITERS;
  return Math.max(1, Math.min(DEFAULT_MAX_WAITERS, Math.floor((fdLimit - RESERVED_FDS) / (2 * FDS_PER_LONG_POLL))));
}

/**
 * This process's open-file limit (Linux `/proc/self/limits`; workerd, started from here,
 * inherits it; Node raises the soft limit to the hard one at start), or undefined elsewhere.
 */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === "unlimited" ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** Options of `startControl`. */
export interface StartControlOptions {
  /** The admin bearer secret; only its SHA-256 reaches the worker. */
  adminToken: string;
  /** Port to listen on: 0 picks a free one; default 8788. */
  port?: number;
  /** Address to listen on; default 127.0.0.1 (loopback only). */
  host?: string;
  /** Folder for KV and Durable Object data; absent keeps it in a scratch folder (tmpfs where there is one) removed on stop. */
  persistDir?: string;
  /** Trust domain of issued identities; default `cluster.local`. */
  trustDomain?: string;
  /** The tokens' `iss`; default the local URL (`http://host:port`). */
  issuerUrl?: string;
  /** Least ms between KV snapshot publishes (default the worker's 1 s). */
  publishIntervalMs?: number;
  /** SPIFFE IDs whose control-plane tokens count as admin. */
  adminIdentities?: string[];
  /** The mesh-wide egress mode (`WEFT_EGRESS_MODE`); unset by default. */
  egressMode?: "allow" | "deny" | "allow-listed";
  /** The read-only bearer secret (dashboard, reads); only its SHA-256 reaches the worker. */
  readToken?: string;
  /** The tap-only bearer secret (`weft tap`); only its SHA-256 reaches the worker. */
  tapToken?: string;
  /**
   * Most snapshot long-polls held at once; default `longPollCapFor(openFileLimit())`: the
   * worker's default (2,000) where descriptors allow twice that, fewer where they do not.
   */
  maxLongPolls?: number;
}

/** A running local control plane. */
export interface RunningControl {
  /** Its base URL, e.g. `http://127.0.0.1:8788` (no trailing slash). */
  url: string;
  /** The Miniflare instance, for `getKVNamespace("WEFT_CONFIG")` and `getWorker()` in tests. */
  mf: Miniflare;
  /** The long-poll cap it runs with (`WEFT_MAX_LONG_POLLS`). */
  maxLongPolls: number;
  /**
   * Calls the control API with the admin credential (a JSON body, when given) and resolves
   * with the JSON answer; any status but 2xx rejects, naming the call and the answer.
   */
  admin(method: string, path: string, body?: unknown): Promise<unknown>;
  /**
   * Makes a fresh bootstrap secret for the router of `service` and registers its SHA-256 (the
   * control plane keeps only the hash), resolving with the secret for `WEFT_BOOTSTRAP_SECRET`.
   */
  workerSecret(service: string): Promise<string>;
  /** Stops workerd and frees the port; the persisted data stays. */
  stop(): Promise<void>;
}

/** The control worker bundled once per process (~150 ms). */
export function bundleControl(): Promise<string> {
  return bundleWorker("workers/control/index.ts");
}

/**
 * Starts the control worker in workerd on `host:port` and resolves once it answers. The
 * port is chosen before start (when 0) so the issuer URL can name it.
 */
export async function startControl(options: StartControlOptions): Promise<RunningControl> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port === 0 ? await freePort(host) : (options.port ?? DEFAULT_LOCAL_PORT);
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const script = await bundleControl();
  // Without a folder the data goes to a scratch folder, on tmpfs where the OS has one: SQLite's
  // syncs to a real disk would otherwise dominate every write's latency.
  const scratch = options.persistDir ? undefined : mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "weft-control-"));
  const dataDir = options.persistDir ? resolve(options.persistDir) : scratch!;
  const removeScratch = () => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  };
  const bindings: Record<string, string> = {
    WEFT_TRUST_DOMAIN: options.trustDomain ?? "cluster.local",
    WEFT_ISSUER_URL: options.issuerUrl ?? url,
    WEFT_ADMIN_TOKEN_SHA256: createHash("sha256").update(options.adminToken).digest("hex"),
  };
  if (options.publishIntervalMs !== undefined) bindings.WEFT_PUBLISH_INTERVAL_MS = String(options.publishIntervalMs);
  const maxLongPolls = options.maxLongPolls ?? longPollCapFor(openFileLimit());
  bindings.WEFT_MAX_LONG_POLLS = String(maxLongPolls);
  if (options.egressMode !== undefined) bindings.WEFT_EGRESS_MODE = options.egressMode;
  if (options.adminIdentities?.length) bindings.WEFT_ADMIN_IDENTITIES = options.adminIdentities.join(",");
  if (options.readToken !== undefined) bindings.WEFT_READ_TOKEN_SHA256 = createHash("sha256").update(options.readToken).digest("hex");
  if (options.tapToken !== undefined) bindings.WEFT_TAP_TOKEN_SHA256 = createHash("sha256").update(options.tapToken).digest("hex");
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      name: "weft-control",
      modules: [{ type: "ESModule", path: join(ROOT, ".weft/build/control/index.js"), contents: script }],
      modulesRoot: ROOT,
      compatibilityDate: COMPATIBILITY_DATE,
      bindings,
      kvNamespaces: ["WEFT_CONFIG"],
      durableObjects: { STORE: { className: "Store", useSQLite: true }, STATS: { className: "Stats", useSQLite: true } },
      // Miniflare 5 persists every resource under one root; v4's kvPersist/durableObjectsPersist are ignored.
      resourcePersistencePath: dataDir,
      cf: false,
      host,
      port,
    }),
  );
  try {
    await mf.ready;
  } catch (error) {
    await mf.dispose().catch(() => {});
    removeScratch();
    throw error;
  }
  let stopped: Promise<void> | undefined;
  const admin = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${options.adminToken}`, "content-type": "application/json" },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw new Error(`control API ${method} ${path} answered ${response.status}: ${await response.text()}`);
    return response.json();
  };
  return {
    url,
    mf,
    maxLongPolls,
    admin,
    async workerSecret(service) {
      const secret = randomBytes(32).toString("base64url");
      await admin("PUT", `/v1/identity/workers/${service}`, { secretSha256: await hashBootstrapSecret(secret) });
      return secret;
    },
    stop: () => (stopped ??= mf.dispose().finally(removeScratch)),
  };
}
