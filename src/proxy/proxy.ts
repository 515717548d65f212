/**
 * The data plane assembled from config: the outbound and inbound stacks of one workload,
 * built from the snapshot and rebuilt when it changes, with the per-isolate (or per-process)
 * state of balancers, breakers, retry budgets and rate limiters kept across rebuilds. The
 * router worker and the Node sidecar are thin hosts around this.
 */
import { balance, createEndpointSet, type Balancer, type EndpointInit, type EndpointSet } from "../core/balance/index.ts";
import { systemClock, type Clock, type Random } from "../core/clock.ts";
import { durationMs, type Endpoint, type Route, type Service, type Snapshot } from "../core/config/index.ts";
import { MeshError } from "../core/errors.ts";
import { withMeta, type Fetch, type MeshRequest } from "../core/fetch.ts";
import { classify, type Registry } from "../core/metrics/index.ts";
import { normalizeRequest } from "../core/path/index.ts";
import { createRateLimiter, type RateLimiter } from "../core/ratelimit/index.ts";
import { createRetryBudget, type RetryBudget } from "../core/retry/index.ts";
import { createRouteTable, defaultRoute, route, type RouteTable } from "../core/route/index.ts";
import type { TokenSource, Verifier } from "../identity/index.ts";
import { inboundStack } from "./inbound.ts";
import { endpointStack, routeStack, type RouteLevel } from "./outbound.ts";
import { serviceNames, serviceOf, serviceOfHost, type NamingOptions, type ServiceNames } from "./naming.ts";

/** How a host reaches one endpoint: a service binding, or `fetch` to an origin. */
export type Connect = (endpoint: Endpoint, service: Service) => Fetch;

/** Options of `createProxy`. */
export interface ProxyOptions {
  /** The service this workload is (`WEFT_SERVICE`): what its inbound side fronts. */
  service: string;
  /** This workload's SPIFFE ID, the `src` label of its outbound metrics. */
  identity?: string;
  registry: Registry;
  /** Reaches an endpoint of a destination service (outbound). */
  connect: Connect;
  /** The app behind the inbound side. */
  app: Fetch;
  /** Outbound identity: tokens per destination audience. Without it, calls go without `weft-identity`. */
  tokens?: TokenSource;
  /**
   * Endpoints the host reaches over mutual TLS: their calls carry no `weft-identity`, since
   * the client certificate proves the caller (docs/identity.md).
   */
  secured?: (endpoint: Endpoint) => boolean;
  /** Inbound identity: verifies callers' tokens. Without it every caller is unauthenticated. */
  verifier?: Verifier;
  clock?: Clock;
  random?: Random;
  /** Wall-clock epoch ms, for endpoint leases; `Date.now` unless a test fixes it. */
  now?: () => number;
  /** Which hosts name a mesh service (`naming.ts`); without it only bare names (`orders`) do. */
  naming?: NamingOptions;
}

/** One workload's data plane: its two sides and the config they run on. */
export interface Proxy {
  /** Calls from the app to other services; the request's host names the destination service (`naming.ts`). */
  outbound: Fetch;
  /** Calls from other services (or the internet) to this one. */
  inbound: Fetch;
  /** Applies a new snapshot; state of endpoints, budgets and limiters that stay is kept. */
  update(snapshot: Snapshot): void;
  /** The version of the snapshot in force, or -1 before the first. */
  version(): number;
  /**
   * The service of the config in force that `host` (a URL's serialized host, no port) names
   * under the naming rule, or undefined: what a host checks a tunnel's authority with.
   */
  serviceFor(host: string): string | undefined;
}

interface Backend {
  set: EndpointSet;
  balancer: Balancer;
  /** What the set was built for: a change of balancer or failure accrual rebuilds it. */
  key: string;
}

/** The `unknown-service` for a host that is no service's name under `names` (built on the error path only). */
function notAName(request: MeshRequest, names: ServiceNames): MeshError {
  let host = "";
  try {
    host = new URL(request.url).host.slice(0, 100);
  } catch {
    // A Request's URL always parses; keep the message without the host if it ever does not.
  }
  const forms = names.namespaces.size
    ? `svc, svc.<ns>, svc.<ns>.svc or svc.<ns>.${names.svcDomain} with <ns> one of ${[...names.namespaces].join(", ")}`
    : "its bare name (http://orders/...)";
  return new MeshError("unknown-service", `"${host}" names no service of the mesh: a service is called ${forms}`);
}

