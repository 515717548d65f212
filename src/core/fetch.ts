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

const metas = new WeakMap<Request, RequestMeta>();

/** The mesh's metadata for `request`; an empty object when no layer set any. */
export function metaOf(request: Request): RequestMeta {
  return metas.get(request) ?? {};
}

/**
 * A copy of `request` with `init` applied (new headers, signal or body) that keeps the
 * mesh's metadata, merged with `meta`. Layers that change a request use this instead of
 * `new Request()` so the deadline set by an outer layer still reaches the inner ones.
 */
export function derive(request: Request, init: RequestInit = {}, meta?: RequestMeta): Request {
  const next = new Request(request, init);
  metas.set(next, { ...metaOf(request), ...meta });
  return next;
}

/** Attaches `meta` to `request` itself (merged with what it has), returning the request. */
export function withMeta(request: Request, meta: RequestMeta): Request {
  metas.set(request, { ...metaOf(request), ...meta });
  return request;
}
