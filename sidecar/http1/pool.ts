/**
 * A lean HTTP/1.1 client on `node:net`: keep-alive connections to one origin, driven through
 * a callback handler shaped like undici's low-level `Dispatcher.dispatch`, with no streams,
 * promises or events made per request beyond the socket's own.
 */
import { connect } from "node:net";
import type { Socket } from "node:net";
import { Http1Error } from "./errors.ts";
import type { Http1ErrorCode } from "./errors.ts";
import { S_DONE } from "./message-parser.ts";
import { requestHead } from "./request-head.ts";
import type { HeadFacts } from "./request-head.ts";
import { ResponseParser } from "./response-parser.ts";
import type { ResponseSink } from "./response-parser.ts";

/**
 * Time allowed to open a connection to another pod: 1 s, linkerd2-proxy's outbound connect
 * timeout (`LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT`, the chart's `1000ms`).
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 1_000;

/**
 * Time allowed to open a connection to the app on localhost: 100 ms, the Linkerd chart's
 * inbound connect timeout (`proxy.inboundConnectTimeout`); the proxy's own default is 300 ms.
 */
export const DEFAULT_APP_CONNECT_TIMEOUT_MS = 100;

/**
 * How long an idle connection is kept: 3 s, linkerd2-proxy's HTTP/1 pool idle timeout. It
 * is below the 5 s `keepAliveTimeout` of Node's server, so this side closes first and a
 * request seldom races a closing socket.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 3_000;

/** A request body: none, bytes, text (sent as UTF-8), or a stream of bytes (a Node `Readable` such as an `IncomingMessage`, or any async iterable). */
export type RequestBody = null | undefined | Uint8Array | string | NodeReadable | AsyncIterable<Uint8Array | string>;

