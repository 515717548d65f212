/**
 * The bridge between the sidecar's HTTP servers and the core's `Fetch`: `handleWire` for the
 * listeners' own server (`sidecar/http1`), `handle` for `node:http` (the requests inside
 * `CONNECT` tunnels). Each incoming request becomes a light `OwnedRequest` over the server's
 * parsed data (a `HeaderList` straight from the raw fields, the body left on the connection,
 * a cancellation signal made only when something asks for it), the stack answers, and the answer is written back with one `writeHead`,
 * piping an upstream's body straight through. No Web `Request`, `Headers` or stream is made
 * unless a layer asks. Errors become responses here, in this one place per listener
 * (`errorResponse`), those of requests Node could not parse included (`clientError`).
 *
 * No exception on a request's path may reach the process: every callback the bridge hangs on
 * a request, a response or a socket is safe to run after the exchange was cancelled, closed
 * or failed, and each runs under a guard that, should one throw anyway, resets that one
 * connection (and reports it) rather than let the error take the process down.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { MeshError, errorResponse } from "../src/core/errors.ts";
import { OwnedRequest, bodyStream, cancelBody, type Fetch, type HostBody, type MeshBody, type MeshResponse } from "../src/core/fetch.ts";
import { HeaderList, flatHeaders } from "../src/core/headers.ts";
import { isHostValue } from "./authority.ts";
import { BodySource } from "./body.ts";
import { connectionTokens, isHopByHop } from "./hop-by-hop.ts";
import type { IncomingBody as WireBody, LightRequest, ResponseWriter } from "./http1/server.ts";

/** How a listener reads the target of a request. */
export type Target = "proxy" | "origin";

/** Options of `createBridge`. */
export interface BridgeOptions {
  /**
   * `proxy` (the outbound listener): absolute-form targets (`GET http://orders/x`, as sent by
   * an app with `HTTP_PROXY`) or origin-form with the `Host` naming the service. `origin` (the
   * inbound listener): origin-form, the `Host` kept as it came.
   */
  target: Target;
  /** The stack that answers. */
  fetch: Fetch;
  /** Requests whose work is still running above which new ones are refused with `overloaded` (503). */
  maxInFlight: number;
  /** Whether the host is draining: responses then close their connection. */
  draining: () => boolean;
  /**
   * Told of an exception the bridge caught on a request's path (a bug: its connection was
   * reset). Never given request data, so it may be logged as it is.
   */
  onFault?: (error: unknown) => void;
  /** The caller's SPIFFE ID as the connection's mutual TLS verified it (inbound), for the identity layer. */
  peerOf?: (socket: Socket) => string | undefined;
}

/** A listener's request handler, with its count of requests in flight. */
export interface Bridge {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The same for a request of the sidecar's own HTTP/1.1 server (`sidecar/http1`). */
  handleWire(req: LightRequest, res: ResponseWriter): void;
  /**
   * The listener's `clientError` handler: a request Node could not parse gets the mesh's own
   * answer (`header-too-large` 431 for a header block over the limit, `bad-request` 400
   * otherwise) followed by a lingering close, so the client reads it rather than a reset;
   * a header timeout or a dead socket just closes the connection.
   */
  clientError(error: Error & { code?: string }, socket: Socket): void;
  /**
   * Requests whose work is still running: received, and either not yet answered or with the
   * stack still working for them (a client that hung up leaves work that the cancellation is
   * stopping; it counts until it has stopped).
   */
  inFlight(): number;
  /** Resolves when no request is in flight. */
  idle(): Promise<void>;
}

/**
 * Seconds a refused request is told to wait (`retry-after` on `overloaded`): 1, as short as
 * the header allows; the in-flight count falls as fast as responses finish.
 */
const OVERLOADED_RETRY_AFTER_S = 1;

/**
 * How long a connection is kept reading (and discarding) after the mesh answered a request it
 * could not parse and closed its side, so the client gets to read the answer: at most 30 s in
 * all and 5 s without a byte, nginx's `lingering_time` and `lingering_timeout`; and at most
 * 4 MiB, four times the 1 MB header the issue saw sent, enough for a client to finish writing
 * what it started, while more is a flood.
 */
export const DEFAULT_LINGER = { totalMs: 30_000, idleMs: 5_000, bytes: 4 * 1024 * 1024 };

