/**
 * The sidecar's way onto the network: a `Fetch` per origin (another pod's inbound port, or
 * this pod's app) over an undici connection pool with keep-alive, driven through undici's
 * low-level `dispatch` (its controller handler, `onRequestStart` to `onResponseEnd`) so that
 * no Node or Web stream is made for a response nobody reads.
 */
import type { Dispatcher, Pool } from "undici";
import { MeshError } from "../src/core/errors.ts";
import { HeaderList, flatHeaders } from "../src/core/headers.ts";
import { bodyStream, type Fetch, type MeshRequest, type MeshResponse } from "../src/core/fetch.ts";
import { pathOf } from "../src/core/web.ts";
import { BodySource } from "./body.ts";
import { IncomingBody, WireRequestBody } from "./bridge.ts";
import { isHopByHop } from "./hop-by-hop.ts";
import { UndiciPool } from "./undici-pool.ts";

/**
 * Time allowed to open a connection to another pod: 1 s, linkerd2-proxy's outbound connect
 * timeout (`LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT`, the chart's `1000ms`).
 */
export const DEFAULT_OUTBOUND_CONNECT_TIMEOUT_MS = 1_000;

/**
 * Time allowed to open a connection to the app on localhost: 100 ms, the Linkerd chart's
 * inbound connect timeout (`proxy.inboundConnectTimeout`); the proxy's own default is 300 ms.
 */
export const DEFAULT_INBOUND_CONNECT_TIMEOUT_MS = 100;

/**
 * How long an idle pooled connection is kept: 3 s, linkerd2-proxy's HTTP/1 pool idle timeout.
 * It is below the 5 s `keepAliveTimeout` of Node's server (and this sidecar's inbound
 * listener), so the client side closes first and a request never races a closing socket.
 */
export const DEFAULT_POOL_IDLE_TIMEOUT_MS = 3_000;

/** Options of `createUpstreams`. */
export interface UpstreamOptions {
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Most connections per origin; unlimited when absent (each waits for none). */
  connections?: number;
  /**
   * TLS to `https` origins (egress, issue 16): the SNI name and the certificates (PEM) to
   * verify the server by, in place of Node's bundled CAs. Verification is always on.
   */
  tls?: { servername?: string | undefined; ca?: string | undefined };
}

/** Connection pools by origin. Per process: every request to an origin shares its pool. */
export interface Upstreams {
  /** A `Fetch` that sends each request to `origin` (`http://host:port`), keeping its path and headers. */
  fetch(origin: string): Fetch;
  /** Closes (gracefully) the pools of origins not in `keep`. */
  retain(keep: ReadonlySet<string>): void;
  /** Closes every pool; in-flight requests finish first. */
  close(): Promise<void>;
  /** Destroys every pool at once. */
  destroy(): Promise<void>;
}

/**
 * An undici pool's options as the sidecar's pools take them (plain and mutual TLS): `connect`
 * as given, idle connections kept `idleTimeoutMs` (default `DEFAULT_POOL_IDLE_TIMEOUT_MS`),
 * and undici's own header and body timeouts off, since the mesh's deadlines bound a call.
 */
export function sidecarPoolOptions(connect: Pool.Options["connect"], idleTimeoutMs = DEFAULT_POOL_IDLE_TIMEOUT_MS): Pool.Options {
  return { connect, keepAliveTimeout: idleTimeoutMs, headersTimeout: 0, bodyTimeout: 0 };
}

/** Creates the pools. */
export function createUpstreams(options: UpstreamOptions = {}): Upstreams {
  const pools = new Map<string, { pool: Pool; fetch: Fetch }>();
  const poolOptions = sidecarPoolOptions(
    {
      timeout: options.connectTimeoutMs ?? DEFAULT_OUTBOUND_CONNECT_TIMEOUT_MS,
      noDelay: true,
      ...(options.tls?.servername !== undefined && { servername: options.tls.servername }),
      ...(options.tls?.ca !== undefined && { ca: options.tls.ca }),
      rejectUnauthorized: true,
    },
    options.idleTimeoutMs,
  );
  if (options.connections !== undefined) poolOptions.connections = options.connections;

  return {
    fetch(origin) {
      let entry = pools.get(origin);
      if (entry === undefined) {
        const pool = new UndiciPool(origin, poolOptions);
        // A failed connection is the request's error, reported through its handler.
        pool.on("connectionError", () => {});
        entry = { pool, fetch: (request) => dispatch(pool, request) };
        pools.set(origin, entry);
      }
      return entry.fetch;
    },
    retain(keep) {
      for (const [origin, { pool }] of pools) {
        if (keep.has(origin)) continue;
        pools.delete(origin);
        pool.close().catch(() => {});
      }
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map(({ pool }) => pool.close().catch(() => {})));
    },
    async destroy() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map(({ pool }) => pool.destroy().catch(() => {})));
    },
  };
}

