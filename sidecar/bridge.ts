/**
 * The bridge between Node's HTTP server and the core's `Fetch`: each incoming request becomes
 * a light `OwnedRequest` over Node's own parsed data (no Web `Request`, `Headers` or stream
 * unless a layer asks), the stack answers, and the answer is written back with one
 * `writeHead` and the upstream's body piped straight through. Errors become responses here,
 * in this one place per listener (`errorResponse`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { MeshError, errorResponse } from "../src/core/errors.ts";
import { OwnedRequest, type Fetch, type HostBody, type MeshBody, type MeshResponse } from "../src/core/fetch.ts";
import { HeaderList, flatHeaders } from "../src/core/headers.ts";
import { isHostValue } from "./authority.ts";
import { BodySource } from "./body.ts";
import { connectionTokens, isHopByHop } from "./hop-by-hop.ts";

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
}

/** A listener's request handler, with its count of requests in flight. */
export interface Bridge {
  handle(req: IncomingMessage, res: ServerResponse): void;
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

/** Creates the handler of one listener. */
export function createBridge(options: BridgeOptions): Bridge {
  const { fetch, target, maxInFlight, draining } = options;
  let inFlight = 0;
  let waiters: (() => void)[] = [];

  const finished = () => {
    inFlight--;
    if (inFlight === 0 && waiters.length) {
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    }
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    inFlight++;
    // A request is done when its response has closed and the stack has settled: both count down one.
    let open = 2;
    const done = () => {
      if (--open === 0) finished();
    };
    res.once("close", done);
    let request: OwnedRequest;
    try {
      if (inFlight > maxInFlight) throw new MeshError("overloaded", "the sidecar has too many requests in flight", { retryAfter: OVERLOADED_RETRY_AFTER_S });
      request = toRequest(req, res, target);
    } catch (error) {
      done();
      discard(req);
      send(res, errorResponse(error), false, draining());
      return;
    }
    const head = request.method === "HEAD";
    fetch(request).then(
      (response) => {
        done();
        send(res, response, head, draining());
      },
      (error: unknown) => {
        done();
        send(res, errorResponse(error, request), head, draining());
      },
    );
  };

  return {
    handle,
    inFlight: () => inFlight,
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
  };
}

/** A `bad-request` for a request the sidecar cannot read. */
const badRequest = (message: string) => new MeshError("bad-request", message);

/**
 * The stack's request for an incoming Node request: URL from its target, headers (less
 * hop-by-hop ones) in a `HeaderList` straight from `rawHeaders`, the body left on the socket
 * as an `IncomingBody`, and a cancellation signal made only if a layer asks, aborted when the
 * client goes away before its answer is written.
 */
export function toRequest(req: IncomingMessage, res: ServerResponse, target: Target): OwnedRequest {
  const raw = req.rawHeaders;
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
    }
    else if (name === "content-length") hasBody ||= value !== "0";
    else if (name === "transfer-encoding") hasBody = true;
  }
  const extra = connectionTokens(connection);
  const flat: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!isHopByHop(name, extra)) flat.push(name, raw[i + 1]!);
  }

  const path = req.url ?? "/";
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

  const method = req.method ?? "GET";
  let body: MeshBody = null;
  if (hasBody) {
    if (method === "GET" || method === "HEAD") throw badRequest(`a ${method} request may not have a body`);
    body = new IncomingBody(req);
  }
  let controller: AbortController | undefined;
  const signal = () => {
    if (controller === undefined) {
      controller = new AbortController();
      if (res.destroyed && !res.writableFinished) controller.abort(new Error("the client went away"));
      else res.once("close", () => res.writableFinished || controller!.abort(new Error("the client went away")));
    }
    return controller.signal;
  };
  return new OwnedRequest(method, url, new HeaderList(flat), body, {}, signal);
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

/** Reads and drops what is left of a request body the sidecar will not forward. */
function discard(req: IncomingMessage): void {
  req.on("error", () => {});
  req.resume();
}

