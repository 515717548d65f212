/**
 * Runs routers locally, without a Cloudflare account: the router worker, bundled once, is
 * started in workerd through Miniflare once per service, beside the apps it fronts, all in
 * one Miniflare instance so service bindings join them as on Cloudflare. The control worker
 * runs apart (`workers/control/local.ts`) and is bound in as an external service, so it can
 * be stopped and started on its own. Used by `weft dev`, the end-to-end tests and benches.
 */
import { join, resolve } from "node:path";
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { COMPATIBILITY_DATE, ROOT, bundleWorker } from "../local.ts";

export { COMPATIBILITY_DATE } from "../local.ts";

/** One router: the service it fronts and what is behind it. */
export interface LocalRouter {
  service: string;
  /**
   * Names this deployment when a service has several (e.g. one per region): the worker is
   * `router-<name>` and other routers reach it as binding `<NAME>`. Default: the service.
   */
  name?: string;
  /** Its bootstrap secret (`WEFT_BOOTSTRAP_SECRET`). */
  secret: string;
  /** The app behind it: a worker of `apps` (by name), or an origin URL. */
  app: { worker: string } | { origin: string };
  /** Listen on this loopback port too (the entry of the mesh), besides Miniflare's own. */
  port?: number;
  /** Extra vars (e.g. `WEFT_CONFIG_TTL_MS`). */
  vars?: Record<string, string>;
  /**
   * Rate Limiting bindings (`[[ratelimits]]`), by binding name: routers naming the same
   * `namespace_id` share one counter store, as on Cloudflare.
   */
  ratelimits?: Record<string, { namespace_id: string; simple: { limit: number; period: 10 | 60 } }>;
}

/** One app worker: a module (TypeScript or JavaScript) bundled for workerd. */
export interface LocalApp {
  name: string;
  entry: string;
  /** The router (by name) whose `Outbound` entrypoint is its `MESH` binding. */
  mesh?: string;
  vars?: Record<string, string>;
  /** Other service bindings, by binding name: the worker each names. */
  services?: Record<string, string>;
  /** Listen on this loopback port too (to reach the app directly over HTTP). */
  port?: number;
}

/** Options of `startRouters`. */
export interface StartRoutersOptions {
  /** The control plane's address, `host:port` of its HTTP listener. */
  control: string;
  trustDomain: string;
  routers: LocalRouter[];
  apps?: LocalApp[];
  /**
   * The folder the control plane persists to: the routers then read its KV snapshot, as on
   * Cloudflare. Without it they read the snapshot from the control worker.
   */
  persistDir?: string;
}

/** Routers and apps running in workerd. */
export interface RunningRouters {
  mf: Miniflare;
  /** Sends a request to the inbound side of the router named `name` (its service by default). */
  inbound(name: string, request: Request): Promise<Response>;
  /** Sends a request to the app worker `name` (which calls through its router's outbound side). */
  app(name: string, request: Request): Promise<Response>;
  stop(): Promise<void>;
}

/** The name of the worker of router `name` (a service's name, unless it has several routers). */
export const routerName = (name: string) => `router-${name}`;

/** The binding under which every router reaches router `name`: `ORDERS_V1` for `orders-v1`. */
export const bindingName = (name: string) => name.toUpperCase().replace(/-/g, "_");

/** Starts the routers and apps; resolves once workerd answers. */
export async function startRouters(options: StartRoutersOptions): Promise<RunningRouters> {
  const router = await bundleWorker("workers/router/index.ts");
  const routerBindings = Object.fromEntries(options.routers.map((r) => [bindingName(r.name ?? r.service), routerName(r.name ?? r.service)]));
  const workers: Record<string, unknown>[] = [];
  for (const r of options.routers) {
    const bindings: Record<string, string> = { WEFT_SERVICE: r.service, WEFT_TRUST_DOMAIN: options.trustDomain, WEFT_BOOTSTRAP_SECRET: r.secret, ...r.vars };
    const serviceBindings: Record<string, unknown> = { ...routerBindings, CONTROL: { external: { address: options.control, http: {} } } };
    if ("worker" in r.app) serviceBindings.APP = r.app.worker;
    else bindings.APP_ORIGIN = r.app.origin;
    const name = routerName(r.name ?? r.service);
    workers.push({
      name,
      modules: [{ type: "ESModule", path: join(ROOT, `.weft/build/${name}/index.js`), contents: router }],
      modulesRoot: ROOT,
      compatibilityDate: COMPATIBILITY_DATE,
      bindings,
      serviceBindings,
      kvNamespaces: ["WEFT_CONFIG"],
      ...(r.ratelimits !== undefined && { ratelimits: r.ratelimits }),
      ...(r.port !== undefined && { unsafeDirectSockets: [{ host: "127.0.0.1", port: r.port }] }),
    });
  }
  for (const a of options.apps ?? []) {
    workers.push({
      name: a.name,
      modules: [{ type: "ESModule", path: join(ROOT, `.weft/build/${a.name}/index.js`), contents: await bundleWorker(a.entry) }],
      modulesRoot: ROOT,
      compatibilityDate: COMPATIBILITY_DATE,
      bindings: a.vars ?? {},
      serviceBindings: { ...a.services, ...(a.mesh && { MESH: { name: routerName(a.mesh), entrypoint: "Outbound" } }) },
      ...(a.port !== undefined && { unsafeDirectSockets: [{ host: "127.0.0.1", port: a.port }] }),
    });
  }
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      workers,
      cf: false,
      host: "127.0.0.1",
      port: 0,
      ...(options.persistDir ? { resourcePersistencePath: resolve(options.persistDir) } : {}),
    } as Parameters<typeof convertV4MiniflareOptions>[0]),
  );
  try {
    await mf.ready;
  } catch (error) {
    await mf.dispose().catch(() => {});
    throw error;
  }
  const fetchVia = async (worker: string, request: Request) => {
    const target = await mf.getWorker(worker);
    return (await target.fetch(request.url, { method: request.method, headers: [...request.headers], body: request.body ? await request.arrayBuffer() : null, redirect: "manual" })) as unknown as Response;
  };
  let stopped: Promise<void> | undefined;
  return {
    mf,
    inbound: (name, request) => fetchVia(routerName(name), request),
    app: (name, request) => fetchVia(name, request),
    stop: () => (stopped ??= mf.dispose()),
  };
}
