/**
 * The data plane assembled from config: the outbound and inbound stacks of one workload,
 * built from the snapshot and rebuilt when it changes, with the per-isolate (or per-process)
 * state of balancers, breakers, retry budgets and rate limiters kept across rebuilds. The
 * router worker and the Node sidecar are thin hosts around this.
 */
import { balance, createEndpointSet, type Balancer, type EndpointInit, type EndpointSet } from "../core/balance/index.ts";
import { systemClock, type Clock, type Random } from "../core/clock.ts";
import { durationMs, type Endpoint, type ExternalService, type RateLimit, type Route, type Service, type Snapshot } from "../core/config/index.ts";
import { MeshError } from "../core/errors.ts";
import { withMeta, type Fetch, type MeshRequest } from "../core/fetch.ts";
import { classify, type Registry } from "../core/metrics/index.ts";
import { normalizeRequest } from "../core/path/index.ts";
import { DEFAULT_RATE_LIMIT_KEY, createKeyedLimiter, type KeyedLimiter } from "../core/ratelimit/index.ts";
import { createRetryBudget, type RetryBudget } from "../core/retry/index.ts";
import { createMirrorPool, createRouteTable, defaultRoute, route, type RouteTable } from "../core/route/index.ts";
import { traceInbound, traceOutbound, type Tracer } from "../core/trace/index.ts";
import type { Tapper } from "../core/tap/index.ts";
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
  /**
   * Reaches a service outside the mesh (egress, issue 16): the host's TLS origination with the
   * resource's SNI and CA bundle. Without it, `connect` is given the external's origin.
   */
  connectExternal?: (external: ExternalService) => Fetch;
  /** Tracing (src/core/trace); without it trace headers pass through untouched. */
  tracer?: Tracer | undefined;
  /** The caller's network address, where the host knows it (the inbound span's `network.peer.address`). */
  peer?: (request: MeshRequest) => string | undefined;
  /** Live request inspection (`weft tap`): wraps both sides; the snapshot's sessions are put in force on update. */
  tapper?: Tapper;
  /**
   * A host's rate limiter for a limit that must hold beyond this process or isolate (the
   * router's Rate Limiting binding); `local` is the per-isolate limiter it may build on.
   * `scope` names the limit (`<service>` or `<service>/<route>`). Without it, limits are local.
   */
  rateLimiter?: (scope: string, limit: RateLimit, local: KeyedLimiter) => KeyedLimiter;
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

/** The lower-case host of a request's URL, without port or trailing dot (the egress path only). */
function hostOf(request: MeshRequest): string {
  try {
    return new URL(request.url).hostname.toLowerCase().replace(/\.$/, "");
  } catch {
    return "";
  }
}

/**
 * An ExternalService as a service of one endpoint, its origin, so the route, backend and
 * endpoint levels serve it as they serve a mesh service: timeouts, retries, failure accrual
 * and metrics (`dst_service` is its name).
 */
