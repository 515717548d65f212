/**
 * Routing after Gateway API HTTPRoute: match a request to one of its service's routes by
 * Gateway API precedence, split its traffic among weighted backends, and bound it by the
 * route's request and per-try timeouts.
 */
export { DEFAULT_ROUTE_NAME, createRouteTable, defaultRoute } from "./table.ts";
export type { MatchedRoute, RouteRequest, RouteTable } from "./table.ts";
export { split, splitTo } from "./split.ts";
export type { SplitOptions, SplitToOptions } from "./split.ts";
export { headerFilters, modifyHeaders } from "./filters.ts";
export { route } from "./route.ts";
export { createMirrorPool, DEFAULT_MAX_MIRRORS_IN_FLIGHT, DEFAULT_MIRROR_MAX_BODY_BYTES, DEFAULT_MIRROR_TIMEOUT_MS, MIRROR_HEADER, mirror } from "./mirror.ts";
export type { MirrorOptions, MirrorPool } from "./mirror.ts";
export { FAULT_ERROR_CODE, fault } from "./fault.ts";
export type { FaultOptions } from "./fault.ts";
export type { RouteOptions } from "./route.ts";
export type { Backend, Filter, Route, RouteMatch } from "../config/schema.ts";