/** The part of a Node `Readable` the client uses. */
export interface NodeReadable extends AsyncIterable<unknown> {
  on(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  once(event: "end" | "error", listener: (error?: Error) => void): unknown;
  removeListener(event: string, listener: (...args: never[]) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  readableEnded?: boolean;
}

/** One request, as undici's `DispatchOptions` has it. */
export interface DispatchOptions {
  method: string;
  /** The request target: path and query (origin form). */
  path: string;
  /** Fields, flat (`[name, value, ...]`), names as they are to be sent; `host` defaults to the origin's. */
  headers?: readonly string[] | null;
  body?: RequestBody;
  /**
   * Whether the request may be sent again on a new connection when a kept-alive one closes
   * before any byte of the response: by default for the idempotent methods of RFC 9110
   * section 9.2.2 with a body held in memory.
   */
  idempotent?: boolean;
}

/**
 * Receives one request's outcome. Callbacks come in this order: `onConnect` once,
 * synchronously inside `dispatch`; then `onHeaders` once for the final response (interim
 * `1xx` are skipped); then `onData` for each slice of the body; then exactly one of
 * `onComplete` or `onError`, and nothing after it. An abort (through `onConnect`'s function)
 * before that end reports `onError` with the abort's reason at once and drops the connection;
 * an abort after it does nothing.
 */
export interface DispatchHandler {
  /** `abort` ends the request at any time, with `reason` as its error. */
  onConnect?(abort: (reason?: Error) => void): void;
  /**
   * The response head: fields flat, names as sent, values latin1. Returning false pauses the
   * connection until `resume` is called; no `onData` comes before that.
   */
  onHeaders(status: number, headers: string[], resume: () => void): boolean | void;
  /**
   * A slice of the body: a view of the bytes read from the socket, which stay valid (Node
   * reads each into a fresh buffer). Returning false pauses the connection until `resume`.
   */
  onData(chunk: Buffer): boolean | void;
  /** The response ended; `trailers` flat, empty without a trailer section. */
  onComplete(trailers: string[]): void;
  /** The request failed; an `Http1Error`, or the reason an abort was given. */
  onError(error: Error): void;
}

/** Options of a `Pool`. */
export interface PoolOptions {
  /** Default `DEFAULT_CONNECT_TIMEOUT_MS`. */
  connectTimeoutMs?: number;
  /** Default `DEFAULT_IDLE_TIMEOUT_MS`. */
  idleTimeoutMs?: number;
  /** Most connections at once; requests beyond wait in order. Unbounded when absent. */
  connections?: number;
  /** `TCP_NODELAY` on each connection (default true: a request or response is one write, so there is nothing to coalesce). */
  noDelay?: boolean;
  /** Most bytes in a response's header section (default `DEFAULT_MAX_HEADER_SIZE`). */
  maxHeaderSize?: number;
  /** Most fields in a response's header section (default `DEFAULT_MAX_HEADER_COUNT`). */
  maxHeaderCount?: number;
}

/** RFC 9110 section 9.2.2. */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** One request from `dispatch` to its end. */
class Pending {
  readonly method: string;
  readonly head: string;
  readonly body: RequestBody;
  /** The body's bytes when held in memory; undefined for a stream. */
  readonly bytes: Uint8Array | null | undefined;
  /** The declared `content-length` of a streamed body, or -1 (then sent chunked). */
  readonly declaredLength: number;
  readonly close: boolean;
  readonly replayable: boolean;
  readonly handler: DispatchHandler;
  done = false;
  retried = false;
  conn: Connection | null = null;
  readonly abort: (reason?: Error) => void;

  constructor(pool: Pool, options: DispatchOptions, handler: DispatchHandler, head: string, bytes: Uint8Array | null | undefined, facts: HeadFacts) {
    this.method = options.method;
    this.head = head;
    this.body = options.body;
    this.bytes = bytes;
    this.declaredLength = facts.declaredLength;
    this.close = facts.close;
    this.handler = handler;
    this.replayable = bytes !== undefined && (options.idempotent ?? IDEMPOTENT.has(options.method));
    this.abort = (reason?: Error) => pool.abort(this, reason ?? new Http1Error("aborted", "the request was aborted", this.conn?.headed !== true));
  }
}

/** The bytes of a body held in memory; undefined for a stream. */
function bytesOf(body: RequestBody): Uint8Array | null | undefined {
  if (body === null || body === undefined) return null;
  if (typeof body === "string") return Buffer.from(body);
  if (body instanceof Uint8Array) return body;
  return undefined;
}

/**
 * Keep-alive connections to one origin (`http://host:port`). Per process and origin. A
 * connection carries one request at a time (no pipelining) and is reused only once its
 * response ended cleanly, its request was written whole, neither side said `close`, and
 * nothing came after the response. Idle connections close after `idleTimeoutMs`.
 */
export class Pool {
  readonly host: string;
  readonly port: number;
  /** The `host` field sent when the caller gives none. */
  readonly authority: string;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly noDelay: boolean;
  readonly limits: { maxHeaderSize?: number; maxHeaderCount?: number };
  private readonly maxConnections: number;
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private queue: Pending[] = [];
  private sweep: ReturnType<typeof setTimeout> | undefined;
  private closing = false;
  private closed: (() => void)[] = [];
  private readonly facts: HeadFacts = { declaredLength: -1, close: false };

  constructor(origin: string, options: PoolOptions = {}) {
    const url = new URL(origin);
    if (url.protocol !== "http:") throw new TypeError(`only http: origins are supported, not ${url.protocol}`);
    this.host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === "" ? 80 : Number(url.port);
    this.authority = url.host;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.noDelay = options.noDelay ?? true;
    this.maxConnections = options.connections ?? Infinity;
    this.limits = { maxHeaderSize: options.maxHeaderSize, maxHeaderCount: options.maxHeaderCount };
  }

  /** Connections open (or opening), idle ones, and requests waiting for a connection. */
  get stats(): { connections: number; idle: number; queued: number } {
    return { connections: this.all.size, idle: this.idle.length, queued: this.queue.length };
  }

  /** Sends a request; its outcome comes to `handler` (see `DispatchHandler`). Never throws. */
  dispatch(options: DispatchOptions, handler: DispatchHandler): void {
    const bytes = bytesOf(options.body);
    const length = bytes === undefined ? -1 : bytes === null ? 0 : bytes.byteLength;
    const head = requestHead(options.method, options.path, options.headers ?? [], this.authority, length, this.facts);
    const pending = new Pending(this, options, handler, typeof head === "string" ? head : "", bytes, this.facts);
    handler.onConnect?.(pending.abort);
    if (pending.done) return;
    if (typeof head !== "string") return this.fail(pending, new Http1Error("invalid-request", head.invalid, true));
    if (this.closing) return this.fail(pending, new Http1Error("closed", "the pool is closed", true));
    this.queue.push(pending);
    this.drain();
  }

  /** Stops taking requests; those queued and in flight finish, then every connection closes. */
  close(): Promise<void> {
    this.closing = true;
    for (const conn of this.idle.splice(0)) conn.destroy();
    return this.whenClosed();
  }

  /** Ends every request at once (`onError` with `reason`, or a `closed` error) and closes every connection. */
  destroy(reason?: Error): Promise<void> {
    this.closing = true;
    const error = (beforeResponse: boolean) => reason ?? new Http1Error("closed", "the pool was destroyed", beforeResponse);
    for (const pending of this.queue.splice(0)) this.fail(pending, error(true));
    for (const conn of [...this.all]) {
      const pending = conn.pending;
      if (pending !== null) this.fail(pending, error(!conn.headed));
      conn.destroy();
    }
    this.idle.length = 0;
    return this.whenClosed();
  }

  private whenClosed(): Promise<void> {
    if (this.all.size === 0 && this.queue.length === 0) {
      this.stopSweep();
      return Promise.resolve();
    }
    return new Promise((resolve) => this.closed.push(resolve));
  }

  private checkClosed(): void {
    if (!this.closing || this.all.size > 0 || this.queue.length > 0) return;
    this.stopSweep();
    for (const resolve of this.closed.splice(0)) resolve();
  }

  /** Reports `error` to a request not yet ended. */
  fail(pending: Pending, error: Error): void {
    if (pending.done) return;
    pending.done = true;
    pending.handler.onError(error);
  }

  /** An abort from the caller: the request ends now and its connection, if any, is dropped. */
  abort(pending: Pending, reason: Error): void {
    if (pending.done) return;
    const conn = pending.conn;
    if (conn !== null) conn.destroy();
    else {
      const at = this.queue.indexOf(pending);
      if (at >= 0) this.queue.splice(at, 1);
    }
    this.fail(pending, reason);
    this.checkClosed();
  }

  /** Gives waiting requests connections: idle ones first (the most recently used), then new ones up to the limit. */
  private drain(): void {
    const queue = this.queue;
    while (queue.length > 0) {
      let conn = this.idle.pop();
      while (conn !== undefined && conn.closing) conn = this.idle.pop();
      if (conn === undefined) {
        if (this.all.size >= this.maxConnections) return;
        conn = new Connection(this);
        this.all.add(conn);
      }
      conn.assign(queue.shift()!);
    }
  }

  /** A connection finished its request and may carry another. */
  release(conn: Connection): void {
    if (this.closing && this.queue.length === 0) {
      conn.destroy();
      return;
    }
    conn.idleSince = performance.now();
    this.idle.push(conn);
    if (this.queue.length > 0) this.drain();
    else if (this.sweep === undefined) this.armSweep(this.idleTimeoutMs);
  }

  /** A connection closed: forget it, send a request it lost once more if that is safe, serve the queue. */
  gone(conn: Connection, retry: Pending | null): void {
    this.all.delete(conn);
    const at = this.idle.indexOf(conn);
    if (at >= 0) this.idle.splice(at, 1);
    if (retry !== null) {
      retry.retried = true;
      retry.conn = null;
      this.queue.unshift(retry);
    }
    if (this.queue.length > 0) this.drain();
    this.checkClosed();
  }

  private armSweep(delay: number): void {
    this.sweep = setTimeout(() => {
      this.sweep = undefined;
      const now = performance.now();
      let next = Infinity;
      for (const conn of [...this.idle]) {
        const left = conn.idleSince + this.idleTimeoutMs - now;
        if (left <= 0) conn.destroy();
        else next = Math.min(next, left);
      }
      if (next !== Infinity) this.armSweep(next);
    }, delay);
    this.sweep.unref();
  }

  private stopSweep(): void {
    if (this.sweep !== undefined) clearTimeout(this.sweep);
    this.sweep = undefined;
  }
}

/** One connection of a pool, and the request it carries. */
class Connection implements ResponseSink {
  readonly pool: Pool;
  readonly socket: Socket;
  readonly parser: ResponseParser;
  pending: Pending | null = null;
  idleSince = 0;
  /** Whether the response head of the current request was handed on. */
  headed = false;
  private connected = false;
  private timedOut = false;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether this connection carried a request before the current one. */
  private reused = false;
  private responseBytes = 0;
  private written = false;
  private finished = false;
  /** Cleared when something rules out reusing the connection after this response. */
  private reusable = true;
  /** Inside a handler callback, where a `resume` is noted rather than run. */
  private inCallback = false;
  private resumeAsked = false;
  private trailers: string[] = [];
  /** The unparsed rest of a socket read, held while the handler paused. */
  private leftover: Buffer | null = null;
  /** The peer ended the connection while the handler paused. */
  private ended = false;
  private error: Error | undefined;
  private gone = false;
  private readonly resume = () => this.onResume();

  constructor(pool: Pool) {
    this.pool = pool;
    this.parser = new ResponseParser(this, pool.limits);
    const socket = connect({ host: pool.host, port: pool.port, noDelay: pool.noDelay });
    this.socket = socket;
    this.connectTimer = setTimeout(() => {
      this.timedOut = true;
      socket.destroy();
    }, pool.connectTimeoutMs);
    socket.once("connect", () => {
      clearTimeout(this.connectTimer);
      this.connected = true;
      if (this.pending !== null) this.send(this.pending);
    });
    socket.on("data", (chunk: Buffer) => this.onSocketData(chunk));
    socket.on("end", () => this.onEnd());
    socket.on("error", (error) => (this.error ??= error));
    socket.on("close", () => this.onClose());
  }

  assign(pending: Pending): void {
    this.pending = pending;
    pending.conn = this;
    this.headed = false;
    this.responseBytes = 0;
    this.written = false;
    this.finished = false;
    this.parser.expect(pending.method);
    if (this.connected) this.send(pending);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Whether the connection is closed or closing: not to be handed a request. */
  get closing(): boolean {
    return this.gone || this.socket.destroyed || this.socket.readableEnded;
  }

  private send(pending: Pending): void {
    const socket = this.socket;
    const bytes = pending.bytes;
    if (bytes !== undefined) {
      if (bytes === null || bytes.byteLength === 0) socket.write(pending.head, "latin1");
      else {
        socket.cork();
        socket.write(pending.head, "latin1");
        socket.write(bytes);
        socket.uncork();
      }
      this.written = true;
      return;
    }
    socket.write(pending.head, "latin1");
    this.pump(pending);
  }

  /** Streams a request body: chunked unless a length was declared, pausing the source while the socket is full. */
  private pump(pending: Pending): void {
    const socket = this.socket;
    const body = pending.body as NodeReadable | AsyncIterable<Uint8Array | string>;
    const chunked = pending.declaredLength < 0;
    let sent = 0;
    const live = () => this.pending === pending && !pending.done;
    const failBody = (message: string, cause?: unknown) => {
      if (!live()) return;
      this.pool.fail(pending, new Http1Error("request-body", message, !this.headed, cause));
      this.destroy();
    };
    /** Writes one chunk; false when the socket wants a pause (or the chunk broke the declared length). */
    const write = (data: Uint8Array | string): boolean => {
      const chunk = typeof data === "string" ? Buffer.from(data) : data;
      if (chunk.byteLength === 0) return true;
      sent += chunk.byteLength;
      if (!chunked) {
        if (sent > pending.declaredLength) {
          failBody("the request body is longer than its content-length");
          return false;
        }
        return socket.write(chunk);
      }
      socket.cork();
      socket.write(`${chunk.byteLength.toString(16)}\r\n`, "latin1");
      socket.write(chunk);
      const ok = socket.write("\r\n", "latin1");
      socket.uncork();
      return ok;
    };
    const end = () => {
      if (!live()) return;
      if (!chunked && sent !== pending.declaredLength) return failBody("the request body is shorter than its content-length");
      if (chunked) socket.write("0\r\n\r\n", "latin1");
      this.written = true;
    };
    if (isNodeReadable(body)) {
      const onData = (data: Buffer | string) => {
        if (!live()) return cleanup();
        if (!write(data) && live()) {
          body.pause();
          socket.once("drain", () => body.resume());
        }
      };
      const onEnd = () => {
        cleanup();
        end();
      };
      const onError = (error?: Error) => {
        cleanup();
        failBody("the request body failed", error);
      };
      const cleanup = () => {
        body.removeListener("data", onData);
        body.removeListener("end", onEnd);
        body.removeListener("error", onError);
      };
      if (body.readableEnded === true) return end();
      body.on("data", onData);
      body.once("end", onEnd);
      body.once("error", onError);
      return;
    }
    void (async () => {
      const iterator = body[Symbol.asyncIterator]();
      try {
        for (;;) {
          const next = await iterator.next();
          if (next.done === true) break;
          if (!live()) {
            await iterator.return?.();
            return;
          }
          if (!write(next.value) && live()) await new Promise((resolve) => socket.once("drain", resolve));
        }
        end();
      } catch (error) {
        failBody("the request body failed", error);
      }
    })();
  }

  private onSocketData(chunk: Buffer): void {
    const pending = this.pending;
    if (pending === null || pending.done) {
      // Bytes nobody asked for (on an idle connection): the connection is out of step.
      this.destroy();
      return;
    }
    this.responseBytes += chunk.length;
    if (this.parser.paused) {
      // A read that was already under way when the handler paused: held with the rest.
      this.leftover = this.leftover === null ? chunk : Buffer.concat([this.leftover, chunk]);
      this.socket.pause();
      return;
    }
    this.execute(chunk, pending);
  }

  private execute(chunk: Buffer, pending: Pending): void {
    const parser = this.parser;
    const at = parser.execute(chunk);
    if (pending.done) return; // aborted from a callback; the socket is gone
    if (at < 0) {
      this.pool.fail(pending, new Http1Error("invalid-response", `invalid response: ${parser.error}`, !this.headed));
      this.destroy();
      return;
    }
    if (parser.state === S_DONE) {
      if (at < chunk.length) this.reusable = false;
      this.afterResponse();
      return;
    }
    if (parser.paused && at < chunk.length) this.leftover = chunk.subarray(at);
  }

  /** The response ended: reuse or drop the connection, then tell the handler. */
  private afterResponse(): void {
    const pending = this.pending!;
    this.pending = null;
    pending.done = true;
    const keep = this.reusable && this.parser.keepAlive && !pending.close && this.leftover === null && !this.gone;
    this.reusable = true;
    if (keep) {
      this.reused = true;
      // A pause was that response's: asked on the body's last chunk, nobody lifts it once the
      // body ended; lifted by a resume that ended the response from the bytes held, the
      // socket is still paused. The connection must read its next response (and a close).
      this.parser.paused = false;
      if (this.socket.isPaused()) this.socket.resume();
      this.pool.release(this);
    } else this.destroy();
    pending.handler.onComplete(this.trailers);
  }

  // ---- ResponseSink: called from inside `parser.execute` ----

  onHead(status: number, fields: string[]): void {
    const pending = this.pending!;
    this.headed = true;
    this.inCallback = true;
    const more = pending.handler.onHeaders(status, fields, this.resume);
    this.afterCallback(pending, more);
  }

  onBody(chunk: Buffer): void {
    const pending = this.pending!;
    if (pending.done) return;
    this.inCallback = true;
    const more = pending.handler.onData(chunk);
    this.afterCallback(pending, more);
  }

  private afterCallback(pending: Pending, more: boolean | void): void {
    this.inCallback = false;
    if (more === false && !this.resumeAsked) this.pause();
    this.resumeAsked = false;
    // Aborted from inside the callback: stop parsing what is left of this read.
    if (pending.done) this.parser.paused = true;
  }

  onComplete(trailers: string[]): void {
    this.finished = true;
    this.trailers = trailers;
    if (!this.written) {
      // The server answered before the request was written whole: take the answer, and
      // drop the connection rather than finish a body it did not wait for.
      this.reusable = false;
      this.written = true;
    }
  }

  private pause(): void {
    this.parser.paused = true;
    this.socket.pause();
  }

  private onResume(): void {
    if (this.inCallback) {
      this.resumeAsked = true;
      return;
    }
    const pending = this.pending;
    if (pending === null || pending.done || !this.parser.paused) return;
    this.parser.paused = false;
    const leftover = this.leftover;
    if (leftover !== null) {
      this.leftover = null;
      this.execute(leftover, pending);
      if (this.parser.paused || pending.done || this.pending !== pending) return;
    }
    if (this.ended) this.onEnd();
    else this.socket.resume();
  }

  private onEnd(): void {
    if (this.parser.paused && this.leftover !== null) {
      this.ended = true;
      return;
    }
    const pending = this.pending;
    if (pending === null || pending.done) {
      this.destroy(); // an idle connection the server closed
      return;
    }
    if (this.parser.finish() && this.finished) {
      this.reusable = false;
      this.afterResponse();
    }
  }

  private onClose(): void {
    this.gone = true;
    clearTimeout(this.connectTimer);
    const pending = this.pending;
    this.pending = null;
    let retry: Pending | null = null;
    if (pending !== null && !pending.done) {
      if (this.reused && this.responseBytes === 0 && pending.replayable && !pending.retried) {
        // A kept-alive connection closed under a request before any byte of its response:
        // the race every pool has with a server closing an idle connection. Sent once more.
        retry = pending;
      } else this.pool.fail(pending, this.failure());
    }
    this.pool.gone(this, retry);
  }

  /** Why the current request failed, from how far the connection got. */
  private failure(): Http1Error {
    const cause = this.error;
    if (!this.connected) {
      const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
      if (this.timedOut) return new Http1Error("connect-timeout", `no connection to ${this.pool.authority} within ${this.pool.connectTimeoutMs} ms`, true);
      const code: Http1ErrorCode = errno === "ECONNREFUSED" ? "connect-refused" : "connect-failed";
      return new Http1Error(code, `cannot connect to ${this.pool.authority}${errno === undefined ? "" : ` (${errno})`}`, true, cause);
    }
    if (!this.headed) return new Http1Error("connection-reset", "the connection closed before a response", true, cause);
    return new Http1Error("response-cut", "the connection closed before the response ended", false, cause);
  }
}

function isNodeReadable(body: unknown): body is NodeReadable {
  return typeof (body as NodeReadable).on === "function" && typeof (body as NodeReadable).pause === "function";
}
