/**
 * Gateway API's header-modifier filters: RequestHeaderModifier changes the request on its
 * way to the backend, ResponseHeaderModifier the response on its way back.
 */
import type { Filter } from "../config/schema.ts";
import { withHeaders, type Layer, type MeshHeaders } from "../fetch.ts";
import { HeaderList } from "../headers.ts";

type HeaderModifier = Extract<Filter, { type: "RequestHeaderModifier" }>["requestHeaderModifier"];

/**
 * Applies `modifier` to `headers` in place, the way Envoy does: `remove` first, then `set`
 * (replaces every value of the name), then `add` (appends a value, which a lookup joins
 * with ", "). Names are case-insensitive.
 */
export function modifyHeaders(headers: MeshHeaders, modifier: HeaderModifier): void {
  for (const name of modifier.remove ?? []) headers.delete(name);
  for (const { name, value } of modifier.set ?? []) headers.set(name, value);
  for (const { name, value } of modifier.add ?? []) headers.append(name, value);
}

/**
 * The route level's filter layer, inside the route's request timeout and outside retry:
 * applies the route's RequestHeaderModifier filters to the request (once, so every retry
 * sends the same headers) and its ResponseHeaderModifier filters to the response the
 * backend returned (errors the mesh throws are not responses and pass untouched). Filters
 * apply in the order listed. With no header filters it is the identity layer.
 */
export function headerFilters(filters: readonly Filter[] = []): Layer {
  const request: HeaderModifier[] = [];
  const response: HeaderModifier[] = [];
  for (const filter of filters) {
    if (filter.type === "RequestHeaderModifier") request.push(filter.requestHeaderModifier);
    else if (filter.type === "ResponseHeaderModifier") response.push(filter.responseHeaderModifier);
  }
  if (request.length === 0 && response.length === 0) return (next) => next;
  return (next) => async (incoming) => {
    const outgoing = request.length > 0 ? withHeaders(incoming, (headers) => request.forEach((modifier) => modifyHeaders(headers, modifier))) : incoming;
    const answer = await next(outgoing);
    if (response.length === 0) return answer;
    // A fetched response's headers may be immutable: answer with a light copy around the same body.
    const headers = HeaderList.from(answer.headers);
    for (const modifier of response) modifyHeaders(headers, modifier);
    return { status: answer.status, statusText: answer.statusText ?? "", headers, body: answer.body };
  };
}
