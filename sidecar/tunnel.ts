/**
 * `CONNECT` on the outbound listener, for the proxy clients that tunnel even plain-HTTP
 * targets (undici's `EnvHttpProxyAgent`, Node's `fetch` with `NODE_USE_ENV_PROXY=1`, curl
 * `-p`). A tunnel to a mesh service is not a byte pipe: after `200 Connection Established`
 * the socket is handed back to the same outbound HTTP server, so every request inside is
 * parsed by llhttp and goes through the outbound stack (identity, policy, metrics), and must
 * name the tunnel's service. Every other `CONNECT` gets a definite answer with `weft-error`
 * and a JSON body, then the connection closes: a client told nothing retries at once, in a
 * loop.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { MeshError, errorResponse } from "../src/core/errors.ts";
import { hostnameOf, parseConnectTarget } from "./authority.ts";
import { send } from "./bridge.ts";
import type { Log } from "./log.ts";

/**
 * Ports a `CONNECT` is refused for because what goes through them is TLS, which the sidecar
 * cannot read (so neither identity nor policy could apply): 443 (IANA `https`) and 8443 (the
 * common alternate HTTPS port: Tomcat's, and the Kubernetes API's on many distributions).
 */
export const DEFAULT_TLS_PORTS: readonly number[] = [443, 8443];

/**
 * How long a refused `CONNECT`'s connection stays open after the answer, for the client to
 * read it: 1 s, far above a loopback round trip. Closing at once, with input still unread,
 * would reset the connection and could destroy the answer before the client reads it.
 */
export const REFUSAL_LINGER_MS = 1_000;

/** Options of `createTunnels`. */
export interface TunnelOptions {
  /** Whether the sidecar has its config yet; until then every `CONNECT` is refused (503). */
  loaded: () => boolean;
  /** The service `hostname` (a URL's serialized host) names in the config in force, if any. */
  serviceFor: (hostname: string) => string | undefined;
  /** Whether the host is draining: new tunnels are then refused. */
  draining: () => boolean;
  log: Log;
  /** Ports refused as TLS; `DEFAULT_TLS_PORTS` by default. */
  tlsPorts?: readonly number[];
}

/** The outbound listener's `CONNECT` handling. Per listener. */
export interface Tunnels {
  /** Answers `server`'s `CONNECT`s; an accepted tunnel's socket becomes a new connection of `server`. */
  attach(server: Server): void;
  /**
   * Wraps the listener's request handler: a request inside a tunnel must name the tunnel's
   * service (by its `Host`, or its absolute-form target), else it gets `bad-request` (400).
   */
  guard(handler: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void;
  /** Tunnels open now. */
  open(): number;
}

/** Creates the `CONNECT` handling of the outbound listener. */
export function createTunnels(options: TunnelOptions): Tunnels {
  const { log } = options;
  const tlsPorts = new Set(options.tlsPorts ?? DEFAULT_TLS_PORTS);
  // The service each tunnel leads to, by its socket (the socket Node hands the request handler as `req.socket`).
  const tunnels = new WeakMap<object, string>();
  let open = 0;

  const connect = (server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Node removed its own error listener when it gave the socket up: a reset must not crash the process.
    socket.on("error", ignore);
    const target = req.url ?? "";
    const refused = (error: MeshError) => {
      log("debug", "tunnel-refused", { target: target.slice(0, 100), code: error.code });
      refuse(socket, error);
    };
    if (tunnels.has(socket)) return refused(new MeshError("bad-request", "a CONNECT inside a tunnel is not allowed"));
    const parsed = parseConnectTarget(target);
    if (!parsed.ok) return refused(new MeshError("bad-request", parsed.error));
    if (tlsPorts.has(parsed.port)) {
      return refused(new MeshError("bad-request", `port ${parsed.port} carries TLS, which the sidecar cannot tunnel: call http:// URLs (the mesh adds identity between pods)`));
    }
    // Retry after 1 s, as the bridge tells requests it sheds: the shortest the header allows.
    if (options.draining()) return refused(new MeshError("overloaded", "the sidecar is draining", { retryAfter: 1 }));
    if (!options.loaded()) return refused(new MeshError("no-endpoints", "the sidecar has not loaded its config from the control plane yet"));
    const service = options.serviceFor(parsed.hostname);
    if (service === undefined) return refused(new MeshError("unknown-service", `"${parsed.hostname.slice(0, 100)}" names no service of the mesh`));

    tunnels.set(socket, service);
    open++;
    socket.once("close", () => open--);
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    // Bytes the client sent after the CONNECT's head belong to the first request inside.
    if (head.length) socket.unshift(head);
    socket.off("error", ignore);
    server.emit("connection", socket);
    log("debug", "tunnel-opened", { service, port: parsed.port });
  };

  const guard =
    (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
    (req: IncomingMessage, res: ServerResponse): void => {
      const service = tunnels.get(req.socket);
      if (service === undefined) return handler(req, res);
      const target = req.url ?? "";
      // Absolute-form names its host in the target (RFC 9112 section 3.2.2); origin-form in `Host`.
      const hostname = target.startsWith("/") ? (req.headers.host === undefined ? undefined : hostnameOf(req.headers.host)) : URL.parse(target)?.hostname;
      // No host, or one that is no valid authority, or that names no service of the config:
      // the bridge and the stack answer those as they do outside tunnels. Only another
      // service's name would leave the tunnel's destination.
      const named = hostname === undefined ? undefined : options.serviceFor(hostname);
      if (named === undefined || named === service) return handler(req, res);
      req.resume();
      send(res, errorResponse(new MeshError("bad-request", `this tunnel leads to the service "${service}"; a request inside it may not name the service "${named}"`)), false);
    };

  return {
    attach: (server) => void server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => connect(server, req, socket, head)),
    guard,
    open: () => open,
  };
}

/** A `connect` listener that refuses every `CONNECT` (the inbound listener tunnels nothing). */
export function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
  refuseTunnel(socket);
}

/** Refuses the `CONNECT` a connection opened with (the inbound listener's `connect` hand-off). */
export function refuseTunnel(socket: Duplex): void {
  socket.on("error", ignore);
  refuse(socket, new MeshError("bad-request", "this listener does not tunnel: CONNECT is for the outbound listener"));
}

/** Writes the mesh's answer to a refused `CONNECT` (SPEC.md section 2) and closes the connection. */
function refuse(socket: Duplex, error: MeshError): void {
  const response = errorResponse(error);
  void response.text().then((body) => {
    let head = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}\r\n`;
    for (const [name, value] of response.headers) head += `${name}: ${value}\r\n`;
    head += `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
    if (socket.destroyed) return;
    socket.end(head + body);
    // Read and drop whatever else the client sent, so closing does not reset the connection.
    socket.resume();
    setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
  });
}

function ignore(): void {}