/**
 * A request body still on the client's socket: the transport pipes `req` straight upstream,
 * and a layer that must read it (retry's replay) gets a Web stream made on demand.
 */
export class IncomingBody implements HostBody {
  readonly req: IncomingMessage;
  #taken = false;

  constructor(req: IncomingMessage) {
    this.req = req;
    // A client that resets mid-body is the exchange's failure, never the process's.
    req.on("error", () => {});
  }

  /** True once the body went to a consumer (the transport or a stream). */
  get taken(): boolean {
    return this.#taken;
  }

  /** Hands the Node stream itself to a consumer (the transport), once. */
  take(): IncomingMessage {
    if (this.#taken) throw new TypeError("the request body was already taken");
    this.#taken = true;
    return this.req;
  }

  stream(): ReadableStream<Uint8Array> {
    const req = this.take();
    let closed = false;
    return new ReadableStream<Uint8Array>(
      {
        start(controller) {
          // Every callback checks `closed`: a body cancelled by the stack (a deadline that
          // answered first) may still get data from a client that sends late.
          req.on("data", (chunk: Buffer) => {
            if (closed) return;
            controller.enqueue(chunk);
            if ((controller.desiredSize ?? 1) <= 0) req.pause();
          });
          req.once("end", () => {
            if (closed) return;
            closed = true;
            controller.close();
          });
          req.once("error", (error) => {
            if (closed) return;
            closed = true;
            controller.error(error);
          });
          req.once("close", () => {
            if (closed || req.complete) return;
            closed = true;
            controller.error(new Error("the client closed the connection before its body was complete"));
          });
          req.pause();
        },
        pull() {
          req.resume();
        },
        cancel() {
          closed = true;
          req.resume();
        },
      },
      { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
    );
  }

  cancel(): void {
    if (this.#taken) return;
    this.#taken = true;
    this.req.resume();
  }
}

/**
 * Writes `response` to `res`: status, headers less hop-by-hop ones in one `writeHead`, then
 * the body: an upstream's `BodySource` piped with the socket's backpressure, bytes written
 * at once, a Web stream copied. A client that goes away cancels the body, and with it the
 * upstream call.
 */
export function send(res: ServerResponse, response: MeshResponse, head: boolean, close = false): void {
  const body = response.body;
  if (res.destroyed) {
    cancel(body);
    return;
  }
  // A draining sidecar closes each connection after its response, so clients reconnect elsewhere.
  if (close) res.shouldKeepAlive = false;
  const flat = flatHeaders(response.headers);
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) if (!isHopByHop(flat[i]!)) out.push(flat[i]!, flat[i + 1]!);
  try {
    res.writeHead(response.status, out);
  } catch {
    // A header Node refuses (an invalid character from the upstream): answer 502 rather than crash.
    cancel(body);
    return send(res, errorResponse(new MeshError("upstream-unreachable", "the upstream sent a response header that cannot be forwarded")), head, close);
  }
  if (head || body === null) {
    cancel(body);
    res.end();
    return;
  }
  if (body instanceof Uint8Array) {
    res.end(body);
    return;
  }
  if (body instanceof BodySource) {
    res.once("close", () => {
      if (!res.writableFinished) body.cancel(new Error("the client went away"));
    });
    body.pipe(res);
    return;
  }
  void copy(body instanceof ReadableStream ? body : body.stream(), res);
}

/** Drops a body that will not be written. */
function cancel(body: MeshBody): void {
  if (body === null || body instanceof Uint8Array) return;
  if (body instanceof ReadableStream) body.cancel().catch(() => {});
  else body.cancel();
}

/** Copies a Web stream into `res` with backpressure; a failure on either side ends both. */
async function copy(body: ReadableStream<Uint8Array>, res: ServerResponse): Promise<void> {
  const reader = body.getReader();
  const onClose = () => {
    if (!res.writableFinished) reader.cancel().catch(() => {});
  };
  res.once("close", onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
      if (res.destroyed) return;
    }
    res.end();
  } catch (error) {
    res.destroy(error instanceof Error ? error : new Error("the response body failed"));
  }
}