/** What the bridge knows of one connection. Per connection, dropped with its socket. */
interface Connection {
  /** Requests on it whose response has not closed. */
  inFlight: number;
  /** The latest request on it, its response, and how to cancel the work done for it. */
  last: { req: IncomingMessage; res: ServerResponse; cancel: Cancel } | undefined;
  /** Set once the connection failed to parse: it is being closed; what else arrives is discarded. */
  closing: boolean;
  /** `socket.bytesRead` when the lingering close began. */
  lingerFrom: number;
}

/** Creates the handler of one listener. */
export function createBridge(options: BridgeOptions): Bridge {
  const { fetch, target, maxInFlight, draining } = options;
  let inFlight = 0;
  let waiters: (() => void)[] = [];
  const connections = new WeakMap<Socket, Connection>();

  const connectionOf = (socket: Socket): Connection => {
    let connection = connections.get(socket);
    if (connection === undefined) {
      connection = { inFlight: 0, last: undefined, closing: false, lingerFrom: 0 };
      connections.set(socket, connection);
    }
    return connection;
  };

  /** The last-resort guard: an exception on this connection's path resets it, and only it. */
  const fault = (socket: Socket | null, error: unknown) => {
    socket?.destroy();
    try {
      options.onFault?.(error);
    } catch {
      // A failing reporter must not turn a reset into a crash.
    }
  };
  const guard =
    <A extends unknown[]>(socket: Socket | null, callback: (...args: A) => void) =>
    (...args: A): void => {
      try {
        callback(...args);
      } catch (error) {
        fault(socket, error);
      }
    };

  const finished = () => {
    inFlight--;
    if (inFlight === 0 && waiters.length) {
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    }
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    try {
      inFlight++;
      const connection = connectionOf(socket);
      connection.inFlight++;
      // The work done for the request is cancelled when its client goes away before the
      // whole response was written, or its body turns out unreadable: the upstream call and
      // any retry stop, and failure accrual knows the caller gave up (a client that cuts its
      // uploads must not get a healthy endpoint ejected). The signal is made only if a layer
      // or the transport asks for it.
      const cancel = createCancel();
      const last = { req, res, cancel };
      connection.last = last;
      // The request is done when its response has closed and the stack has settled.
      let open = 2;
      const done = () => {
        if (--open === 0) finished();
      };
      res.once(
        "close",
        guard(socket, () => {
          connection.inFlight--;
          if (connection.last === last) connection.last = undefined;
          if (!res.writableFinished) cancel.abort(new DOMException("the client went away before the response was written", "AbortError"));
          done();
        }),
      );
      serve(socket, nodeWriter(res), done, () => toRequest(req, target, guard, cancel.signal), () => req.resume());
    } catch (error) {
      fault(socket, error);
    }
  };

  const handleWire = (wire: LightRequest, writer: ResponseWriter): void => {
    inFlight++;
    // As `handle`: the work is cancelled when the client goes away before the whole
    // response was written; the request counts until the response is over and the stack settled.
    const cancel = createCancel();
    let open = 2;
    const done = () => {
      if (--open === 0) finished();
    };
    writer.onClose(
      guard(wire.socket, (whole: boolean) => {
        if (!whole) cancel.abort(new DOMException("the client went away before the response was written", "AbortError"));
        done();
      }),
    );
    serve(
      wire.socket,
      writer,
      done,
      () => buildRequest(wire.method, wire.target, wire.headers, wire.remoteAddress, target, () => new WireRequestBody(wire.body), cancel.signal),
      () => discard(wire.body),
    );
  };

  /**
   * Runs the stack for one request and writes its answer to `writer`: the response, or the
   * mesh's error answer (`overloaded` over the in-flight cap, the request refused as it was
   * read, or the stack's failure). `done` is called once the stack has settled; `drop`
   * discards the body of a request refused before the stack saw it.
   */
  const serve = (socket: Socket, writer: ResponseWriter, done: () => void, build: () => OwnedRequest, drop: () => void): void => {
    let request: OwnedRequest;
    try {
      if (inFlight > maxInFlight) throw new MeshError("overloaded", "the sidecar has too many requests in flight", { retryAfter: OVERLOADED_RETRY_AFTER_S });
      request = build();
      const peer = options.peerOf?.(socket);
      if (peer !== undefined) request.meta.peer = peer;
    } catch (error) {
      done();
      drop();
      sendWire(writer, errorResponse(error), false, draining());
      return;
    }
    const head = request.method === "HEAD";
    fetch(request)
      .then(
        (response) => {
          done();
          sendWire(writer, response, head, draining());
        },
        (error: unknown) => {
          done();
          sendWire(writer, errorResponse(error, request), head, draining());
        },
      )
      .catch((error: unknown) => fault(socket, error));
  };

  const clientError = (error: Error & { code?: string }, socket: Socket): void => {
    try {
      const connection = connectionOf(socket);
      if (connection.closing) {
        // The rest of what the client sends after a parse error: discarded, within the bound.
        if (socket.bytesRead - connection.lingerFrom > DEFAULT_LINGER.bytes) socket.destroy();
        return;
      }
      const code = error.code ?? "";
      // Bytes after a request that closes the connection (a pipelined HTTP/1.0 request
      // without keep-alive, or one after `Connection: close`): HTTP/1.0 ends the exchange with
      // that request, so the response in flight is sent and the connection closed; the rest
      // is not read as a request.
      if (code === "HPE_CLOSED_CONNECTION") {
        connection.closing = true;
        connection.lingerFrom = socket.bytesRead;
        // Node closes the connection once that response is written; this only bounds the wait.
        linger(socket);
        return;
      }
      // Not a parse error (a reset, the header read timeout, a socket that cannot be written):
      // nothing useful can be said; close, as nginx does on `client_header_timeout`.
      if (!code.startsWith("HPE_") || !socket.writable) return void socket.destroy();
      const meshError =
        code === "HPE_HEADER_OVERFLOW"
          ? new MeshError("header-too-large", `the request's header block is over the sidecar's limit of ${DEFAULT_MAX_HEADER_KIB} KiB`)
          : code === "HPE_CHUNK_EXTENSIONS_OVERFLOW"
            ? new MeshError("payload-too-large", "the request's chunk extensions are over the sidecar's limit")
            : new MeshError("bad-request", `the request is not valid HTTP/1.1${parseReason(error)}`);
      connection.closing = true;
      connection.lingerFrom = socket.bytesRead;
      const last = connection.last;
      if (connection.inFlight === 0) {
        // Nothing in flight on the connection: the answer goes straight onto the socket.
        void writeAndLinger(socket, errorResponse(meshError)).catch((e: unknown) => fault(socket, e));
      } else if (connection.inFlight === 1 && last !== undefined && !last.req.complete && !last.res.headersSent) {
        // The body of the one request in flight broke its framing (or stopped short): that
        // request gets the answer, its upstream call is cancelled, and the connection closes.
        last.cancel.abort(new DOMException("the request's body could not be read to its end", "AbortError"));
        last.res.shouldKeepAlive = false;
        send(last.res, errorResponse(meshError), false);
      } else {
        // Earlier pipelined responses are still owed: no answer can be put in order; reset.
        socket.destroy();
      }
    } catch (caught) {
      fault(socket, caught);
    }
  };

  return {
    handle,
    handleWire,
    clientError,
    inFlight: () => inFlight,
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
  };
}

