/**
 * A lean HTTP/1.1 server on `node:net` for the sidecar's listeners: requests parsed with
 * llhttp's rules (`request-parser.ts`), handed to one handler as a light request (method,
 * target, flat fields, a body handle) and a light response writer, with keep-alive,
 * pipelining, `Expect: 100-continue`, header-read and idle timeouts, and a `400`/`431`
 * answer then a lingering close for what it refuses.
 */
import { STATUS_CODES } from "node:http";
import { createServer as createNetServer } from "node:net";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import { F_CHUNKED, F_CONTENT_LENGTH } from "./fields.ts";
import { S_DONE } from "./message-parser.ts";
import type { ParserLimits } from "./message-parser.ts";
import { RequestParser } from "./request-parser.ts";
import type { RequestSink } from "./request-parser.ts";

/** Time allowed from a request's first byte to the end of its head: 60 s, Node's `server.headersTimeout`. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 60_000;

/**
 * How long a connection with no request under way may wait for the next one's first byte:
 * 5 s, Node's `server.keepAliveTimeout`, above the 3 s idle timeout of the sidecar's client
 * pools so that a client closes first. A new connection waits as long as a kept-alive one:
 * a pool holds both alike (one opened for a request that was then cancelled is idle before
 * it carried anything), and a server that closes one first races the pool's next request
 * on it. A silent client gains nothing it could not get by sending one small request first.
 */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;

/**
 * How long a refused connection is read (and the bytes dropped) after the error response,
 * before it is closed: 500 ms, Go's `net/http` `rstAvoidanceDelay`, so the client reads the
 * response before a reset can discard it.
 */
export const DEFAULT_LINGER_MS = 500;

/** Options of `createServer`. */
export interface ServerOptions extends ParserLimits {
  /** Default `DEFAULT_HEADERS_TIMEOUT_MS`. */
  headersTimeoutMs?: number;
  /** Default `DEFAULT_KEEP_ALIVE_TIMEOUT_MS`. */
  keepAliveTimeoutMs?: number;
  /** Default `DEFAULT_LINGER_MS`. */
  lingerMs?: number;
  /** Connections beyond which new ones are closed at once (Node's `server.maxConnections`); none by default. */
  maxConnections?: number;
  /** Told of each connection closed for being over `maxConnections`. */
  onDrop?: () => void;
  /**
   * Where a connection whose first request is a `CONNECT` goes: the server lets go of it and
   * hands over the socket (paused) with the bytes read from it so far. Without it, a
   * `CONNECT` is refused with 400 as any method the parser does not take.
   */
  connect?: (socket: Socket, head: Buffer) => void;
}

/** One request as the handler sees it. */
export interface LightRequest {
  readonly method: string;
  /** The request target as sent: origin form (`/path?q`), absolute form (`http://host/path`), or `*`. */
  readonly target: string;
  /** Fields, flat (`[name, value, ...]`), names as sent, values latin1 without surrounding whitespace. */
  readonly headers: string[];
  /** `"1.1"`, `"1.0"`, ... */
  readonly httpVersion: string;
  readonly body: IncomingBody;
  readonly remoteAddress: string | undefined;
  /** The connection it came on (a `TLSSocket` behind a TLS front). */
  readonly socket: Socket;
}

/** How the handler answers: `writeHead` once, then `write`s, then `end`. */
export interface ResponseWriter {
  /**
   * The status and fields (flat, names as given). Framing fields are the server's:
   * `content-length` is kept and held to; `transfer-encoding` and `connection` are set from
   * what the body and the connection need (`connection: close` is honoured). Throws a
   * `TypeError` for a field that would break the framing (a non-token name, CR, LF or NUL
   * in a value, a bad `content-length`) and a `RangeError` for a status outside 200-999.
   */
  writeHead(status: number, headers?: readonly string[]): void;
  /** A body chunk; false when the socket is full (wait for `onDrain`). */
  write(chunk: Uint8Array | string): boolean;
  /** Ends the response, with a last chunk if given. */
  end(chunk?: Uint8Array | string): void;
  /** Calls `listener` once the socket can take more. */
  onDrain(listener: () => void): void;
  /** Drops the connection: the response cannot be finished. */
  fail(): void;
  /**
   * Calls `listener` once the response is over: `true` when it was written whole, `false`
   * when the connection closed (or was dropped) before; at once if it is over already.
   */
  onClose(listener: (finished: boolean) => void): void;
  readonly headersSent: boolean;
  /** Whether the response is over (written whole, or its connection gone). */
  readonly closed: boolean;
}

