/** `GET|PUT|DELETE /v1/policies/:name` and `GET /v1/policies`: authorization policies. */
import { AuthorizationPolicySchema } from "../../../src/core/config/index.ts";
import type { RouteKit } from "../app.ts";
import { resourceRoutes } from "./resources.ts";

/** Mounts the authorization policy resources. */
export function policyRoutes(kit: RouteKit): void {
  resourceRoutes(kit, "policies", "AuthorizationPolicy", AuthorizationPolicySchema);
}
