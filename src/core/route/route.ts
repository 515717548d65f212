/**
 * The route level's entry: match each request to one route of its service, once, and hand it
 * to that route's stack. What a route's stack holds is the host's to assemble
 * (`src/proxy/outbound.ts`), in one explicit `stack(...)`.
 */
import type { Route } from "../config/schema.ts";
import { MeshError } from "../errors.ts";
import { withMeta, type Fetch } from "../fetch.ts";
import type { RouteTable } from "./table.ts";

/** Options of `route()`. */
export interface RouteOptions {
  /** The compiled routes of the destination service (`createRouteTable`). */
  table: RouteTable;
  /** Builds the stack of one route: called once per route when `route()` is built, never per request. */
  stacks: (route: Route) => Fetch;
}

/**
 * The top of a hop's outbound stack: matches each request against `table`, records the
 * route's name in the request's metadata (`metaOf(request).route`, for the layers below),
 * and hands the request to that route's stack. A request no route matches is
 * `MeshError("unknown-service")` (404): Gateway API answers an unmatched request with 404,
 * and our one 404 code names the route miss in its message.
 */
export function route(options: RouteOptions): Fetch {
  const stacks = new Map<Route, Fetch>();
  for (const r of options.table.routes) stacks.set(r, options.stacks(r));
  const { table } = options;
  return async (request) => {
    const matched = table.match(request);
    if (matched === undefined) {
      throw new MeshError("unknown-service", `no route of ${table.service} matches ${request.method} ${new URL(request.url).pathname}`);
    }
    return stacks.get(matched.route)!(withMeta(request, { route: matched.route.name }));
  };
}