/**
 * The header block Node's parser accepts, in KiB: 16, Node's default (`--max-http-header-size`),
 * between nginx's 8 KiB per line (`large_client_header_buffers`) and Envoy's 60 KiB
 * (`max_request_headers_kb`), and the limit undici applies to the responses the sidecar reads.
 */
export const DEFAULT_MAX_HEADER_KIB = 16;

/** llhttp's reason for a parse error (a fixed text such as "Invalid header value char"), never input. */
function parseReason(error: Error & { reason?: unknown }): string {
  return typeof error.reason === "string" && error.reason.length <= 80 ? ` (${error.reason.toLowerCase()})` : "";
}

/**
 * Writes `response` onto a socket that has no response in flight, with `connection: close`,
 * then closes the write side and keeps reading (and discarding) what the client still sends,
 * within `DEFAULT_LINGER`, before closing it: destroying a socket with unread bytes makes the
 * kernel send a reset, which may reach the client before it read the answer.
 */
async function writeAndLinger(socket: Socket, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  let head = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}\r\n`;
  for (const [name, value] of response.headers) head += `${name}: ${value}\r\n`;
  head += `content-length: ${body.byteLength}\r\nconnection: close\r\n\r\n`;
  if (socket.destroyed) return;
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
  linger(socket);
}

/** Closes `socket` once it has been idle, or open, for longer than `DEFAULT_LINGER` allows. */
function linger(socket: Socket): void {
  socket.setTimeout(DEFAULT_LINGER.idleMs, () => socket.destroy());
  const timer = setTimeout(() => socket.destroy(), DEFAULT_LINGER.totalMs);
  socket.once("close", () => clearTimeout(timer));
}

/** A `bad-request` for a request the sidecar cannot read. */
const badRequest = (message: string) => new MeshError("bad-request", message);

/** The cancellation of one request's work: a signal made on first ask, and a way to abort it. */
interface Cancel {
  /** The signal, made on first call; aborted already when the abort came first. */
  signal(): AbortSignal;
  abort(reason: unknown): void;
}

/** A `Cancel` that makes no `AbortController` until someone asks for the signal. */
function createCancel(): Cancel {
  let controller: AbortController | undefined;
  let reason: unknown;
  let aborted = false;
  return {
    signal() {
      if (controller === undefined) {
        controller = new AbortController();
        if (aborted) controller.abort(reason);
      }
      return controller.signal;
    },
    abort(why) {
      if (aborted) return;
      aborted = true;
      reason = why;
      controller?.abort(why);
    },
  };
}

/** Wraps a callback the bridge hangs on a request's objects so that it cannot throw. */
type Guard = <A extends unknown[]>(socket: Socket | null, callback: (...args: A) => void) => (...args: A) => void;

/** A guard that only swallows, for callers of `toRequest` that have no connection to reset. */
const swallow: Guard =
  (_socket, callback) =>
  (...args) => {
    try {
      callback(...args);
    } catch {
      // nothing to reset
    }
  };

/**
 * The stack's request for an incoming Node request: URL from its target, headers (less
 * hop-by-hop ones) in a `HeaderList` straight from `rawHeaders`, the body left on the socket
 * as an `IncomingBody`, and `signal` (when given) as the caller's cancellation, read lazily.
 */
export function toRequest(req: IncomingMessage, target: Target, guard: Guard = swallow, signal?: () => AbortSignal): OwnedRequest {
  return buildRequest(req.method ?? "GET", req.url ?? "/", req.rawHeaders, req.socket?.remoteAddress, target, () => new IncomingBody(req, guard), signal);
}

/**
 * The stack's request from a request's parts as a server parsed them (method, target as sent,
 * flat fields as sent, the peer's address): the URL from the target, the fields less
 * hop-by-hop ones in a `HeaderList`, and the body (made by `body`) when the fields say there
 * is one. Throws `bad-request` for what the mesh cannot route.
 */
export function buildRequest(method: string, path: string, raw: readonly string[], address: string | undefined, target: Target, body: () => MeshBody, signal?: () => AbortSignal): OwnedRequest {
  let host: string | undefined;
  let connection: string | undefined;
  let hasBody = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === "connection") connection = value;
    else if (name === "host") {
      // RFC 9112 section 3.2: more than one Host, or one that is no authority, is a 400.
      if (host !== undefined || !isHostValue(value)) throw badRequest("the Host header must be one host[:port] (RFC 3986 authority), such as orders or orders:80");
      host = value;
    } else if (name === "content-length") hasBody ||= value !== "0";
    else if (name === "transfer-encoding") hasBody = true;
  }
  const extra = connectionTokens(connection);
  const flat: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!isHopByHop(name, extra)) flat.push(name, raw[i + 1]!);
  }

  let url: string;
  if (path.charCodeAt(0) === 47 /* / */) {
    if (!host) throw badRequest("the request names no host: send it with a Host header naming the service");
    url = `http://${authority(host)}${cleanTarget(path)}`;
  } else if (target === "proxy" && /^http:\/\//i.test(path)) {
    url = absoluteUrl(path);
  } else if (target === "proxy" && /^https:\/\//i.test(path)) {
    throw badRequest("the sidecar forwards plain HTTP only: call http:// URLs (the mesh adds identity between pods)");
  } else {
    throw badRequest("the request target is not a path");
  }

  let requestBody: MeshBody = null;
  if (hasBody) {
    if (method === "GET" || method === "HEAD") throw badRequest(`a ${method} request may not have a body`);
    requestBody = body();
  }
  // Built here from the wire and handed to the stack alone: its layers edit it in place.
  // The peer's address, for rate-limit keys; a socket already gone has none.
  const meta = address === undefined ? {} : { clientAddress: address };
  return new OwnedRequest(method, url, new HeaderList(flat), requestBody, meta, signal);
}

