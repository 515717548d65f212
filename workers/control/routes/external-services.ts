/** `GET|PUT|DELETE /v1/externalservices/:name` and `GET /v1/externalservices`: services outside the mesh (issue 16). */
import { ExternalServiceSchema } from "../../../src/core/config/index.ts";
import type { RouteKit } from "../app.ts";
import { resourceRoutes } from "./resources.ts";

/** Mounts the external service resources. */
export function externalServiceRoutes(kit: RouteKit): void {
  resourceRoutes(kit, "externalservices", "ExternalService", ExternalServiceSchema);
}
