/**
 * The sidecar assembled: the core's proxy (`src/proxy`) behind three Node listeners
 * (outbound 4140, inbound 4143, admin 4191), upstream pools, the control-plane link, and the
 * graceful drain a pod's termination asks for.
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createServer as createTlsServer } from "node:tls";
import type { AddressInfo, Server as NetServer } from "node:net";
import { decodeJwt } from "jose";
import type { ExternalService } from "../src/core/config/index.ts";
import { systemClock } from "../src/core/clock.ts";
import { MeshError } from "../src/core/errors.ts";
import { metaOf, withMeta, type Fetch } from "../src/core/fetch.ts";
import { createRegistry } from "../src/core/metrics/index.ts";
import { createTracing, type Tracing } from "../src/core/trace/index.ts";
import { createTapper, type Tapper } from "../src/core/tap/index.ts";
import { createTrustBundle, createVerifier, type Verifier } from "../src/identity/index.ts";
import { CONTROL_AUDIENCE, createControlClient, createProxy, type Proxy, type Registration } from "../src/proxy/index.ts";
import { createAdminHandler } from "./admin.ts";
import { createBridge } from "./bridge.ts";
import type { ListenAddress, SidecarConfig } from "./config.ts";
import { createControlLink } from "./control-link.ts";
import { createListener, createWireListener, type WireListener } from "./listener.ts";
import { createCertificates, createHandshakeStats, createInboundFront, tlsOptions } from "./mtls.ts";
import { createMtlsUpstreams, peerKey } from "./mtls-client.ts";
import { reason, type Log } from "./log.ts";
import { createTunnels, refuseTunnel } from "./tunnel.ts";
import { createUpstreams, DEFAULT_INBOUND_CONNECT_TIMEOUT_MS } from "./upstream.ts";

/**
 * Time allowed for a control-plane call other than a long-poll: 10 s. A hung call must not
 * hold up lease renewal or the drain; a long-poll has its own limit (its wait plus slack).
 */
export const DEFAULT_CONTROL_CALL_TIMEOUT_MS = 10_000;

/**
 * Idle keep-alive time on the outbound listener (the app's connections): 65 s, above the idle
 * timeouts of common HTTP clients (Node's agent 5 s, Go's `http.Transport` 90 s is the
 * exception) so the client, not the sidecar, closes an idle connection and a request never
 * races a closing socket.
 */
export const DEFAULT_OUTBOUND_IDLE_TIMEOUT_MS = 65_000;

/**
 * Idle keep-alive time on the inbound listener: 5 s, Node's default, above the 3 s idle
 * timeout of the pools other sidecars reach it with (`DEFAULT_POOL_IDLE_TIMEOUT_MS`).
 */
export const DEFAULT_INBOUND_IDLE_TIMEOUT_MS = 5_000;

/** Options of `createSidecar`. */
export interface SidecarOptions {
  config: SidecarConfig;
  log: Log;
  /** Reaches the control plane; the global `fetch` by default. */
  controlFetch?: typeof fetch;
  /** Reads the projected ServiceAccount token; reads `config.tokenPath` by default. */
  readToken?: () => Promise<string>;
}

/** The addresses the listeners are bound to (ports resolved when 0 was asked). */
export interface BoundAddresses {
  outbound: ListenAddress;
  inbound: ListenAddress;
  admin: ListenAddress;
}

/** A running sidecar. Per process. */
export interface Sidecar {
  /** Binds the listeners and starts the control link; resolves once listening (not yet ready). */
  start(): Promise<BoundAddresses>;
  /** Undefined when ready to serve; otherwise why not. */
  notReady(): string | undefined;
  /**
   * The graceful drain: not ready at once, the endpoint deregistered, listeners closed to new
   * connections, in-flight requests given up to the grace period, then everything closed.
   */
  drain(): Promise<void>;
  /** Resolves when a drain has finished (started by a signal or by `POST /shutdown`). */
  drained(): Promise<void>;
}

/** Wraps the global `fetch` with a timeout for every control call except snapshot long-polls. */
function withTimeout(base: typeof fetch): (request: Request) => Promise<Response> {
  return (request) => {
    const longPoll = request.url.includes("/v1/snapshot") && request.url.includes("wait=");
    return longPoll ? base(request) : base(request, { signal: AbortSignal.any([request.signal, AbortSignal.timeout(DEFAULT_CONTROL_CALL_TIMEOUT_MS)]) });
  };
}

