/**
 * The demo mesh that `weft dev` (`npm start`) runs on the embedded local runtime: the control
 * worker, and `web → orders → inventory` with orders in two versions split 90/10, each app
 * behind its own router, in workerd. State (config, keys, metrics) persists in `.weft/`.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ADMIN_TOKEN_FILE, CONTROL_URL_FILE } from "../../cli/connection.ts";

/** The local mesh's read-only token (dashboard login, reads), beside the admin token. */
export const READ_TOKEN_FILE = "read-token";
/** The local mesh's tap-only token (`weft tap`), beside the admin token. */
export const TAP_TOKEN_FILE = "tap-token";
import { startControl, type RunningControl } from "../../workers/control/local.ts";
import { startRouters, type LocalRouter, type RunningRouters } from "../../workers/router/local.ts";

/** Where the demo listens: SPEC.md section 9's local addresses. */
export const DEMO_ENTRY_PORT = 8787;
export const DEMO_CONTROL_PORT = 8788;
/** The demo's config: what `weft dev` applies on start, and `weft apply -f` can apply again. */
export const DEMO_CONFIG_PATH = join(import.meta.dirname, "mesh.json");
/** The trust domain of the local mesh. */
export const DEMO_TRUST_DOMAIN = "weft.local";

/** Options of `startDemoMesh`. */
export interface DemoMeshOptions {
  /** The project folder; state goes to `<dir>/.weft/`. */
  dir: string;
  entryPort?: number;
  controlPort?: number;
  /** Percent of inventory calls that fail (to show retries); default 5. */
  inventoryFailPercent?: number;
}

/** The running demo. */
export interface DemoMesh {
  entryUrl: string;
  controlUrl: string;
  adminTokenPath: string;
  control: RunningControl;
  routers: RunningRouters;
  stop(): Promise<void>;
}

/**
 * The admin credential of the local mesh: made on first start, kept in `.weft/admin-token`
 * with mode 0600 (SPEC.md section 6), read back after.
 */
export async function localAdminToken(weftDir: string, file: string = ADMIN_TOKEN_FILE): Promise<string> {
  const path = join(weftDir, file);
  try {
    const token = (await readFile(path, "utf8")).trim();
    if (token.length >= 32) return token;
  } catch {
    // first start: make one below
  }
  await mkdir(weftDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString("base64url");
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return token;
}

/**
 * Writes the URL the local control API runs on beside the admin token (`.weft/control-url`),
 * so the CLI sends that token to this URL, and only to it, whatever port `weft dev` was given.
 */
export async function recordControlUrl(weftDir: string, url: string): Promise<void> {
  await writeFile(join(weftDir, CONTROL_URL_FILE), `${url}\n`, { mode: 0o600 });
}

const ROUTERS = [
  { service: "web", app: "demo-web" },
  { service: "orders-v1", app: "demo-orders-v1" },
  { service: "orders-v2", app: "demo-orders-v2" },
  { service: "inventory", app: "demo-inventory" },
];

/**
 * Waits until the entry answers 200 through every hop (each router's first token and config
 * are fetched then), so the URL `weft dev` prints works at the first try.
 */
async function answered(url: string, withinMs = 30_000): Promise<void> {
  const until = Date.now() + withinMs;
  let last = "no answer";
  while (Date.now() < until) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      const text = await response.text();
      if (response.ok) return;
      last = `${response.status}: ${text.slice(0, 300)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the demo's entry ${url} did not answer 200 within ${withinMs / 1000} s (last: ${last})`);
}

/** Starts the demo mesh, applies its config through the control API, and resolves when it answers. */
export async function startDemoMesh(options: DemoMeshOptions): Promise<DemoMesh> {
  const weftDir = resolve(options.dir, ".weft");
  const adminToken = await localAdminToken(weftDir);
  const controlPort = options.controlPort ?? DEMO_CONTROL_PORT;
  const entryPort = options.entryPort ?? DEMO_ENTRY_PORT;
  const persistDir = join(weftDir, "state");
  // Beside the admin token, a read-only one (dashboard) and a tap-only one (`weft tap`), made the same way.
  const readToken = await localAdminToken(weftDir, READ_TOKEN_FILE);
  const tapToken = await localAdminToken(weftDir, TAP_TOKEN_FILE);
  const control = await startControl({ adminToken, readToken, tapToken, port: controlPort, persistDir, trustDomain: DEMO_TRUST_DOMAIN });
  try {
    await recordControlUrl(weftDir, control.url);
    // The demo's config, applied all or none, as `weft apply -f examples/demo/mesh.json` would.
    const resources = JSON.parse(await readFile(DEMO_CONFIG_PATH, "utf8")) as unknown[];
    await control.admin("POST", "/v1/apply", { resources });
    // A fresh bootstrap secret per router on every start: only its hash is kept, by the control plane.
    const routers: LocalRouter[] = [];
    for (const { service, app } of ROUTERS) {
      const secret = await control.workerSecret(service);
      // Metrics reach the control plane every second and routers read the published config
      // every second, so `weft stat`, the dashboard and `weft tap` follow a change within seconds.
      routers.push({ service, secret, app: { worker: app }, vars: { WEFT_STATS_INTERVAL_MS: "1000", WEFT_CONFIG_TTL_MS: "1000" }, ...(service === "web" && { port: entryPort }) });
    }
    const demo = (name: string) => join("examples/demo", `${name}.ts`);
    const running = await startRouters({
      control: `127.0.0.1:${controlPort}`,
      trustDomain: DEMO_TRUST_DOMAIN,
      persistDir,
      routers,
      apps: [
        { name: "demo-web", entry: demo("web"), mesh: "web" },
        { name: "demo-orders-v1", entry: demo("orders"), mesh: "orders-v1", vars: { VERSION: "v1" } },
        { name: "demo-orders-v2", entry: demo("orders"), mesh: "orders-v2", vars: { VERSION: "v2" } },
        { name: "demo-inventory", entry: demo("inventory"), vars: { FAIL_PERCENT: String(options.inventoryFailPercent ?? 5) } },
      ],
    });
    const entryUrl = `http://127.0.0.1:${entryPort}/`;
    try {
      await answered(entryUrl);
    } catch (error) {
      await running.stop();
      throw error;
    }
    return {
      entryUrl,
      controlUrl: control.url,
      adminTokenPath: join(weftDir, ADMIN_TOKEN_FILE),
      control,
      routers: running,
      stop: async () => {
        await running.stop();
        await control.stop();
      },
    };
  } catch (error) {
    await control.stop();
    throw error;
  }
}