/** An abort reason as the `Error` undici's abort takes. */
const asError = (reason: unknown): Error => (reason instanceof Error ? reason : new Error(String(reason ?? "aborted")));

/** Statuses whose responses never have a body (RFC 9110 sections 15.3.5, 15.4.5). */
const isBodyless = (status: number) => status === 204 || status === 304;

/**
 * Sends `request` through `pool` and resolves with the response as soon as its headers are
 * in; the body follows as a `BodySource`. The request's signal aborts the call. Failures
 * before the response are `upstream-unreachable`, which the retry and failure-accrual layers
 * read as a failed connection; an abort rejects with the signal's reason (the deadline layer's).
 */
export function dispatch(pool: Pool, request: MeshRequest): Promise<MeshResponse> {
  return new Promise<MeshResponse>((resolve, reject) => {
    const signal = request.signal;
    if (signal?.aborted) return reject(signal.reason);
    const flat = flatHeaders(request.headers);
    const headers: string[] = [];
    for (let i = 0; i < flat.length; i += 2) if (!isHopByHop(flat[i]!)) headers.push(flat[i]!, flat[i + 1]!);
    const method = request.method;
    const body = bodyOf(request);
    let controller: Dispatcher.DispatchController | undefined;
    let source: BodySource | undefined;
    let settled = false;
    const abort = (reason: unknown) => controller?.abort(asError(reason));
    const onAbort = () => abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const done = () => signal?.removeEventListener("abort", onAbort);

    // undici's callback handler in its current form (the `onConnect`/`onHeaders`/`onData`/
    // `onComplete`/`onError` one is deprecated): a controller pauses, resumes and aborts.
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(started) {
        controller = started;
        if (signal?.aborted) started.abort(asError(signal.reason));
      },
      onResponseStart(started, status) {
        // Informational responses (103 Early Hints) are not passed on.
        if (status < 200) return;
        // The fields as they came, in order (undici's parsed object merges repeated names).
        const raw = (started.rawHeaders ?? []) as Buffer[];
        const flat: string[] = [];
        for (let i = 0; i < raw.length; i += 2) {
          const name = raw[i]!.toString("latin1").toLowerCase();
          if (!isHopByHop(name)) flat.push(name, raw[i + 1]!.toString("latin1"));
        }
        settled = true;
        if (method === "HEAD" || isBodyless(status)) {
          resolve({ status, headers: new HeaderList(flat), body: null });
          return;
        }
        source = new BodySource(() => started.resume(), abort);
        resolve({ status, headers: new HeaderList(flat), body: source });
      },
      onResponseData(started, chunk) {
        if (source !== undefined && !source.push(chunk)) started.pause();
      },
      onResponseEnd() {
        done();
        source?.end();
      },
      onResponseError(_controller, error) {
        done();
        if (!settled) {
          settled = true;
          if (signal?.aborted) reject(signal.reason);
          else reject(new MeshError("upstream-unreachable", "the connection to the endpoint failed", { cause: error }));
          return;
        }
        source?.fail(error);
      },
    };
    const options: Dispatcher.DispatchOptions = { path: pathOf(request.url), method, headers, body };
    pool.dispatch(options, handler);
  });
}

/**
 * The request's body as undici sends it: the client's socket stream itself when the body
 * came from this sidecar's listener untouched, bytes as they are, or a Web stream (a layer
 * read or rewrapped it) as the async iterable it is.
 */
function bodyOf(request: MeshRequest): Dispatcher.DispatchOptions["body"] {
  const body = request.body;
  if (body === null || body instanceof Uint8Array) return body;
  if (body instanceof IncomingBody) return body.take();
  // The sidecar's own server's body: an async iterable of its chunks.
  if (body instanceof WireRequestBody) return body.take() as unknown as Dispatcher.DispatchOptions["body"];
  // undici sends any async iterable of bytes, which a Web stream is in Node.
  return bodyStream(body) as unknown as Dispatcher.DispatchOptions["body"];
}
