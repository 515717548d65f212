/** `GET|PUT|DELETE /v1/tracing/:name` and `GET /v1/tracing`: the mesh-wide Tracing resource, named `mesh` (docs/tracing.md). */
import { MeshTracingSchema } from "../../../src/core/config/index.ts";
import type { RouteKit } from "../app.ts";
import { resourceRoutes } from "./resources.ts";

/** Mounts the Tracing resource. */
export function tracingRoutes(kit: RouteKit): void {
  resourceRoutes(kit, "tracing", "Tracing", MeshTracingSchema);
}