function externalAsService(external: ExternalService): Service {
  const port = external.port ?? (external.protocol === "https" ? 443 : 80);
  const address = `${external.protocol}://${external.address ?? `${external.hosts[0]}:${port}`}`;
  const service: Service = { name: external.name, endpoints: [{ id: external.name, address }], balancer: "round-robin", defaultPolicy: "all-unauthenticated" };
  if (external.retry !== undefined) service.retry = external.retry;
  if (external.timeout !== undefined) service.timeout = external.timeout;
  if (external.failureAccrual !== undefined) service.failureAccrual = external.failureAccrual;
  return service;
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
  // Egress (issue 16): declared outside services by name and by hostname, as services of one endpoint.
  let externals = new Map<string, { external: ExternalService; service: Service }>();
  let externalHosts = new Map<string, string>();
  // Per destination: state that must outlive snapshot updates.
  const backends = new Map<string, Backend>();
  const budgets = new Map<string, { key: string; budget: RetryBudget }>();
  const connections = new Map<string, Fetch>();
  // Mirrored copies in flight, bounded per process or isolate across every route (issue 16).
  const mirrors = createMirrorPool();
  // Per destination, rebuilt on every update: the route stacks.
  let routers = new Map<string, Fetch>();

  const connectionOf = (service: Service, endpoint: Endpoint): Fetch => {
    const key = `${service.name}\u0000${endpoint.address}\u0000${endpoint.identity ?? ""}`;
    let fetch = connections.get(key);
    if (!fetch) {
      const external = externals.get(service.name);
      const isExternal = external !== undefined && external.service === service;
      const connect = isExternal && options.connectExternal ? options.connectExternal(external.external) : options.connect(endpoint, service);
      // An outside service never gets this workload's identity token, nor does a peer reached
      // over mutual TLS (its certificate proves who calls).
      const tokens = isExternal || options.secured?.(endpoint) ? undefined : options.tokens;
      fetch = endpointStack(connect, {
        audience: service.name,
        tokens,
        clock,
        ...(options.tracer && { trace: { tracer: options.tracer, backend: service.name, endpoint: endpoint.id, address: endpoint.address } }),
      });
      connections.set(key, fetch);
    }
    return fetch;
  };

  const live = (endpoint: Endpoint) => endpoint.leaseExpiresAt === undefined || Date.parse(endpoint.leaseExpiresAt) > now();

  const backendOf = (name: string): Backend => {
    const service = services.get(name) ?? externals.get(name)?.service;
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
      mirrors,
    };
    return route({ table: createRouteTable(effective, destination), stacks: (r) => routeStack(r, level) });
  };

  /** Egress (issue 16): the stack for a host that names no mesh service, or the refusal. */
  const egress = (request: MeshRequest): Fetch | undefined => {
    const mode = snapshot.egress?.mode;
    if (mode === undefined && externals.size === 0) return undefined;
    const host = hostOf(request);
    const name = externalHosts.get(host);
    if (name === undefined && !host.includes(".")) return undefined;
    if (mode === "deny") throw new MeshError("forbidden", `calls out of the mesh are denied (egress mode deny): "${host.slice(0, 100)}"`);
    if (name === undefined) {
      if (mode === undefined) return undefined;
      if (mode === "allow") return passthrough;
      throw new MeshError("forbidden", `"${host.slice(0, 100)}" is outside the mesh and declared by no ExternalService (egress mode ${mode})`);
    }
    const key = `\u0000external:${name}`;
    let router = routers.get(key);
    if (!router) {
      router = routerFor(name, externals.get(name)!.service);
      routers.set(key, router);
    }
    return router;
  };
  // Mode allow: an undeclared outside host is called as the app named it, plain, with metrics.
  const passthrough: Fetch = (request) => {
    const origin = new URL(request.url).origin;
    const endpoint: Endpoint = { id: "passthrough", address: origin };
    return options.connect(endpoint, { name: "egress", balancer: "round-robin", defaultPolicy: "all-unauthenticated" })(request);
  };

  const routeOutbound: Fetch = async (incoming) => {
    // Routes match, and the endpoint gets, the normalized path; a path that cannot be is 400.
    const request = normalizeRequest(incoming);
    const destination = serviceOf(request, names);
    if (destination === undefined) {
      const external = egress(request);
      if (external !== undefined) return external(request);
      throw notAName(request, names);
    }
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
  // Rate limiters by scope, kept across updates while their config stays the same.
  const limiters = new Map<string, { config: string; limiter: KeyedLimiter }>();
  const limiterOf = (scope: string, limit: RateLimit): KeyedLimiter => {
    const config = JSON.stringify(limit);
    let entry = limiters.get(scope);
    if (entry?.config !== config) {
      // Linkerd's local rate limit (governor) lets a second's worth through at once; the
      // burst is on top of that (`createKeyedLimiter`).
      const local = createKeyedLimiter({
        total: { rps: limit.rps, burst: limit.burst },
        ...(limit.perKey && { perKey: limit.perKey }),
        ...(limit.overrides && { overrides: limit.overrides.map(({ keys, rps, burst }) => ({ keys, rate: { rps, burst } })) }),
        clock,
      });
      entry = { config, limiter: options.rateLimiter ? options.rateLimiter(scope, limit, local) : local };
      limiters.set(scope, entry);
    }
    return entry.limiter;
  };
  const selfService = () => services.get(self);
  const verifier = options.verifier ?? { verify: async () => Promise.reject(new MeshError("unauthenticated", "this workload verifies no identities")) };

  const inboundFor = (name: string): Fetch => {
    let fetch = inboundStacks.get(name);
    if (!fetch) {
      // A route's own limit replaces its service's (docs/rate-limits.md).
      const routeLimit = name === "" ? undefined : snapshot.routes.find((r) => r.service === self && r.name === name)?.rateLimit;
      const limit = routeLimit ?? selfService()?.rateLimit;
      const scope = routeLimit ? `${self}/${name}` : self;
      fetch = inboundStack(options.app, {
        service: self,
        route: name,
        verifier,
        policy: () => ({ policies: snapshot.policies, defaultPolicy: selfService()?.defaultPolicy ?? "all-unauthenticated" }),
        registry,
        endUser: selfService()?.requestAuthentication,
        limiter: limit ? { limiter: limiterOf(scope, limit), key: limit.key ?? DEFAULT_RATE_LIMIT_KEY } : undefined,
        clock,
      });
      inboundStacks.set(name, fetch);
    }
    return fetch;
  };

  const routeInbound: Fetch = async (incoming) => {
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

  // Tap (issue 14): one check per call when nobody taps; inside tracing, so a tapped event
  // carries the trace the request is in.
  const tapper = options.tapper;
  const tappedOutbound = tapper ? tapper.wrap("outbound", routeOutbound, (request) => serviceOf(request, names)) : routeOutbound;
  const tappedInbound = tapper ? tapper.wrap("inbound", routeInbound, () => self) : routeInbound;
  // Tracing, when on, is outermost on both sides: a span for every request, refusals included.
  const traced = { service: self, identity: options.identity, peer: options.peer };
  const outbound = options.tracer ? traceOutbound({ tracer: options.tracer, ...traced })(tappedOutbound) : tappedOutbound;
  const inbound = options.tracer ? traceInbound({ tracer: options.tracer, ...traced })(tappedInbound) : tappedInbound;

  return {
    outbound,
    inbound,
    update(next) {
      tapper?.update(next.taps ?? [], new Map(next.services.flatMap((s) => (s.tapIgnoreHeaders ? [[s.name, s.tapIgnoreHeaders] as const] : []))));
      snapshot = next;
      services = new Map(next.services.map((s) => [s.name, s]));
      externals = new Map((next.externalServices ?? []).map((e) => [e.name, { external: e, service: externalAsService(e) }]));
      externalHosts = new Map((next.externalServices ?? []).flatMap((e) => e.hosts.map((h) => [h, e.name] as const)));
      routers = new Map();
      inboundTable = createRouteTable(next.routes.filter((r) => r.service === self), self);
      inboundStacks = new Map();
      // Endpoint sets of services that stay keep their state; those of removed ones go.
      for (const name of backends.keys()) if (!services.has(name) && !externals.has(name)) backends.delete(name);
      for (const name of budgets.keys()) if (!services.has(name) && !externals.has(name)) budgets.delete(name);
      for (const name of backends.keys()) backendOf(name);
      const addresses = new Set([...next.services, ...[...externals.values()].map((e) => e.service)].flatMap((s) => (s.endpoints ?? []).map((e) => `${s.name}\u0000${e.address}\u0000${e.identity ?? ""}`)));
      // An external's connection holds its TLS settings: rebuilt with each snapshot.
      for (const name of externals.keys()) for (const key of connections.keys()) if (key.startsWith(`${name}\u0000`)) connections.delete(key);
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