/** The request handler: called once per request, when its head is in. */
export type RequestHandler = (request: LightRequest, response: ResponseWriter) => void;

/**
 * A request body as it arrives: a small event source with the shape of a Node `Readable`
 * that `Pool.dispatch` streams from (`on("data" | "end" | "error")`, `pause`, `resume`,
 * `readableEnded`), one listener per event. Chunks that come before a `data` listener, or
 * while paused, are held, and the connection stops reading until they are taken.
 */
export class IncomingBody {
  /** Whether the request has a body at all (`content-length` above 0, or chunked). */
  readonly hasBody: boolean;
  /** The trailer fields, flat, once the body ended. */
  trailers: string[] = [];
  readableEnded: boolean;
  private held: Buffer[] = [];
  private paused = false;
  private ended = false;
  private failed: Error | undefined;
  private onData: ((chunk: Buffer) => void) | undefined;
  private onEnd: (() => void) | undefined;
  private onError: ((error: Error) => void) | undefined;
  private readonly conn: { pauseBody(): void; resumeBody(): void };

  constructor(hasBody: boolean, conn: { pauseBody(): void; resumeBody(): void }) {
    this.hasBody = hasBody;
    this.readableEnded = !hasBody;
    this.ended = !hasBody;
    this.conn = conn;
  }

  on(event: "data", listener: (chunk: Buffer) => void): this;
  on(event: "end", listener: () => void): this;
  on(event: "error", listener: (error: Error) => void): this;
  on(event: "data" | "end" | "error", listener: (value: never) => void): this;
  on(event: "data" | "end" | "error", listener: (value: never) => void): this {
    if (event === "data") {
      this.onData = listener as unknown as (chunk: Buffer) => void;
      queueMicrotask(() => this.flush());
    } else if (event === "end") {
      this.onEnd = listener as unknown as () => void;
      if (this.readableEnded) queueMicrotask(() => this.onEnd?.());
    } else {
      this.onError = listener as unknown as (error: Error) => void;
      if (this.failed !== undefined) queueMicrotask(() => this.onError?.(this.failed!));
    }
    return this;
  }

  /** The same as `on`: each event comes at most once but `data`. */
  once(event: "data" | "end" | "error", listener: (value: never) => void): this {
    return this.on(event, listener);
  }

  removeListener(event: string, listener: (...args: never[]) => void): this {
    if (event === "data" && this.onData === listener) this.onData = undefined;
    if (event === "end" && this.onEnd === listener) this.onEnd = undefined;
    if (event === "error" && this.onError === listener) this.onError = undefined;
    return this;
  }

  /** Stops the data callbacks; the connection stops reading once a chunk is held. */
  pause(): this {
    this.paused = true;
    return this;
  }

  /** Restarts the data callbacks (held chunks first) and the connection's reading. */
  resume(): this {
    this.paused = false;
    this.flush();
    return this;
  }

  /** The body's chunks as an async iterable (slower than the callbacks; for tests and tools). */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    const chunks: Buffer[] = [];
    let wake: (() => void) | undefined;
    this.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      wake?.();
    });
    this.on("end", () => wake?.());
    this.on("error", () => wake?.());
    for (;;) {
      while (chunks.length > 0) yield chunks.shift()!;
      if (this.failed !== undefined) throw this.failed;
      if (this.readableEnded) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }

  /** A chunk from the connection; false asks it to stop reading. */
  push(chunk: Buffer): boolean {
    if (this.onData !== undefined && !this.paused && this.held.length === 0) {
      this.onData(chunk);
      return !this.paused;
    }
    this.held.push(chunk);
    return false;
  }

  end(trailers: string[]): void {
    this.trailers = trailers;
    this.ended = true;
    if (this.held.length === 0) this.finish();
  }

  fail(error: Error): void {
    if (this.readableEnded || this.failed !== undefined) return;
    this.failed = error;
    this.onError?.(error);
  }

  private finish(): void {
    if (this.readableEnded) return;
    this.readableEnded = true;
    this.onEnd?.();
  }

  private flush(): void {
    while (this.held.length > 0 && !this.paused && this.onData !== undefined) this.onData(this.held.shift()!);
    if (this.held.length > 0 || this.paused) return;
    if (this.ended) this.finish();
    else this.conn.resumeBody();
  }
}