/** An absolute-form target as the URL the stack routes on: scheme and host lower-cased, path kept. */
function absoluteUrl(target: string): string {
  let end = 7;
  while (end < target.length && target[end] !== "/" && target[end] !== "?" && target[end] !== "#") end++;
  const hostPart = target.slice(7, end);
  if (!isHostValue(hostPart)) throw badRequest("the request target's authority must be one host[:port], such as http://orders/");
  const rest = target.slice(end);
  return `http://${authority(hostPart)}${cleanTarget(rest.charCodeAt(0) === 47 /* / */ ? rest : `/${rest}`)}`;
}

/**
 * An origin-form target as a URL serializes it. llhttp has refused spaces and control
 * characters already; a byte outside printable ASCII, or a fragment, is rare and takes the
 * URL parser's way (percent-encoded, the fragment dropped), so routes and policy match what
 * the app will be sent.
 */
function cleanTarget(target: string): string {
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 35 /* # */) {
      const url = new URL(target, "http://x");
      return url.pathname + url.search;
    }
  }
  return target;
}

/** An authority as a URL serializes it: lower-case, without http's default port. */
function authority(value: string): string {
  const lower = value.toLowerCase();
  return lower.endsWith(":80") ? lower.slice(0, -3) : lower;
}

/**
 * A request body still on the client's socket: the transport pipes `req` straight upstream
 * (`take`), and a layer that must read it (retry's replay) gets a Web stream made on demand.
 */