const EMPTY: Snapshot = { version: -1, services: [], routes: [], policies: [], jwks: { keys: [] } };

/**
 * Builds a workload's data plane. Both sides first normalize the request's path
 * (`core/path`: refused with 400 when it cannot be), so policy, routes and the next hop see
 * one path. Then, per destination service, the outbound route table over `routeStack`
 * (src/proxy/outbound.ts: route → backend → endpoint levels), and per inbound route,
 * `inboundStack` (src/proxy/inbound.ts) over the app. Refusals by path normalization,
 * identity or policy are counted in the metrics here, since they are thrown before the
 * metrics layer.
 */
export function createProxy(options: ProxyOptions): Proxy {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const { registry, service: self } = options;
  const names = serviceNames(options.naming);

  let snapshot = EMPTY;
  let services = new Map<string, Service>();
  // Per destination: state that must outlive snapshot updates.
  const backends = new Map<string, Backend>();
  const budgets = new Map<string, { key: string; budget: RetryBudget }>();
  const connections = new Map<string, Fetch>();
  // Per destination, rebuilt on every update: the route stacks.
  let routers = new Map<string, Fetch>();

  const connectionOf = (service: Service, endpoint: Endpoint): Fetch => {
    const key = `${service.name}\u0000${endpoint.address}\u0000${endpoint.identity ?? ""}`;
    let fetch = connections.get(key);
    if (!fetch) {
      const tokens = options.secured?.(endpoint) ? undefined : options.tokens;
      fetch = endpointStack(options.connect(endpoint, service), { audience: service.name, tokens, clock });
      connections.set(key, fetch);
    }
    return fetch;
  };

  const live = (endpoint: Endpoint) => endpoint.leaseExpiresAt === undefined || Date.parse(endpoint.leaseExpiresAt) > now();

  const backendOf = (name: string): Backend => {
    const service = services.get(name);
    if (!service) throw new MeshError("unknown-service", `no service "${name}" in the mesh's config`);
    const accrual = service.failureAccrual;
    const key = JSON.stringify([service.balancer, accrual ?? null]);
    let backend = backends.get(name);
    if (!backend || backend.key !== key) {
      const set = createEndpointSet([], {
        failureAccrual: {
          ...(accrual && {
            consecutiveFailures: accrual.consecutiveFailures,
            backoff: { min: durationMs(accrual.backoff.min), max: durationMs(accrual.backoff.max), jitter: accrual.backoff.jitter },
          }),
          clock,
          random,
          observe: { ejected: (endpoint) => registry.countEjection({ dst_service: name, endpoint }) },
        },
      });
      backend = { set, balancer: balance(set, { algorithm: service.balancer, clock, random }), key };
      backends.set(name, backend);
    }
    const endpoints: EndpointInit[] = (service.endpoints ?? []).filter(live).map((endpoint) => {
      const init: EndpointInit = { id: endpoint.id, fetch: connectionOf(service, endpoint) };
      if (endpoint.weight !== undefined) init.weight = endpoint.weight;
      return init;
    });
    backend.set.update(endpoints);
    return backend;
  };

  const budgetOf = (destination: string, config: NonNullable<Route["retry"]>): RetryBudget => {
    const { ratio, minPerSecond, ttl } = config.budget;
    const key = `${ratio}/${minPerSecond}/${ttl}`;
    let entry = budgets.get(destination);
    if (!entry || entry.key !== key) {
      entry = { key, budget: createRetryBudget({ ratio, minPerSecond, ttl: durationMs(ttl), clock }) };
      budgets.set(destination, entry);
    }
    return entry.budget;
  };

  const routerFor = (destination: string, service: Service): Fetch => {
    const routes = snapshot.routes.filter((r) => r.service === destination);
    // The service's own timeout and retry apply to routes that set none (Linkerd: route
    // config overrides the service's).
    const effective = (routes.length ? routes : [defaultRoute(destination)]).map((r) => ({
      ...r,
      timeouts: { ...r.timeouts, request: r.timeouts?.request ?? service.timeout },
      retry: r.retry ?? service.retry,
    }));
    const balancers = new Map<string, Fetch>();
    const level: RouteLevel = {
      destination,
      registry,
      ...(options.identity !== undefined && { src: options.identity }),
      budget: (config) => budgetOf(destination, config),
      backend: (name) => {
        let fetch = balancers.get(name);
        if (!fetch) {
          const backend = backendOf(name);
          fetch = (request) => backend.balancer(request);
          balancers.set(name, fetch);
        }
        return fetch;
      },
      clock,
      random,
    };
    return route({ table: createRouteTable(effective, destination), stacks: (r) => routeStack(r, level) });
  };

  const outbound: Fetch = async (incoming) => {
    // Routes match, and the endpoint gets, the normalized path; a path that cannot be is 400.
    const request = normalizeRequest(incoming);
    const destination = serviceOf(request, names);
    if (destination === undefined) throw notAName(request, names);
    let router = routers.get(destination);
    if (!router) {
      const service = services.get(destination);
      if (!service) throw new MeshError("unknown-service", `no service "${destination}" in the mesh's config`);
      router = routerFor(destination, service);
      routers.set(destination, router);
    }
    return router(request);
  };

  // Inbound: one stack per route label, built lazily and dropped on update, so a request's
  // route is matched once and every layer of its stack knows it.
  let inboundTable: RouteTable = createRouteTable([], self);
  let inboundStacks = new Map<string, Fetch>();
  let limiter: { key: string; limiter: RateLimiter } | undefined;
  const selfService = () => services.get(self);
  const verifier = options.verifier ?? { verify: async () => Promise.reject(new MeshError("unauthenticated", "this workload verifies no identities")) };

  const inboundFor = (name: string): Fetch => {
    let fetch = inboundStacks.get(name);
    if (!fetch) {
      const limit = selfService()?.rateLimit;
      if (limit) {
        // Linkerd's local rate limit (governor) lets a second's worth through at once; the
        // burst is on top of that.
        const key = `${limit.rps}/${limit.burst}`;
        if (limiter?.key !== key) limiter = { key, limiter: createRateLimiter({ rps: limit.rps, burst: Math.ceil(limit.rps) - 1 + limit.burst, clock }) };
      }
      fetch = inboundStack(options.app, {
        service: self,
        route: name,
        verifier,
        policy: () => ({ policies: snapshot.policies, defaultPolicy: selfService()?.defaultPolicy ?? "all-unauthenticated" }),
        registry,
        limiter: limit ? limiter?.limiter : undefined,
        clock,
      });
      inboundStacks.set(name, fetch);
    }
    return fetch;
  };

  const inbound: Fetch = async (incoming) => {
    const started = clock.now();
    // Undefined until the path is normalized: a refusal before that is the path's (400).
    let route: string | undefined;
    try {
      // Policy, routes and the app all see the normalized path; one that cannot be is 400.
      const request = normalizeRequest(incoming);
      route = inboundTable.match(request)?.route.name ?? "";
      return await inboundFor(route)(withMeta(request, { route }));
    } catch (error) {
      // Path normalization, identity and authorization refuse before the metrics layer sees
      // the request: count the refusal here, with no (verified) source.
      const codes = route === undefined ? ["bad-request"] : ["unauthenticated", "forbidden"];
      if (error instanceof MeshError && codes.includes(error.code)) {
        const labels = { direction: "inbound", src: "", dst_service: self, route: route ?? "" } as const;
        registry.countRequest(labels);
        registry.recordResponse(labels, classify({ error }, incoming), clock.now() - started);
      }
      throw error;
    }
  };

  return {
    outbound,
    inbound,
    update(next) {
      snapshot = next;
      services = new Map(next.services.map((s) => [s.name, s]));
      routers = new Map();
      inboundTable = createRouteTable(next.routes.filter((r) => r.service === self), self);
      inboundStacks = new Map();
      // Endpoint sets of services that stay keep their state; those of removed ones go.
      for (const name of backends.keys()) if (!services.has(name)) backends.delete(name);
      for (const name of budgets.keys()) if (!services.has(name)) budgets.delete(name);
      for (const name of backends.keys()) backendOf(name);
      const addresses = new Set(next.services.flatMap((s) => (s.endpoints ?? []).map((e) => `${s.name}\u0000${e.address}\u0000${e.identity ?? ""}`)));
      for (const key of connections.keys()) if (!addresses.has(key)) connections.delete(key);
      registry.setConfigVersion(next.version);
    },
    version: () => snapshot.version,
    serviceFor(host) {
      const name = serviceOfHost(host, names);
      return name !== undefined && services.has(name) ? name : undefined;
    },
  };
}
