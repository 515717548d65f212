/**
 * The router worker: deployed in front of each service. Its default `fetch` is the inbound
 * side; the `Outbound` entrypoint, reachable only through the app's service binding, is the
 * outbound side. Wiring only: the logic is in `app.ts`.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { createRouterApp } from "./app.ts";
import type { RouterApp } from "./app.ts";

// One router app per isolate: its balancers, breakers, budgets, caches and metrics live here.
let app: RouterApp | undefined;
const appFor = (env: unknown): RouterApp => (app ??= createRouterApp({ env: env as Record<string, unknown> }));

export default {
  fetch(request: Request, env: unknown, ctx: ExecutionContext): Promise<Response> {
    return appFor(env).inbound(request, ctx);
  },
} satisfies ExportedHandler;

/** The outbound side: the app calls `env.MESH.fetch("http://<service>/path")`. */
export class Outbound extends WorkerEntrypoint {
  override fetch(request: Request): Promise<Response> {
    return appFor(this.env).outbound(request, this.ctx);
  }
}