/** An HTTP/1.1 server: `listen`, then `close` (graceful) or `destroy`. */
export interface Http1Server {
  listen(port: number, host?: string): Promise<void>;
  /**
   * Serves a connection accepted elsewhere (a TLS connection once its handshake is done, or
   * one a front handed over). It counts toward `connections` but not `maxConnections`.
   */
  accept(socket: Socket): void;
  address(): AddressInfo;
  /** Stops accepting; idle connections close now, busy ones after their response. Resolves once all are closed. */
  close(): Promise<void>;
  /** Closes every connection at once. */
  destroy(): void;
  /** Connections open, for tests and metrics. */
  readonly connections: number;
}

/** Creates a server that calls `handler` for each request. */
export function createServer(handler: RequestHandler, options: ServerOptions = {}): Http1Server {
  const settings: Settings = {
    handler,
    limits: { maxHeaderSize: options.maxHeaderSize, maxHeaderCount: options.maxHeaderCount },
    headersTimeoutMs: options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    lingerMs: options.lingerMs ?? DEFAULT_LINGER_MS,
    closing: false,
    connect: options.connect,
  };
  const open = new Set<ServerConnection>();
  let whenEmpty: (() => void)[] = [];
  const accept = (socket: Socket) => {
    if (settings.closing) return void socket.destroy();
    const conn = new ServerConnection(socket, settings, () => {
      open.delete(conn);
      if (open.size === 0) for (const resolve of whenEmpty.splice(0)) resolve();
    });
    open.add(conn);
  };
  // Half-open, as Node's own server: a client that ends its side mid-request still gets its answer.
  const net: NetServer = createNetServer({ allowHalfOpen: true, noDelay: true }, accept);
  if (options.maxConnections !== undefined) net.maxConnections = options.maxConnections;
  const onDrop = options.onDrop;
  if (onDrop !== undefined) net.on("drop", () => onDrop());
  return {
    accept,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        net.once("error", reject);
        net.listen(port, host, () => {
          net.removeListener("error", reject);
          resolve();
        });
      });
    },
    address: () => net.address() as AddressInfo,
    close() {
      settings.closing = true;
      net.close();
      for (const conn of open) conn.closeIfIdle();
      if (open.size === 0) return Promise.resolve();
      return new Promise((resolve) => whenEmpty.push(resolve));
    },
    destroy() {
      settings.closing = true;
      net.close();
      for (const conn of open) conn.socket.destroy();
    },
    get connections() {
      return open.size;
    },
  };
}

interface Settings {
  handler: RequestHandler;
  limits: ParserLimits;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  lingerMs: number;
  closing: boolean;
  connect: ((socket: Socket, head: Buffer) => void) | undefined;
}

const WAITING = 0; // for a request's first byte
const HEAD = 1; // inside a request's head
const BUSY = 2; // a request is being read or answered
const LINGERING = 3; // refused: the error response is out, the rest is read and dropped

/** The start of a `CONNECT` request, looked for at the start of a connection when the server hands those over. */
const CONNECT_START = Buffer.from("CONNECT ", "latin1");

/** A byte a field name may not hold (`tchar`+ only); a value may not hold CR, LF, NUL or other controls but HTAB. */
const INVALID_NAME = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** One accepted connection and its requests, one at a time. */
class ServerConnection implements RequestSink {
  readonly socket: Socket;
  private readonly settings: Settings;
  private readonly parser: RequestParser;
  private readonly onClosed: () => void;
  private state = WAITING;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Bytes read but not yet parsed: the next request's (pipelined), or the body's while it is paused. */
  private held: Buffer | null = null;
  private request: LightRequest | null = null;
  private response: Response | null = null;
  private requestDone = false;
  /** Inside `parser.execute`: a response that ends now is picked up when it returns. */
  private parsing = false;
  /** The connection's first bytes while they could still start a `CONNECT` to hand over; null once they cannot. */
  private sniffed: Buffer | null;
  private readonly listeners: { data: (chunk: Buffer) => void; end: () => void; error: () => void; close: () => void };

