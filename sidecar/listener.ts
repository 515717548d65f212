/**
 * The traffic listeners of the sidecar (4140 outbound, 4143 inbound), with the limits that
 * keep a client from holding one: the header read time, the idle time of a kept-alive
 * connection, the header block size and the number of connections. Requests themselves are
 * bounded by the mesh's deadlines instead. `createWireListener` is the listener (the
 * sidecar's own HTTP/1.1 server); `createListener` a `node:http` one around the same bridge,
 * which serves the requests inside `CONNECT` tunnels.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { DEFAULT_LINGER, DEFAULT_MAX_HEADER_KIB, type Bridge } from "./bridge.ts";
import { createServer as createHttp1Server, type Http1Server, type RequestHandler } from "./http1/server.ts";
import type { Log } from "./log.ts";

/**
 * How often Node looks for connections past their header timeout: every second, so a
 * connection is cut within a second of its timeout. Node's own interval (30 s) would let a
 * 10 s timeout run to 40 s; the check walks only the connections reading a request.
 */
export const DEFAULT_HEADER_CHECK_INTERVAL_MS = 1_000;

/**
 * Least time between two log lines about connections refused over the cap: 10 s, so a flood
 * is reported with its count rather than line by line.
 */
export const DEFAULT_REFUSED_LOG_INTERVAL_MS = 10_000;

/** Options of `createListener`. */
export interface ListenerOptions {
  /** For log lines: `outbound` or `inbound`. */
  name: string;
  bridge: Bridge;
  /** Time allowed to send a request's header block (`WEFT_HEADER_TIMEOUT`). */
  headerTimeoutMs: number;
  /** How long a kept-alive connection may sit idle between requests. */
  idleTimeoutMs: number;
  /** Connections beyond which new ones are closed at once (`WEFT_MAX_CONNECTIONS`). */
  maxConnections: number;
  log: Log;
  /** The request handler, when it wraps the bridge's (the outbound listener's tunnel guard). */
  handle?: (req: IncomingMessage, res: ServerResponse) => void;
}

/** Creates (without binding) a traffic listener. */
export function createListener(options: ListenerOptions): Server {
  const { bridge, log, name } = options;
  const settings = {
      // Deadlines bound requests, so Node's request timeout (5 minutes) is off: it would cut
      // long streams. Turning it off also turns off the header timeout unless set, hence this.
      requestTimeout: 0,
      headersTimeout: options.headerTimeoutMs,
      connectionsCheckingInterval: Math.min(DEFAULT_HEADER_CHECK_INTERVAL_MS, options.headerTimeoutMs),
      keepAliveTimeout: options.idleTimeoutMs,
      maxHeaderSize: DEFAULT_MAX_HEADER_KIB * 1024,
      noDelay: true,
  };
  const handler = options.handle ?? bridge.handle;
  const server: Server = createServer(settings, handler);
  server.maxConnections = options.maxConnections;
  server.on("clientError", bridge.clientError);
  server.on("drop", refusals(log, name, options.maxConnections));
  return server;
}

/**
 * Counts connections refused over a listener's cap, and logs the count at most once per
 * `DEFAULT_REFUSED_LOG_INTERVAL_MS`: a flood of refusals is one line, not one per connection.
 */
function refusals(log: Log, listener: string, maxConnections: number): () => void {
  let refused = 0;
  let lastReport = -Infinity;
  return () => {
    refused++;
    const now = Date.now();
    if (now - lastReport < DEFAULT_REFUSED_LOG_INTERVAL_MS) return;
    lastReport = now;
    log("warn", "connections-refused", { listener, refused, maxConnections });
    refused = 0;
  };
}

/** Options of `createWireListener`. */
export interface WireListenerOptions {
  /** For log lines: `outbound`, `inbound` or `inbound-tls`. */
  name: string;
  /** The request handler (a bridge's `handleWire`, or a guard around it). */
  handle: RequestHandler;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  /** Connections beyond which new ones are closed at once; for a listener that binds a port itself. */
  maxConnections: number;
  log: Log;
  /**
   * The `node:http` listener a connection that opens with `CONNECT` is handed to (the outbound
   * listener's tunnels). It never binds a port; it shares this listener's lifecycle.
   */
  tunnels?: Server;
  /** What answers a connection that opens with `CONNECT` when there are no `tunnels` (the inbound listener's refusal). */
  refuseTunnel?: (socket: Socket) => void;
}

/**
 * A traffic listener on the sidecar's own HTTP/1.1 server (`sidecar/http1`): the same limits
 * as `createListener`'s, its own parser (llhttp's rules, tested against llhttp) and a light
 * request and response in place of `IncomingMessage` and `ServerResponse`, which cost the
 * pair about a fifth of its CPU per request (docs/sidecar.md, "Transport").
 */
export interface WireListener {
  readonly wire: Http1Server;
  listen(port: number, host: string): Promise<number>;
  /** Serves a connection accepted elsewhere (the inbound front's plain and TLS connections). */
  accept(socket: Socket): void;
  close(): void;
  closeIdleConnections(): void;
  closeAllConnections(): void;
  /** Told of a connection refused over the cap by a front that counts them for this listener. */
  dropped(): void;
}

/** Creates (without binding) a traffic listener on the sidecar's own HTTP/1.1 server. */
export function createWireListener(options: WireListenerOptions): WireListener {
  const { log, name, tunnels } = options;
  const dropped = refusals(log, name, options.maxConnections);
  const wire = createHttp1Server(options.handle, {
    headersTimeoutMs: options.headerTimeoutMs,
    keepAliveTimeoutMs: options.idleTimeoutMs,
    maxHeaderSize: DEFAULT_MAX_HEADER_KIB * 1024,
    // A refused request's connection is read and drained this long before it closes, so the
    // client reads the answer: the idle bound of the bridge's own lingering close.
    lingerMs: DEFAULT_LINGER.idleMs,
    maxConnections: options.maxConnections,
    onDrop: dropped,
    ...(tunnels && {
      connect: (socket: Socket, head: Buffer) => {
        socket.unshift(head);
        tunnels.emit("connection", socket);
        socket.resume();
      },
    }),
    ...(!tunnels && options.refuseTunnel && { connect: options.refuseTunnel }),
  });
  return {
    wire,
    async listen(port, host) {
      await wire.listen(port, host);
      // node:http tracks its connections (the header timeout, idle ones on close) from its 'listening' event.
      tunnels?.emit("listening");
      return wire.address().port;
    },
    accept: (socket) => wire.accept(socket),
    close() {
      void wire.close();
      tunnels?.close();
    },
    closeIdleConnections: () => tunnels?.closeIdleConnections(),
    closeAllConnections() {
      wire.destroy();
      tunnels?.closeAllConnections();
    },
    dropped,
  };
}