export class IncomingBody implements HostBody {
  readonly req: IncomingMessage;
  readonly #guard: Guard;
  #taken = false;

  constructor(req: IncomingMessage, guard: Guard = swallow) {
    this.req = req;
    this.#guard = guard;
  }

  /** Hands the Node stream itself to a consumer (the transport), once. */
  take(): IncomingMessage {
    if (this.#taken) throw new TypeError("the request body was already taken");
    this.#taken = true;
    return this.req;
  }

  stream(): ReadableStream<Uint8Array> {
    return bodyOf(this.take(), this.#guard);
  }

  /** Whether the whole body has arrived from the caller (failure accrual asks, on a timeout). */
  get complete(): boolean {
    return this.req.complete;
  }

  cancel(): void {
    if (this.#taken) return;
    this.#taken = true;
    // The rest is read and discarded, so the connection can carry the next request.
    this.req.resume();
  }
}

/**
 * An incoming body as a Web stream, read as the consumer pulls, with Node's flow control.
 * Cancelling it (the mesh answered without reading it all) discards the rest. The stream is
 * settled once (ended, failed, cancelled, or the client gone) and then lets go of the
 * request: nothing that arrives later touches its controller.
 */
function bodyOf(req: IncomingMessage, guard: Guard): ReadableStream<Uint8Array> {
  let settled = false;
  let detach = () => {};
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const settle = (how: () => void) => {
          if (settled) return;
          settled = true;
          detach();
          how();
        };
        const onData = guard(req.socket, (chunk: Buffer) => {
          if (settled) return;
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 1) <= 0) req.pause();
        });
        const onEnd = guard(req.socket, () => settle(() => controller.close()));
        const onError = guard(req.socket, (error: Error) => settle(() => controller.error(error)));
        // Closed before its end: the client went away mid-body. The socket is watched too: a
        // request whose response is already written (the mesh answered a broken body, or the
        // upstream answered before reading it all) is no longer aborted by Node when its
        // connection closes, and its body would otherwise wait for the rest forever.
        const socket = req.socket;
        const onClose = guard(socket, () => settle(() => controller.error(new Error("the client went away before the end of the request body"))));
        detach = () => {
          req.off("data", onData);
          req.off("end", onEnd);
          req.off("close", onClose);
          socket.off("close", onClose);
          // Node emits a request's errors only to listeners it has, so none is needed after this.
          req.off("error", onError);
        };
        req.on("data", onData);
        req.on("end", onEnd);
        req.on("error", onError);
        req.on("close", onClose);
        socket.on("close", onClose);
        req.pause();
      },
      pull() {
        if (!settled) req.resume();
      },
      cancel() {
        if (settled) return;
        settled = true;
        detach();
        // The rest is read and discarded, so the connection can carry the next request.
        req.resume();
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  );
}

/**
 * Writes `response` to a `node:http` response (the requests inside `CONNECT` tunnels, and the
 * answer to one whose body broke its framing), as `sendWire` writes to the sidecar's own server.
 */
export function send(res: ServerResponse, response: MeshResponse, head: boolean, close = false): void {
  sendWire(nodeWriter(res), response, head, close);
}

