/**
 * The shape every part of the data plane shares: a `Fetch` turns a request into a response,
 * and a `Layer` wraps one `Fetch` in another (Tower's `Layer`, Hono's middleware). Requests
 * and responses are small structural views that Web `Request` and `Response` satisfy as they
 * are, so a Worker hands the stack its own objects and the Node host hands it light ones
 * (docs/architecture.md, "The request view").
 */
import type { EndUser } from "./authz/index.ts";
import { HeaderList } from "./headers.ts";
import type { HopTrace } from "./trace/tracer.ts";

/**
 * The header map the core uses: the part of Web `Headers` the layers call. Names are
 * case-insensitive; `get` joins repeated values with ", " as `Headers` does.
 */
export interface MeshHeaders {
  get(name: string): string | null;
  has(name: string): boolean;
  set(name: string, value: string): void;
  append(name: string, value: string): void;
  delete(name: string): void;
  forEach(callback: (value: string, name: string) => void): void;
}

/**
 * A body as the host holds it. The core never reads one except through `bodyStream` (retry's
 * replay, a test), so a host may pass its own handle (the Node sidecar passes its socket's
 * body, which becomes a Web stream only when asked) and pipe it itself at the other end.
 */
export type MeshBody = ReadableStream<Uint8Array> | Uint8Array | HostBody | null;

/** A host's own body handle: a Web stream on demand, and a way to drop it unread. */
export interface HostBody {
  /** The bytes as a Web stream; once only. */
  stream(): ReadableStream<Uint8Array>;
  /** Discards the body (and whatever produces it) without reading it. */
  cancel(reason?: unknown): void;
  /**
   * Whether the host has received all of it from its caller, where the host knows (the Node
   * sidecar: the socket's message is complete). Failure accrual does not blame an endpoint
   * for a timeout while the caller was still sending.
   */
  readonly complete?: boolean;
}

/**
 * What the data plane reads of a request. A Web `Request` is one; so is the Node host's light
 * request. `signal` is the caller's cancellation where the host has one (a Worker's request,
 * the sidecar's socket); a host may make it lazily, on first read.
 */
export interface MeshRequest {
  readonly method: string;
  /** The absolute URL, serialized (`http://orders/api?x=1`). */
  readonly url: string;
  readonly headers: MeshHeaders;
  readonly body: MeshBody;
  readonly signal?: AbortSignal | undefined;
}

/** What the data plane reads of a response. A Web `Response` is one. */
export interface MeshResponse {
  readonly status: number;
  /** The reason phrase, where the upstream sent one worth keeping. */
  readonly statusText?: string;
  readonly headers: MeshHeaders;
  readonly body: MeshBody;
}

/** A function from a request to its response: an upstream, or a stack of layers over one. */
export type Fetch = (request: MeshRequest) => Promise<MeshResponse>;

/** One concern of the data plane: takes the next `Fetch` and returns a `Fetch` around it. */
export type Layer = (next: Fetch) => Fetch;

/**
 * How a call ended: the response it got (any status), or what was thrown instead. The one
 * shape every classifier (metrics, retry, failure accrual) takes.
 */
export type Ended = { response: MeshResponse; error?: undefined } | { response?: undefined; error: unknown };

/**
 * Wraps `base` in `layers`, the first listed outermost, so a stack reads in request order:
 * `stack(upstream, deadline(), retry(), balance())` runs deadline, then retry, then balance.
 * A `false` or `undefined` entry is a layer the config leaves out (`limit > 0 && retry(...)`),
 * so a stack's whole order stays in one list.
 */
export function stack(base: Fetch, ...layers: (Layer | false | undefined)[]): Fetch {
  let fetch = base;
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i];
    if (layer) fetch = layer(fetch);
  }
  return fetch;
}

/**
 * What the mesh knows about a request beyond its headers. Like `http::Extensions` in Rust, it
 * travels with the request through the layers of one hop and never crosses the wire (the wire
 * carries `weft-timeout-ms` and `weft-client-id`).
 */
export interface RequestMeta {
  /** The absolute time, in the stack clock's milliseconds, by which the call must answer. */
  deadline?: number;
  /** The signal a deadline layer made: it aborts at the deadline or when the caller cancels. */
  signal?: AbortSignal;
  /** The verified caller's SPIFFE ID (inbound), once the identity layer has checked it. */
  client?: string;
  /**
   * The caller's SPIFFE ID as the transport verified it (a mutual TLS client certificate),
   * set by the host before the stack; the identity layer takes it in place of a token.
   */
  peer?: string;
  /** The route the request matched, by name ("" for none). */
  route?: string;
  /** The normalized path the route and policy matched (inbound and outbound). */
  path?: string;
  /**
   * Hands off work that outlives the response: `ctx.waitUntil` in the router, a tracked
   * promise set in the sidecar (awaited on shutdown). Unset, such work simply runs on.
   */
  background?: (task: Promise<unknown>) => void;
  /** This hop's trace: the context the next hop gets, and the span being recorded (src/core/trace). */
  trace?: HopTrace;
  /** The client's address as the host saw it (the sidecar: the socket's peer), for rate-limit keys. */
  clientAddress?: string;
  /** The verified end user (inbound), once `authenticateEndUser` has checked their token. */
  endUser?: EndUser;
}

