/**
 * The route table of one service: its routes compiled once (regular expressions built,
 * path prefixes normalised) and sorted by Gateway API precedence, so matching a request is
 * a walk down one list that stops at the first match.
 */
import type { Route, RouteMatch } from "../config/schema.ts";
import type { MeshRequest } from "../fetch.ts";
import { wholeMatch } from "../regex/index.ts";

/** The name of the implicit route of a service that has no routes (Linkerd's default route). */
export const DEFAULT_ROUTE_NAME = "default";

/** What matching looks at: a request's method, URL and headers. */
export type RouteRequest = Pick<MeshRequest, "method" | "url" | "headers">;

/** The route a request matched, and which of its `matches` did (-1: it has none, so all). */
export interface MatchedRoute {
  route: Route;
  matchIndex: number;
}

/** The compiled routes of one service. Built once per config snapshot; matching is pure. */
export interface RouteTable {
  /** The service these routes belong to. */
  readonly service: string;
  /** The service's routes as given, or its one implicit default route. */
  readonly routes: readonly Route[];
  /** The route `request` takes under Gateway API precedence, or undefined when none matches. */
  match(request: RouteRequest): MatchedRoute | undefined;
}

/** Path kinds in precedence order (Gateway API: Exact, then PathPrefix; RegularExpression is ours to place). */
const PATH_RANK = { Exact: 0, PathPrefix: 1, RegularExpression: 2 } as const;

interface Candidate {
  route: Route;
  routeIndex: number;
  matchIndex: number;
  pathRank: number;
  /** The length that orders paths of one kind: the normalised prefix (or exact path). */
  pathLength: number;
  hasMethod: boolean;
  headerCount: number;
  queryCount: number;
  test(path: string, request: RouteRequest, query: () => URLSearchParams): boolean;
}

/**
 * Compiles the routes of `service` (routes of other services in `routes` are ignored) into a
 * table. Precedence follows the Gateway API HTTPRoute spec, across all matches of all routes:
 *
 * 1. an Exact path match;
 * 2. a PathPrefix match, the longest prefix first;
 * 3. a match that names the method;
 * 4. the most header matches;
 * 5. the most query parameter matches;
 * 6. then the order of `routes` (which stands in for Gateway API's "oldest route first": the
 *    control plane keeps routes in creation order) and, within a route, its first match.
 *
 * RegularExpression paths rank after every Exact and PathPrefix match, as Istio places them
 * (the spec leaves their precedence to the implementation); among themselves steps 3 to 6
 * order them. A match without a path is Gateway API's default, PathPrefix "/", and a route
 * without matches matches everything the same way. Regular expressions (path, header and
 * query values) are RE2's, as the schema checks them, match in time linear in the value
 * (`../regex`), and must match the whole value. The path is the URL's pathname, query
 * excluded: the proxy has normalised it first (`../path`), so matching is case-sensitive on
 * the normalised path.
 *
 * A service with no routes gets one implicit route, `default`, that sends everything to the
 * service itself, as Linkerd's default route does when no HTTPRoute is attached.
 */
export function createRouteTable(routes: readonly Route[], service: string): RouteTable {
  let own = routes.filter((route) => route.service === service);
  if (own.length === 0) own = [defaultRoute(service)];
  const candidates: Candidate[] = [];
  own.forEach((route, routeIndex) => {
    if (route.matches.length === 0) candidates.push(compile(route, routeIndex, -1, {}));
    route.matches.forEach((match, matchIndex) => candidates.push(compile(route, routeIndex, matchIndex, match)));
  });
  candidates.sort(byPrecedence);
  return {
    service,
    routes: own,
    match(request) {
      const url = new URL(request.url);
      let query: URLSearchParams | undefined;
      const lazyQuery = () => (query ??= url.searchParams);
      for (const candidate of candidates) {
        if (candidate.test(url.pathname, request, lazyQuery)) return { route: candidate.route, matchIndex: candidate.matchIndex };
      }
      return undefined;
    },
  };
}

/** The implicit route of a service that has no routes: everything, to the service itself. */
export function defaultRoute(service: string): Route {
  return { name: DEFAULT_ROUTE_NAME, service, matches: [], backends: [{ service, weight: 1 }] };
}

function byPrecedence(a: Candidate, b: Candidate): number {
  return (
    a.pathRank - b.pathRank ||
    b.pathLength - a.pathLength ||
    Number(b.hasMethod) - Number(a.hasMethod) ||
    b.headerCount - a.headerCount ||
    b.queryCount - a.queryCount ||
    a.routeIndex - b.routeIndex ||
    a.matchIndex - b.matchIndex
  );
}

function compile(route: Route, routeIndex: number, matchIndex: number, match: RouteMatch): Candidate {
  const pathType = match.path?.type ?? "PathPrefix";
  const pathValue = match.path?.value ?? "/";
  const testPath = pathTest(pathType, pathValue);
  // Gateway API: of several entries naming the same header (case-insensitively) or query
  // parameter (exactly), only the first counts; the rest are ignored.
  const headers = firstOfEach(match.headers ?? [], (name) => name.toLowerCase()).map((m) => ({ name: m.name, test: valueTest(m.type, m.value) }));
  const query = firstOfEach(match.query ?? [], (name) => name).map((m) => ({ name: m.name, test: valueTest(m.type, m.value) }));
  const method = match.method;
  return {
    route,
    routeIndex,
    matchIndex,
    pathRank: PATH_RANK[pathType],
    pathLength: pathType === "PathPrefix" ? trimSlash(pathValue).length : pathType === "Exact" ? pathValue.length : 0,
    hasMethod: method !== undefined,
    headerCount: headers.length,
    queryCount: query.length,
    test(path, request, params) {
      if (method !== undefined && request.method !== method) return false;
      if (!testPath(path)) return false;
      for (const header of headers) {
        const value = request.headers.get(header.name);
        if (value === null || !header.test(value)) return false;
      }
      if (query.length > 0) {
        const search = params();
        for (const param of query) {
          // Gateway API leaves a repeated parameter undefined and suggests the first value.
          const value = search.get(param.name);
          if (value === null || !param.test(value)) return false;
        }
      }
      return true;
    },
  };
}

/**
 * Exact: the path as the URL parser normalised it, equal to the value. PathPrefix: by path
 * element, ignoring a trailing "/" of the value, so "/api" and "/api/" both match "/api",
 * "/api/" and "/api/x" but not "/apix". RegularExpression: the whole path must match.
 */
function pathTest(type: "Exact" | "PathPrefix" | "RegularExpression", value: string): (path: string) => boolean {
  switch (type) {
    case "Exact":
      return (path) => path === value;
    case "PathPrefix": {
      const prefix = trimSlash(value);
      if (prefix === "") return () => true;
      const withSlash = `${prefix}/`;
      return (path) => path === prefix || path.startsWith(withSlash);
    }
    case "RegularExpression":
      return wholeMatch(value);
  }
}

/**
 * A header or query value test: exact and case-sensitive, or a regular expression matching
 * the whole value (Gateway API, as Envoy's `safe_regex`).
 */
function valueTest(type: "Exact" | "RegularExpression", value: string): (actual: string) => boolean {
  if (type === "Exact") return (actual) => actual === value;
  return wholeMatch(value);
}

function trimSlash(prefix: string): string {
  return prefix.replace(/\/+$/, "");
}

function firstOfEach<T extends { name: string }>(entries: readonly T[], key: (name: string) => string): T[] {
  const seen = new Set<string>();
  return entries.filter((entry) => {
    const k = key(entry.name);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