/** A `node:http` response as the writer `sendWire` writes to. */
function nodeWriter(res: ServerResponse): ResponseWriter {
  return {
    writeHead: (status, headers = []) => void res.writeHead(status, headers as string[]),
    write: (chunk) => res.write(chunk),
    end: (chunk) => void (chunk === undefined ? res.end() : res.end(chunk)),
    onDrain: (listener) => void res.once("drain", listener),
    fail: () => void res.destroy(),
    onClose: (listener) => {
      if (res.writableFinished || res.destroyed) listener(res.writableFinished);
      else res.once("close", () => listener(res.writableFinished));
    },
    get headersSent() {
      return res.headersSent;
    },
    get closed() {
      return res.destroyed || res.writableFinished;
    },
  };
}

/** Reads and drops a request body of the sidecar's own server nobody will read. */
function discard(body: WireBody): void {
  if (body.readableEnded) return;
  body.on("data", () => {});
  body.on("error", () => {});
  body.resume();
}

/**
 * A request body still on the connection of the sidecar's own server: the transport streams
 * it upstream as it is (`take`); a layer that must read it gets a Web stream made on demand.
 */
export class WireRequestBody implements HostBody {
  readonly wire: WireBody;
  #taken = false;

  constructor(wire: WireBody) {
    this.wire = wire;
  }

  /** Hands the body itself to a consumer (the transport), once. */
  take(): WireBody {
    if (this.#taken) throw new TypeError("the request body was already taken");
    this.#taken = true;
    return this.wire;
  }

  stream(): ReadableStream<Uint8Array> {
    const wire = this.take();
    let settled = false;
    return new ReadableStream<Uint8Array>(
      {
        start(controller) {
          wire.on("data", (chunk: Buffer) => {
            if (settled) return;
            controller.enqueue(chunk);
            if ((controller.desiredSize ?? 1) <= 0) wire.pause();
          });
          wire.on("end", () => {
            if (settled) return;
            settled = true;
            controller.close();
          });
          wire.on("error", (error: Error) => {
            if (settled) return;
            settled = true;
            controller.error(error);
          });
          wire.pause();
        },
        pull() {
          if (!settled) wire.resume();
        },
        cancel() {
          if (settled) return;
          settled = true;
          discard(wire);
        },
      },
      { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
    );
  }

  get complete(): boolean {
    return this.wire.readableEnded;
  }

  cancel(): void {
    if (this.#taken) return;
    this.#taken = true;
    discard(this.wire);
  }
}

/**
 * `send` for the sidecar's own server: status and fields less hop-by-hop ones in one
 * `writeHead`, then the body piped, written or copied, as `send` does.
 */
export function sendWire(writer: ResponseWriter, response: MeshResponse, head: boolean, close = false): void {
  const body = response.body;
  if (writer.closed || writer.headersSent) {
    cancelBody(body);
    return;
  }
  const flat = flatHeaders(response.headers);
  const headers: string[] = [];
  for (let i = 0; i < flat.length; i += 2) if (!isHopByHop(flat[i]!)) headers.push(flat[i]!, flat[i + 1]!);
  if (close) headers.push("connection", "close");
  try {
    writer.writeHead(response.status, headers);
  } catch {
    cancelBody(body);
    return sendWire(writer, errorResponse(new MeshError("upstream-unreachable", "the upstream sent a response header that cannot be forwarded")), head, close);
  }
  if (head || body === null) {
    cancelBody(body);
    writer.end();
    return;
  }
  if (body instanceof Uint8Array) {
    writer.end(body);
    return;
  }
  if (body instanceof BodySource) {
    writer.onClose((whole) => {
      if (!whole) body.cancel(new Error("the client went away"));
    });
    body.pipe({
      write: (chunk) => writer.write(chunk),
      end: () => writer.end(),
      destroy: () => writer.fail(),
      once: (_event, listener) => writer.onDrain(listener),
    });
    return;
  }
  void copyWire(bodyStream(body)!, writer);
}

/**
 * Copies a Web stream into `writer` with backpressure; a failure on either side ends both, and
 * a client that goes away cancels the stream (and the upstream call behind it).
 */
async function copyWire(body: ReadableStream<Uint8Array>, writer: ResponseWriter): Promise<void> {
  const reader = body.getReader();
  // One close listener for the whole copy; it also ends a wait for the socket to drain.
  let wake: (() => void) | undefined;
  writer.onClose((whole) => {
    if (!whole) reader.cancel().catch(() => {});
    wake?.();
  });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (writer.closed) return;
      if (!writer.write(value)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          writer.onDrain(resolve);
        });
        wake = undefined;
      }
    }
    if (!writer.closed) writer.end();
  } catch {
    writer.fail();
  }
}