const EMPTY_META: RequestMeta = Object.freeze({});

/**
 * A request the stack owns: made by the stack (`own`, `derive`) or handed to it by a host
 * that built it from the wire. Its layers change its headers in place and keep its metadata
 * in a field, so the success path makes no Web object. Per request, per hop.
 */
export class OwnedRequest implements MeshRequest {
  method: string;
  url: string;
  headers: MeshHeaders;
  body: MeshBody;
  meta: RequestMeta;
  /** The caller's cancellation, read lazily: a Web request's signal, or a host's. */
  readonly #callerSignal: (() => AbortSignal | undefined) | undefined;

  constructor(method: string, url: string, headers: MeshHeaders, body: MeshBody, meta: RequestMeta = {}, callerSignal?: () => AbortSignal | undefined) {
    this.method = method;
    this.url = url;
    this.headers = headers;
    this.body = body;
    this.meta = meta;
    this.#callerSignal = callerSignal;
  }

  /** The deadline's signal when a deadline layer made one, else the caller's (made on first read by the host). */
  get signal(): AbortSignal | undefined {
    return this.meta.signal ?? this.#callerSignal?.();
  }

  /** A copy with its own metadata (merged with `meta`) and the same caller signal. */
  fork(changes: { headers?: MeshHeaders; body?: MeshBody; url?: string }, meta?: RequestMeta): OwnedRequest {
    return new OwnedRequest(this.method, changes.url ?? this.url, changes.headers ?? this.headers, changes.body !== undefined ? changes.body : this.body, { ...this.meta, ...meta }, this.#callerSignal);
  }
}

/** The mesh's metadata for `request`; an empty object when no layer set any. */
export function metaOf(request: MeshRequest): RequestMeta {
  return request instanceof OwnedRequest ? request.meta : EMPTY_META;
}

/**
 * `request` as the stack's own: itself when it is, otherwise a light copy with its headers
 * copied into a `HeaderList` (a Web request's headers may be immutable, and a caller's
 * request is never changed) and the caller's signal read through. No Web object is made.
 */
export function own(request: MeshRequest): OwnedRequest {
  if (request instanceof OwnedRequest) return request;
  return new OwnedRequest(request.method, request.url, HeaderList.from(request.headers), request.body, {}, () => request.signal);
}

/**
 * A copy of `request` for one send (a retry's try, a per-try timeout) with its own
 * metadata, merged with `meta`, and optionally new headers or body. Layers below may change
 * the copy's headers in place, so a layer that sends one request more than once forks the
 * headers too (`HeaderList.from`).
 */
export function derive(request: MeshRequest, changes: { headers?: MeshHeaders; body?: MeshBody } = {}, meta?: RequestMeta): OwnedRequest {
  return own(request).fork(changes, meta);
}

/**
 * `request` with its headers changed by `edit`: the request itself, changed in place, when
 * the stack owns it, and otherwise its light copy (`own`), so a caller's request is never
 * changed. Layers that only set headers use this.
 */
export function withHeaders(request: MeshRequest, edit: (headers: MeshHeaders) => void): OwnedRequest {
  const owned = own(request);
  edit(owned.headers);
  return owned;
}

/** `request` as the stack's own (`own`), with `meta` merged into its metadata in place. */
export function withMeta(request: MeshRequest, meta: RequestMeta): OwnedRequest {
  const owned = own(request);
  Object.assign(owned.meta, meta);
  return owned;
}

/** The host's or a layer's view of a body as a Web stream; null when there is none. */
export function bodyStream(body: MeshBody): ReadableStream<Uint8Array> | null {
  if (body === null) return null;
  if (body instanceof ReadableStream) return body;
  if (body instanceof Uint8Array) {
    return new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(body);
        controller.close();
      },
    });
  }
  return body.stream();
}

/** Drops a body nobody will read (a discarded try's response, a late answer); never throws. */
export function cancelBody(body: MeshBody, reason?: unknown): void {
  if (body === null || body instanceof Uint8Array) return;
  if (body instanceof ReadableStream) {
    if (!body.locked) body.cancel(reason).catch(() => {});
    return;
  }
  try {
    body.cancel(reason);
  } catch {
    // Already consumed or failed: nothing to drop.
  }
}