  constructor(socket: Socket, settings: Settings, onClosed: () => void) {
    this.socket = socket;
    this.settings = settings;
    this.onClosed = onClosed;
    this.parser = new RequestParser(this, settings.limits);
    this.sniffed = settings.connect === undefined ? null : Buffer.alloc(0);
    socket.setNoDelay(true);
    this.listeners = {
      data: (chunk: Buffer) => this.onData(chunk),
      end: () => this.onEnd(),
      error: () => {},
      close: () => {
        clearTimeout(this.timer);
        this.request?.body.fail(new Error("the connection closed"));
        this.response?.abandon();
        this.onClosed();
      },
    };
    socket.on("data", this.listeners.data);
    socket.on("end", this.listeners.end);
    socket.on("error", this.listeners.error);
    socket.on("close", this.listeners.close);
    // Idle until the first byte, as between requests; the headers timeout runs from there.
    this.arm(settings.keepAliveTimeoutMs);
  }

  /**
   * True while the current request's body is still coming in. A response whose head goes
   * out then says `connection: close`: the connection is not reused after it (`responseDone`),
   * and a client told so does not send its next request into a closing socket.
   */
  get readingBody(): boolean {
    return this.state === BUSY && !this.requestDone && this.request?.body.hasBody === true;
  }

  /** Closes the connection now if no request is under way (a graceful close of the server). */
  closeIfIdle(): void {
    if (this.state === WAITING && this.held === null) this.socket.end();
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimeout(), ms);
    this.timer.unref();
  }

  private onTimeout(): void {
    // A head not in within the headers timeout (slowloris), or a connection idle too long:
    // closed without an answer, as nginx does on `client_header_timeout`.
    if (this.state === HEAD || this.state === WAITING) this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.state === LINGERING) return;
    if (this.sniffed !== null) {
      const seen = this.sniffed.length === 0 ? chunk : Buffer.concat([this.sniffed, chunk]);
      const n = Math.min(seen.length, CONNECT_START.length);
      if (seen.compare(CONNECT_START, 0, n, 0, n) === 0) {
        if (n < CONNECT_START.length) {
          this.sniffed = seen;
          return;
        }
        return this.handOver(seen);
      }
      this.sniffed = null;
      chunk = seen;
    }
    if (this.held !== null || this.parser.paused || this.requestDone) {
      this.held = this.held === null ? chunk : Buffer.concat([this.held, chunk]);
      this.socket.pause();
      return;
    }
    this.feed(chunk);
  }

  /** Parses `chunk`; holds what belongs to the next request until this one is answered. */
  private feed(chunk: Buffer): void {
    if (this.state === WAITING) {
      this.state = HEAD;
      this.arm(this.settings.headersTimeoutMs);
    }
    const parser = this.parser;
    this.parsing = true;
    const at = parser.execute(chunk);
    this.parsing = false;
    if (this.state === LINGERING) return;
    if (at < 0) {
      const tooLarge = parser.error.includes("too large") || parser.error.includes("too many");
      this.refuse(tooLarge ? 431 : 400, tooLarge ? "the request header section is too large" : `malformed request: ${parser.error}`);
      return;
    }
    if (at < chunk.length && (parser.state === S_DONE || parser.paused)) {
      this.held = chunk.subarray(at);
      this.socket.pause();
    }
    if (parser.state === S_DONE && this.response?.finished === true) this.responseDone(this.response.keepAlive);
  }

  // ---- RequestSink ----

  onRequest(method: string, target: string, fields: string[]): void {
    clearTimeout(this.timer);
    this.state = BUSY;
    this.requestDone = false;
    const parser = this.parser;
    const flags = parser.head.flags;
    const body = new IncomingBody((flags & F_CHUNKED) !== 0 || ((flags & F_CONTENT_LENGTH) !== 0 && parser.head.contentLength > 0), this);
    const version = `${parser.major}.${parser.minor}`;
    const request: LightRequest = { method, target, headers: fields, httpVersion: version, body, remoteAddress: this.socket.remoteAddress, socket: this.socket };
    const response = new Response(this, request, parser.keepAlive && !this.settings.closing);
    this.request = request;
    this.response = response;
    const http11 = parser.major === 1 && parser.minor === 1;
    let hasHost = false;
    let expect: string | undefined;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!;
      if (name.length === 4 && name.toLowerCase() === "host") hasHost = true;
      else if (name.length === 6 && name.toLowerCase() === "expect") expect = fields[i + 1]!.toLowerCase();
    }
    // As Node's server: HTTP/1.1 needs a Host (RFC 9112 section 3.2); an expectation other
    // than 100-continue cannot be met (417); 100-continue is answered at once.
    if (http11 && !hasHost) return this.answerError(response, 400, "the request has no host field");
    if (expect !== undefined) {
      if (expect !== "100-continue") return this.answerError(response, 417, "only the 100-continue expectation is supported");
      if (http11 && body.hasBody) this.socket.write("HTTP/1.1 100 Continue\r\n\r\n", "latin1");
    }
    try {
      this.settings.handler(request, response);
    } catch {
      // A handler that throws is a bug; the connection is dropped rather than the process.
      this.socket.destroy();
      this.parser.paused = true;
    }
  }

  onBody(chunk: Buffer): void {
    const request = this.request;
    if (request === null) return;
    if (!request.body.push(chunk)) this.pauseBody();
  }

  onComplete(trailers: string[]): void {
    this.requestDone = true;
    this.request?.body.end(trailers);
  }

  /** Answers with a mesh error and ends the connection after it, reading no further request. */
  private answerError(response: Response, status: number, message: string): void {
    this.parser.paused = true;
    response.keepAlive = false;
    response.sendError(status, message);
  }

  pauseBody(): void {
    this.parser.paused = true;
    this.socket.pause();
  }

  resumeBody(): void {
    if (!this.parser.paused || this.state !== BUSY || this.requestDone) return;
    this.parser.paused = false;
    const held = this.held;
    this.held = null;
    if (held !== null) this.feed(held);
    if (!this.parser.paused && this.held === null) this.socket.resume();
  }

  /** The response ended: read the next request, or close. */
  responseDone(keepAlive: boolean): void {
    if (this.state !== BUSY) return;
    // A response that ends while the request is still being parsed (a request without a
    // body answered at once) is taken up once the parser returns.
    if (this.parsing && keepAlive && !this.settings.closing && (this.requestDone || this.request?.body.hasBody === false)) return;
    if (!keepAlive || !this.requestDone || this.settings.closing) {
      // Not reusable: a request body not read whole, `close` on either side, or draining.
      this.state = LINGERING;
      this.socket.end();
      this.linger();
      return;
    }
    this.next();
  }

  private next(): void {
    this.request = null;
    this.response = null;
    this.requestDone = false;
    this.parser.restart();
    this.parser.paused = false;
    this.state = WAITING;
    this.arm(this.settings.keepAliveTimeoutMs);
    const held = this.held;
    this.held = null;
    if (held !== null) this.feed(held);
    if (this.held === null && !this.parser.paused) this.socket.resume();
  }

  /** Lets go of a connection that starts with a `CONNECT`, for the `connect` option's handler. */
  private handOver(head: Buffer): void {
    const socket = this.socket;
    socket.pause();
    clearTimeout(this.timer);
    socket.off("data", this.listeners.data);
    socket.off("end", this.listeners.end);
    socket.off("error", this.listeners.error);
    socket.off("close", this.listeners.close);
    this.state = LINGERING;
    this.onClosed();
    this.settings.connect!(socket, head);
  }

  private onEnd(): void {
    // The client is done sending, as Node's server reads it (`httpAllowHalfOpen` off): inside
    // a request's head or body, the request is cut and refused with 400 (unless its response
    // has begun); otherwise the client has gone away, so the connection closes and a response
    // under way settles as not written (its work is cancelled).
    if (this.state === HEAD) return this.refuse(400, "the connection ended inside the request head");
    if (this.state === BUSY && !this.requestDone) return this.refuse(400, "the connection ended before the request body did");
    if (this.state === LINGERING) return;
    this.response?.abandon();
    this.socket.end();
  }

  /** Refuses the input: a `400`/`431` answer unless a response is under way, then a lingering close. */
  private refuse(status: number, message: string): void {
    this.parser.paused = true;
    const response = this.response;
    this.request?.body.fail(new Error(message));
    if (response !== null && response.headersSent) {
      this.socket.destroy();
      return;
    }
    response?.abandon();
    this.state = LINGERING;
    this.socket.end(errorResponse(status, message), "latin1");
    this.linger();
  }

  private linger(): void {
    this.socket.resume();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.socket.destroy(), this.settings.lingerMs);
    this.timer.unref();
  }
}