/** The namespace of a Kubernetes workload's SPIFFE ID (`spiffe://<td>/ns/<ns>/sa/<sa>`), as a list of none or one. */
function namespaceOf(id: unknown): string[] {
  const match = typeof id === "string" ? /^spiffe:\/\/[^/]+\/ns\/([a-z0-9-]{1,63})\/sa\/[^/]+$/.exec(id) : null;
  return match ? [match[1]!] : [];
}

async function listenWire(listener: WireListener, address: ListenAddress): Promise<ListenAddress> {
  return { host: address.host, port: await listener.listen(address.port, address.host) };
}

function listen(server: Server | NetServer, address: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      const bound = server.address() as AddressInfo;
      resolve({ host: address.host, port: bound.port });
    });
  });
}

/** Tap events wait this long for others to join them in one push: well inside the 1 s a tap's reader expects them in. */
const TAP_FLUSH_MS = 200;
/**
 * The plain-HTTP origin of an endpoint: another sidecar's https:// port is reached in plain
 * HTTP (with a token) by a sidecar that has mutual TLS off; the port detects either.
 */
function plainOrigin(endpoint: { address: string; identity?: string | undefined }): string {
  const origin = new URL(endpoint.address).origin;
  return endpoint.identity !== undefined ? origin.replace(/^https:/, "http:") : origin;
}

