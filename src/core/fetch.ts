/**
 * The shape every part of the data plane shares: a `Fetch` turns a request into a response,
 * and a `Layer` wraps one `Fetch` in another (Tower's `Layer`, Hono's middleware).
 */

/** A function from a Web `Request` to a `Response`: an upstream, or a stack of layers over one. */
export type Fetch = (request: Request) => Promise<Response>;

/** One concern of the data plane: takes the next `Fetch` and returns a `Fetch` around it. */
export type Layer = (next: Fetch) => Fetch;

/**
 * Wraps `base` in `layers`, the first listed outermost, so a stack reads in request order:
 * `stack(upstream, deadline(), retry(), balance())` runs deadline, then retry, then balance.
 */
export function stack(base: Fetch, ...layers: Layer[]): Fetch {
  let fetch = base;
  for (let i = layers.length - 1; i >= 0; i--) fetch = layers[i]!(fetch);
  return fetch;
}

/**
 * What the mesh knows about a request beyond its headers: its deadline on the stack's clock.
 * Like `http::Extensions` in Rust, it travels with the request object through the layers
 * of one hop and never crosses the wire (the wire carries `weft-timeout-ms`).
 */
export interface RequestMeta {
  /** The absolute time, in the stack clock's milliseconds, by which the call must answer. */
  deadline?: number;
}

/**
 * What the mesh keeps per request: its metadata, and whether `derive` made it (a copy no one
 * outside the stack holds, so the layers below may change it). One table, since each entry
 * in a weak table has a cost of its own at every garbage collection.
 */
const entries = new WeakMap<Request, { meta: RequestMeta; derived: boolean }>();

/** The mesh's metadata for `request`; an empty object when no layer set any. */
export function metaOf(request: Request): RequestMeta {
  return entries.get(request)?.meta ?? {};
}

/**
 * A copy of `request` with `init` applied (new headers, signal or body) that keeps the
 * mesh's metadata, merged with `meta`. Layers that change a request use this instead of
 * `new Request()` so the deadline set by an outer layer still reaches the inner ones.
 *
 * The copy belongs to the layer it is handed to: the layer that made it passes it on and
 * does not send it anywhere else, so the layers below may change its headers in place
 * (`withHeaders`). A layer that sends one request down more than once derives each time.
 */
export function derive(request: Request, init: RequestInit = {}, meta?: RequestMeta): Request {
  const next = new Request(request, init);
  entries.set(next, { meta: { ...metaOf(request), ...meta }, derived: true });
  return next;
}

/**
 * `request` with its headers changed by `edit`: the request itself, changed in place, when
 * it is a copy a layer made with `derive` (that copy is the stack's own), and otherwise a
 * copy by `derive`, so a caller's request is never changed. Layers that only set headers use
 * this: in Node a `Request` copy costs several µs (bench/overhead.ts), most of it linking the
 * copy's signal to the original's, and a call would otherwise pay for one per layer.
 */
export function withHeaders(request: Request, edit: (headers: Headers) => void): Request {
  if (entries.get(request)?.derived) {
    edit(request.headers);
    return request;
  }
  const headers = new Headers(request.headers);
  edit(headers);
  return derive(request, { headers });
}

/**
 * Hands `request` to the stack as its own, returning it: the layers then change its headers
 * in place (`withHeaders`) as they do a copy `derive` made, instead of copying it first. For a
 * host that builds the request itself from the wire (the Node sidecar) and gives it to the
 * stack alone; never for a request someone else still holds, or one whose headers are
 * immutable (a runtime's incoming request). In Node a copy links a new signal to the original's:
 * about 8 µs in a loop, and more in garbage under load (docs/sidecar.md).
 */
export function adopt(request: Request): Request {
  entries.set(request, { meta: metaOf(request), derived: true });
  return request;
}

/** Attaches `meta` to `request` itself (merged with what it has), returning the request. */
export function withMeta(request: Request, meta: RequestMeta): Request {
  entries.set(request, { meta: { ...metaOf(request), ...meta }, derived: entries.get(request)?.derived ?? false });
  return request;
}