/** A mesh error response (SPEC.md section 2) that closes the connection. */
function errorResponse(status: number, message: string): string {
  // SPEC.md section 2's codes: a header section over the limits is `header-too-large`.
  const code = status === 431 ? "header-too-large" : "bad-request";
  const body = JSON.stringify({ error: { code, message } });
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\ncontent-type: application/json\r\nweft-error: ${code}\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** Lets a tick's held writes go (`Response.corkForTick`). */
function uncorkTick(response: Response, socket: Socket): void {
  response.uncorked(socket);
}

/** The writer of one response. */
class Response implements ResponseWriter {
  private readonly conn: ServerConnection;
  private readonly request: LightRequest;
  keepAlive: boolean;
  headersSent = false;
  finished = false;
  private dead = false;
  private status = 200;
  private fields: readonly string[] = [];
  private headPending = false;
  private declared = -1;
  private sent = 0;
  private chunked = false;
  private bodyless: boolean;
  private settled: boolean | undefined;
  private closeListeners: ((finished: boolean) => void)[] | undefined;
  /** Whether this tick's writes are being held (`corkForTick`). */
  private corked = false;

  constructor(conn: ServerConnection, request: LightRequest, keepAlive: boolean) {
    this.conn = conn;
    this.request = request;
    this.keepAlive = keepAlive;
    this.bodyless = request.method === "HEAD";
  }

  writeHead(status: number, headers: readonly string[] = []): void {
    if (this.headPending || this.headersSent) throw new Error("writeHead called twice");
    if (!Number.isInteger(status) || status < 200 || status > 999) throw new RangeError(`invalid status ${status}`);
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (INVALID_NAME.test(headers[i]!) || headers[i]!.length === 0) throw new TypeError("invalid response field name");
      if (INVALID_VALUE.test(headers[i + 1]!)) throw new TypeError(`invalid character in the value of ${headers[i]}`);
    }
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (headers[i]!.length !== 14 || headers[i]!.toLowerCase() !== "content-length") continue;
      if (!/^\d{1,15}$/.test(headers[i + 1]!)) throw new TypeError("invalid content-length");
      this.declared = Number(headers[i + 1]);
    }
    this.status = status;
    this.fields = headers;
    this.headPending = true;
    if (status === 204 || status === 304) this.bodyless = true;
  }

  /** The head, with the framing and connection fields this response needs; `length` is the whole body's when known, else -1. */
  private head(length: number): string {
    let head = `HTTP/1.1 ${this.status} ${STATUS_CODES[this.status] ?? "Unknown"}\r\n`;
    const fields = this.fields;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i]!;
      const lower = name.length === 10 || name.length === 14 || name.length === 17 ? name.toLowerCase() : "";
      if (lower === "connection") {
        if (/(^|,)\s*close\s*(,|$)/i.test(fields[i + 1]!)) this.keepAlive = false;
        continue;
      }
      if (lower === "transfer-encoding") continue;
      head += `${name}: ${fields[i + 1]}\r\n`;
    }
    if (this.declared < 0 && !this.bodyless) {
      if (length >= 0) head += `content-length: ${length}\r\n`;
      else if (this.request.httpVersion === "1.1") {
        head += "transfer-encoding: chunked\r\n";
        this.chunked = true;
      } else this.keepAlive = false; // an HTTP/1.0 client reads the body until the close
    }
    if (this.keepAlive && this.conn.readingBody) this.keepAlive = false;
    if (!this.keepAlive) head += "connection: close\r\n";
    else if (this.request.httpVersion === "1.0") head += "connection: keep-alive\r\n";
    return `${head}\r\n`;
  }

  write(data: Uint8Array | string): boolean {
    if (this.dead || this.finished) return false;
    if (!this.headPending && !this.headersSent) this.writeHead(200);
    const chunk = typeof data === "string" ? Buffer.from(data) : data;
    const socket = this.conn.socket;
    this.corkForTick(socket);
    if (!this.headersSent) {
      socket.write(this.head(-1), "latin1");
      this.headersSent = true;
    }
    let ok = true;
    if (chunk.byteLength > 0 && !this.bodyless) {
      this.sent += chunk.byteLength;
      if (this.declared >= 0 && this.sent > this.declared) {
        this.fail();
        return false;
      }
      if (this.chunked) {
        socket.write(`${chunk.byteLength.toString(16)}\r\n`, "latin1");
        socket.write(chunk);
        ok = socket.write("\r\n", "latin1");
      } else ok = socket.write(chunk);
    }
    return ok;
  }

  /**
   * Holds what the response writes in this tick and sends it in one go on the next, as
   * `node:http` does: a streamed body's chunk and the end that follows it in the same tick
   * (a small chunked answer relayed from upstream) leave in one write, so a process killed
   * between the two cannot leave the client with a response cut after its last chunk.
   */
  private corkForTick(socket: Socket): void {
    if (this.corked) return;
    this.corked = true;
    socket.cork();
    process.nextTick(uncorkTick, this, socket);
  }

  /** The end of a tick's writes (`corkForTick`). */
  uncorked(socket: Socket): void {
    this.corked = false;
    if (!socket.destroyed) socket.uncork();
  }

  end(data?: Uint8Array | string): void {
    if (this.dead || this.finished) return;
    if (!this.headPending && !this.headersSent) this.writeHead(200);
    const socket = this.conn.socket;
    if (!this.headersSent) {
      // The whole body is known now: sent with its length, in one write with the head.
      const chunk = data === undefined ? undefined : typeof data === "string" ? Buffer.from(data) : data;
      const length = chunk?.byteLength ?? 0;
      if (this.declared >= 0 && !this.bodyless && length !== this.declared) return this.fail();
      socket.cork();
      const head = this.head(length);
      this.headersSent = true;
      if (chunk !== undefined && length > 0 && !this.bodyless) {
        socket.write(head, "latin1");
        socket.write(chunk, this.flushed);
      } else socket.write(head, "latin1", this.flushed);
      this.sent = length;
      socket.uncork();
    } else {
      if (data !== undefined) this.write(data);
      if (this.dead) return;
      if (this.declared >= 0 && !this.bodyless && this.sent !== this.declared) return this.fail();
      // The last write's callback says the response left (a TLS socket buffers what it encrypts).
      socket.write(this.chunked ? "0\r\n\r\n" : "", "latin1", this.flushed);
    }
    this.finished = true;
    this.conn.responseDone(this.keepAlive);
  }

  onDrain(listener: () => void): void {
    this.conn.socket.once("drain", listener);
  }

  fail(): void {
    this.dead = true;
    this.conn.socket.destroy();
    this.settle(false);
  }

  get closed(): boolean {
    return this.settled !== undefined;
  }

  onClose(listener: (finished: boolean) => void): void {
    if (this.settled !== undefined) return listener(this.settled);
    (this.closeListeners ??= []).push(listener);
  }

  /** The last write's callback: the response is over once its bytes have left the socket's buffers. */
  private readonly flushed = (error?: Error | null): void => this.settle(error == null);

  private settle(finished: boolean): void {
    if (this.settled !== undefined) return;
    this.settled = finished;
    const listeners = this.closeListeners;
    this.closeListeners = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener(finished);
  }

  /** A mesh error answer in place of the handler's (refused before the handler ran). */
  sendError(status: number, message: string): void {
    this.dead = true;
    this.headersSent = true;
    this.finished = true;
    this.conn.socket.write(errorResponse(status, message), "latin1", this.flushed);
    this.conn.responseDone(false);
  }

  /** The connection is gone or refused: later calls do nothing. */
  abandon(): void {
    this.dead = true;
    this.settle(false);
  }
}