/** Creates a sidecar from its config; nothing is bound until `start()`. */
export function createSidecar(options: SidecarOptions): Sidecar {
  const { config, log } = options;
  const registry = createRegistry();
  const readToken = options.readToken ?? (async () => (await readFile(config.tokenPath, "utf8")).trim());
  const client = createControlClient({
    fetch: withTimeout(options.controlFetch ?? fetch),
    url: config.controlUrl,
    credential: { kind: "serviceAccount", token: readToken },
  });

  // Other pods' inbound ports, and the app on localhost, each with its own pools and timeouts.
  const peers = createUpstreams();
  const app = createUpstreams({ connectTimeoutMs: DEFAULT_INBOUND_CONNECT_TIMEOUT_MS });
  const appFetch: Fetch = config.appOrigin
    ? app.fetch(config.appOrigin)
    : () => Promise.reject(new MeshError("no-endpoints", "this pod serves no app port (WEFT_APP_PORT is not set)"));

  // Egress (issue 16): one pool set per external service and TLS setting, replaced when it changes.
  const egressPools = new Map<string, { key: string; upstreams: ReturnType<typeof createUpstreams> }>();
  const egressFetch = (external: ExternalService): Fetch => {
    const port = external.port ?? (external.protocol === "https" ? 443 : 80);
    const origin = `${external.protocol}://${external.address ?? `${external.hosts[0]}:${port}`}`;
    const tls = external.protocol === "https" ? { servername: external.tls?.sni ?? external.hosts[0], ca: external.tls?.caBundle } : undefined;
    const key = JSON.stringify([origin, tls ?? null]);
    let entry = egressPools.get(external.name);
    if (entry?.key !== key) {
      void entry?.upstreams.close();
      entry = { key, upstreams: createUpstreams(tls ? { tls } : {}) };
      egressPools.set(external.name, entry);
    }
    return entry.upstreams.fetch(origin);
  };
  // Mutual TLS (docs/identity.md): this pod's certificate, pools per peer identity, handshake counts.
  const tlsStats = createHandshakeStats();
  const certificates = config.mtls
    ? createCertificates({ request: (csr, lifetime) => client.certificate(csr, lifetime), trustDomain: config.trustDomain, lifetime: config.certLifetime, log })
    : undefined;
  const securePeers = createMtlsUpstreams({ credentials: () => certificates?.current(), trustDomain: config.trustDomain, stats: tlsStats });
  /** An endpoint this pod reaches over mutual TLS: another sidecar's https:// port with the identity it must prove. */
  const secured = (endpoint: { address: string; identity?: string | undefined }) => certificates !== undefined && endpoint.identity !== undefined && endpoint.address.startsWith("https://");

  let latestJwks: unknown = { keys: [] };
  const bundle = createTrustBundle({ fetchJwks: async () => latestJwks });
  let verifier: Verifier | undefined;
  let proxy: Proxy | undefined;
  let draining = false;
  let drainDone: Promise<void> | undefined;
  let resolveDrained!: () => void;
  const drainedPromise = new Promise<void>((resolve) => (resolveDrained = resolve));

  // Work that outlives a response (span exports, mirrored calls): tracked, and awaited within
  // the drain's grace; it never holds a request.
  const backgroundTasks = new Set<Promise<unknown>>();
  const background = (task: Promise<unknown>) => {
    const tracked = task.catch(() => {}).finally(() => backgroundTasks.delete(tracked));
    backgroundTasks.add(tracked);
  };

  // Tracing (docs/tracing.md): spans leave in batches on a timer.
  const tracing: Tracing | undefined = config.tracing
    ? createTracing(config.tracing, {
        service: config.service,
        host: "sidecar",
        instance: config.podName,
        clock: systemClock,
        timer: true,
        // Epoch time to the microsecond: the spans of one hop are shorter than a millisecond.
        now: () => performance.timeOrigin + performance.now(),
        background,
      })
    : undefined;

  const notLoaded = () => Promise.reject(new MeshError("no-endpoints", "the sidecar has not loaded its config from the control plane yet"));
  const outbound: Fetch = accessLogged("outbound", (request) => (proxy ? proxy.outbound(withMeta(request, { background })) : notLoaded()));
  const inbound: Fetch = accessLogged("inbound", (request) => (proxy ? proxy.inbound(request) : notLoaded()));

  /** `WEFT_ACCESS_LOG=json`: a line per request with its trace and span ids (docs/tracing.md). */
  function accessLogged(direction: "inbound" | "outbound", fetch: Fetch): Fetch {
    if (!config.accessLog) return fetch;
    return async (request) => {
      const started = performance.now();
      const line = (status: number, error: string | undefined) => {
        const trace = metaOf(request).trace;
        log("info", "request", {
          direction,
          method: request.method,
          // The path only: a query string may carry what must not reach a log.
          path: new URL(request.url).pathname.slice(0, 200),
          status,
          ...(error !== undefined && { error }),
          duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
          ...(trace && { trace_id: trace.traceId, span_id: trace.spanId, sampled: trace.sampled }),
        });
      };
      try {
        const response = await fetch(request);
        line(response.status, response.headers.get("weft-error") ?? undefined);
        return response;
      } catch (error) {
        line(error instanceof MeshError ? error.status : 502, error instanceof MeshError ? error.code : "upstream-unreachable");
        throw error;
      }
    };
  }

  /** The first snapshot makes the proxy (the pod's identity is known by then); each one updates it. */
  const apply = async (snapshot: Parameters<Proxy["update"]>[0]) => {
    latestJwks = snapshot.jwks;
    await bundle.set(snapshot.jwks);
    if (!proxy) {
      const issuer = client.issuer();
      if (issuer === undefined) throw new MeshError("unauthenticated", "the control plane's issuer is not known yet");
      const { sub } = decodeJwt(await client.tokens.token(CONTROL_AUDIENCE));
      verifier = createVerifier({ bundle, issuer, audience: config.service, trustDomain: config.trustDomain });
      // Tap (issue 14): sampled events go to the control plane a moment after the first of a batch.
      const tapper: Tapper = createTapper({
        service: config.service,
        ...(typeof sub === "string" && { identity: sub }),
        now: Date.now,
        clock: systemClock,
        onEvents: () => {
          setTimeout(() => {
            const batch = tapper.take();
            if (batch) client.pushTapEvents(batch).catch((error: unknown) => log("warn", "tap-push-failed", { reason: reason(error) }));
          }, TAP_FLUSH_MS).unref();
        },
      });
      proxy = createProxy({
        tapper,
        service: config.service,
        ...(typeof sub === "string" && { identity: sub }),
        registry,
        tokens: client.tokens,
        verifier,
        app: appFetch,
        tracer: tracing?.tracer,
        naming: { namespaces: [...namespaceOf(sub), ...config.namespaces], clusterDomain: config.clusterDomain },
        // Egress (issue 16): TLS origination to outside services, verified by the resource's CA bundle.
        connectExternal: (external) => egressFetch(external),
        secured,
        connect: (endpoint) => {
          if (!/^https?:\/\//.test(endpoint.address)) {
            return () => Promise.reject(new MeshError("upstream-unreachable", `endpoint ${endpoint.id} (${endpoint.address}) is reachable only from Workers`));
          }
          if (secured(endpoint)) return securePeers.fetch(new URL(endpoint.address).origin, endpoint.identity!);
          return peers.fetch(plainOrigin(endpoint));
        },
      });
      log("info", "identity-loaded", { id: sub });
    }
    certificates?.setAnchors(snapshot.trustAnchors);
    proxy.update(snapshot);
    // Mesh-wide tracing (issue 13): the Tracing resource sets the sampler of new requests.
    tracing?.follow(snapshot.tracing);
    const origins = new Set<string>();
    const securedKeys = new Set<string>();
    for (const service of snapshot.services) {
      for (const endpoint of service.endpoints ?? []) {
        if (!/^https?:\/\//.test(endpoint.address)) continue;
        if (secured(endpoint)) securedKeys.add(peerKey(new URL(endpoint.address).origin, endpoint.identity!));
        else origins.add(plainOrigin(endpoint));
      }
    }
    peers.retain(origins);
    securePeers.retain(securedKeys);
  };

  // With mutual TLS on, peers are told to speak TLS to the inbound port (it detects either).
  const advertised = config.mtls ? config.advertisedAddress.replace(/^http:/, "https:") : config.advertisedAddress;
  const registration: Registration = { address: advertised, ttl: `${Math.round(config.leaseTtlMs)}ms` };
  if (config.weight !== undefined) registration.weight = config.weight;
  if (config.zone !== undefined) registration.zone = config.zone;
  const link = createControlLink({
    client,
    service: config.service,
    endpointId: config.podName,
    ...(config.appOrigin !== undefined && { registration }),
    leaseTtlMs: config.leaseTtlMs,
    snapshotWaitS: config.snapshotWaitS,
    statsIntervalMs: config.statsIntervalMs,
    apply,
    takeStats: () => registry.takeDelta(),
    log,
  });

  const onFault = (listener: string) => (error: unknown) => log("error", "request-fault", { listener, reason: reason(error) });
  const outboundBridge = createBridge({ target: "proxy", fetch: outbound, maxInFlight: config.maxInFlight, draining: () => draining, onFault: onFault("outbound") });
  const inboundBridge = createBridge({
    target: "origin",
    fetch: inbound,
    maxInFlight: config.maxInFlight,
    draining: () => draining,
    onFault: onFault("inbound"),
    peerOf: (socket) => front?.peerOf(socket),
  });
  const limits = { headerTimeoutMs: config.headerTimeoutMs, maxConnections: config.maxConnections, log };
  const tunnels = createTunnels({ loaded: () => proxy !== undefined, serviceFor: (host) => proxy?.serviceFor(host), draining: () => draining, log });
  // The traffic listeners are the sidecar's own HTTP/1.1 server (sidecar/http1). A connection
  // that opens with CONNECT goes to a node:http listener that tunnels (tunnel.ts) and serves
  // the requests inside the tunnel.
  const tunnelServer = createListener({ name: "outbound", bridge: outboundBridge, handle: tunnels.guard(outboundBridge.handle), idleTimeoutMs: DEFAULT_OUTBOUND_IDLE_TIMEOUT_MS, ...limits });
  tunnels.attach(tunnelServer);
  const outboundServer = createWireListener({ name: "outbound", handle: outboundBridge.handleWire, idleTimeoutMs: DEFAULT_OUTBOUND_IDLE_TIMEOUT_MS, tunnels: tunnelServer, ...limits });
  const inboundServer = createWireListener({ name: "inbound", handle: inboundBridge.handleWire, idleTimeoutMs: DEFAULT_INBOUND_IDLE_TIMEOUT_MS, refuseTunnel, ...limits });
  // Mutual TLS: 4143 is a TCP front that hands TLS connections to a TLS listener (client
  // certificates required) and then HTTP, and the rest to the plain one; without it, the plain one listens.
  let front: ReturnType<typeof createInboundFront> | undefined;
  if (certificates) {
    const secureHttp = createWireListener({
      name: "inbound-tls",
      // A second guard: no request is served on a connection without a verified peer.
      handle: (req, res) => (front?.peerOf(req.socket) !== undefined ? inboundBridge.handleWire(req, res) : void req.socket.destroy()),
      idleTimeoutMs: DEFAULT_INBOUND_IDLE_TIMEOUT_MS,
      refuseTunnel,
      ...limits,
    });
    // Chains are checked by the front, which counts why it refuses one (see createInboundFront).
    // A handshake, once its first byte is in, has the header timeout as a request head does
    // (Node's own default is 120 s, a long hold for a client that stops mid-handshake).
    const secure = createTlsServer({ requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.3", ALPNProtocols: ["http/1.1"], handshakeTimeout: config.headerTimeoutMs });
    front = createInboundFront({ plain: inboundServer, secure, secureHttp, trustDomain: config.trustDomain, stats: tlsStats, maxConnections: config.maxConnections, idleTimeoutMs: DEFAULT_INBOUND_IDLE_TIMEOUT_MS, log });
    certificates.onChange((credentials) => front!.update(credentials));
  }
  const inboundListener = front ?? inboundServer;

  const notReady = (): string | undefined => {
    if (draining) return "draining";
    const status = link.status();
    if (!status.identity) return "no identity yet (waiting for the control plane to accept the ServiceAccount token)";
    if (status.version < 0 || !proxy) return "no config yet (waiting for the first snapshot)";
    if (certificates && !certificates.current()) return "no certificate yet (waiting for the control plane's CA)";
    return undefined;
  };

  const drain = (): Promise<void> => {
    drainDone ??= (async () => {
      draining = true;
      log("info", "draining", { inFlight: outboundBridge.inFlight() + inboundBridge.inFlight(), graceMs: config.shutdownGraceMs });
      // Leave the mesh first, so peers stop choosing this pod while it still answers them.
      await link.stop({ deregister: true });
      outboundServer.close();
      inboundListener.close();
      outboundServer.closeIdleConnections();
      inboundListener.closeIdleConnections();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const graceOver = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), config.shutdownGraceMs)));
      const finished = await Promise.race([Promise.all([outboundBridge.idle(), inboundBridge.idle(), Promise.allSettled([...backgroundTasks])]).then(() => true), graceOver]);
      clearTimeout(timer);
      if (!finished) log("warn", "drain-grace-expired", { abandoned: outboundBridge.inFlight() + inboundBridge.inFlight() });
      outboundServer.closeAllConnections();
      inboundListener.closeAllConnections();
      certificates?.stop();
      await Promise.race([Promise.all([link.flushStats(), tracing?.exporter.flush()]), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      await Promise.all([peers.destroy(), app.destroy(), securePeers.destroy(), ...[...egressPools.values()].map((e) => e.upstreams.destroy())]);
      adminServer.closeAllConnections();
      await new Promise<void>((resolve) => adminServer.close(() => resolve()));
      log("info", "drained", {});
      resolveDrained();
    })();
    return drainDone;
  };

  const adminServer = createServer(
    { noDelay: true },
    createAdminHandler({
      metrics: () => registry.expose() + (tracing?.exporter.expose() ?? "") + (certificates ? tlsStats.expose(certificates.expirySeconds()) : ""),
      notReady,
      shutdownToken: config.adminShutdownToken,
      shutdown: () => void drain(),
    }),
  );

  return {
    async start() {
      const [outboundAddress, inboundAddress, adminAddress] = await Promise.all([
        listenWire(outboundServer, config.outbound),
        front ? listen(front.server, config.inbound) : listenWire(inboundServer, config.inbound),
        listen(adminServer, config.admin),
      ]);
      log("info", "listening", { outbound: outboundAddress, inbound: inboundAddress, admin: adminAddress, service: config.service, pod: config.podName });
      // The certificate is asked for beside the control link; the pod is ready once it has both.
      certificates?.start().catch((error: unknown) => log("error", "certificate-failed", { reason: reason(error) }));
      link.start().then(
        () => {
          if (!draining) log("info", "ready", { version: link.status().version });
        },
        (error: unknown) => log("error", "control-link-failed", { reason: reason(error) }),
      );
      return { outbound: outboundAddress, inbound: inboundAddress, admin: adminAddress };
    },
    notReady,
    drain,
    drained: () => drainedPromise,
  };
}
