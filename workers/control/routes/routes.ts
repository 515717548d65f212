/** `GET|PUT|DELETE /v1/routes/:name` and `GET /v1/routes`: routes, after Gateway API HTTPRoute. */
import { RouteSchema } from "../../../src/core/config/index.ts";
import type { RouteKit } from "../app.ts";
import { resourceRoutes } from "./resources.ts";

/** Mounts the route resources. */
export function routeRoutes(kit: RouteKit): void {
  resourceRoutes(kit, "routes", "Route", RouteSchema);
}
