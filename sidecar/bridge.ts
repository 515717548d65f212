/**
 * The bridge between Node's HTTP server and the core's Web `Fetch`: each incoming request
 * becomes a `Request` (with no body stream when it has no body), the stack answers, and the
 * `Response` is written back, piping an upstream's body straight through when nobody read it.
 * Errors become responses here, in this one place per listener (`errorResponse`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { MeshError, errorResponse } from "../src/core/errors.ts";
import { adopt, type Fetch } from "../src/core/fetch.ts";
import { isHostValue } from "./authority.ts";
import { bodySourceOf } from "./body.ts";
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
  /** Requests in flight above which new ones are refused with `overloaded` (503). */
  maxInFlight: number;
  /** Whether the host is draining: responses then close their connection. */
  draining: () => boolean;
}

/** A listener's request handler, with its count of requests in flight. */
export interface Bridge {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Requests received and not yet answered (their response not finished or aborted). */
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

  const respond = (res: ServerResponse, response: Response, head: boolean) => {
    // A draining sidecar closes each connection after its response, so clients reconnect elsewhere.
    if (draining()) res.shouldKeepAlive = false;
    send(res, response, head);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    inFlight++;
    res.once("close", finished);
    let request: Request;
    try {
      if (inFlight > maxInFlight) throw new MeshError("overloaded", "the sidecar has too many requests in flight", { retryAfter: OVERLOADED_RETRY_AFTER_S });
      request = toRequest(req, target);
    } catch (error) {
      req.resume();
      respond(res, errorResponse(error), false);
      return;
    }
    const head = request.method === "HEAD";
    fetch(request).then(
      (response) => respond(res, response, head),
      (error: unknown) => respond(res, errorResponse(error, request), head),
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

/** The `Request` for an incoming Node request: URL from its target, headers less hop-by-hop ones, body streamed. */
export function toRequest(req: IncomingMessage, target: Target): Request {
  const raw = req.rawHeaders;
  const headers = new Headers();
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
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!isHopByHop(name, extra)) headers.append(name, raw[i + 1]!);
  }

  const path = req.url ?? "/";
  let url: string;
  if (path.startsWith("/")) {
    if (!host) throw badRequest("the request names no host: send it with a Host header naming the service");
    url = `http://${host}${path}`;
  } else if (target === "proxy" && /^http:\/\//i.test(path)) {
    url = path;
  } else if (target === "proxy" && /^https:\/\//i.test(path)) {
    throw badRequest("the sidecar forwards plain HTTP only: call http:// URLs (the mesh adds identity between pods)");
  } else {
    throw badRequest("the request target is not a path");
  }

  const method = req.method ?? "GET";
  const init: RequestInit & { duplex?: "half" } = { method, headers };
  if (hasBody) {
    if (method === "GET" || method === "HEAD") throw badRequest(`a ${method} request may not have a body`);
    init.body = bodyOf(req);
    init.duplex = "half";
  }
  try {
    // Built here from the wire and handed to the stack alone: its layers may edit it in place.
    return adopt(new Request(url, init));
  } catch (error) {
    throw new MeshError("bad-request", "the request's URL or headers are not valid", { cause: error });
  }
}

/**
 * An incoming body as a Web stream, read as the consumer pulls, with Node's flow control.
 * Cancelling it (the mesh answered without reading it all) discards the rest.
 */
function bodyOf(req: IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        req.on("data", (chunk: Buffer) => {
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 1) <= 0) req.pause();
        });
        req.once("end", () => controller.close());
        req.once("error", (error) => controller.error(error));
        req.pause();
      },
      pull() {
        req.resume();
      },
      cancel() {
        req.removeAllListeners("data");
        req.resume();
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  );
}

/**
 * Writes `response` to `res`: status, headers less hop-by-hop ones, then the body, piped
 * straight from the upstream when nobody read it, or read from its stream with the socket's
 * backpressure. A client that goes away cancels the body, and with it the upstream call.
 */
export function send(res: ServerResponse, response: Response, head: boolean): void {
  if (res.destroyed) {
    void response.body?.cancel().catch(() => {});
    bodySourceOf(response)?.cancel();
    return;
  }
  const headers: string[] = [];
  for (const [name, value] of response.headers) if (!isHopByHop(name)) headers.push(name, value);
  try {
    res.writeHead(response.status, headers);
  } catch {
    // A header Node refuses (an invalid character from the upstream): answer 502 rather than crash.
    return send(res, errorResponse(new MeshError("upstream-unreachable", "the upstream sent a response header that cannot be forwarded")), head);
  }
  const source = bodySourceOf(response);
  if (head) {
    source?.cancel();
    if (source === undefined) void response.body?.cancel().catch(() => {});
    res.end();
    return;
  }
  if (source !== undefined) {
    res.once("close", () => {
      if (!res.writableFinished) source.cancel(new Error("the client went away"));
    });
    source.pipe(res);
    return;
  }
  const body = response.body;
  if (body === null) {
    res.end();
    return;
  }
  void copy(body, res);
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
