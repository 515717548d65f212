/**
 * Where a host meets the Web platform (hosts and tests use these; no layer does): the stack's light requests and responses turned into
 * real `Request`s and `Response`s, for a Worker's `fetch`, a service binding, or the runtime
 * that answers the client. A Web object that went through the stack untouched passes as it is.
 */
import { bodyStream, type MeshHeaders, type MeshRequest, type MeshResponse } from "./fetch.ts";
import { flatHeaders } from "./headers.ts";

/** `headers` as Web `Headers`: themselves when they are. */
export function toWebHeaders(headers: MeshHeaders): Headers {
  if (headers instanceof Headers) return headers;
  const flat = flatHeaders(headers);
  const web = new Headers();
  for (let i = 0; i < flat.length; i += 2) web.append(flat[i]!, flat[i + 1]!);
  return web;
}

/**
 * `request` as a Web `Request` to `url` (its own URL by default). Redirects are never followed:
 * they are the app's to see, and following one would carry headers to another host.
 */
export function toWebRequest(request: MeshRequest, url?: string): Request {
  if (request instanceof Request && (url === undefined || url === request.url)) return request;
  const init: RequestInit & { duplex?: "half" } = { method: request.method, headers: toWebHeaders(request.headers), redirect: "manual" };
  const body = bodyStream(request.body);
  if (body !== null) {
    init.body = body;
    init.duplex = "half";
  }
  if (request.signal !== undefined) init.signal = request.signal;
  return new Request(url ?? request.url, init);
}

/** `response` as a Web `Response`: itself when it is one. */
export function toWebResponse(response: MeshResponse): Response {
  if (response instanceof Response) return response;
  const init: ResponseInit = { status: response.status, headers: toWebHeaders(response.headers) };
  if (response.statusText) init.statusText = response.statusText;
  return new Response(bodyStream(response.body), init);
}

/**
 * `request` as a Web `Request` addressed to `origin` (same path and query), for endpoints that
 * are http(s) origins.
 */
export function toOrigin(request: MeshRequest, origin: string): Request {
  return toWebRequest(request, origin.replace(/\/+$/, "") + pathOf(request.url));
}

/** The path and query of an absolute URL string (`/` when it has no path), without parsing it whole. */
export function pathOf(url: string): string {
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  return slash < 0 ? "/" : url.slice(slash);
}
