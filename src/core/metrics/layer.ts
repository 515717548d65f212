/**
 * The metrics layer: counts each request, then its response or error, with the latency to
 * response headers, into a registry.
 */
import type { Clock } from "../clock.ts";
import { metaOf, type Layer, type MeshRequest, type MeshResponse } from "../fetch.ts";
import { classify } from "./classify.ts";
import type { Registry, SeriesHandle } from "./registry.ts";
import type { Direction } from "./store.ts";

/** Options of the `metrics` layer. */
export interface MetricsOptions {
  registry: Registry;
  direction: Direction;
  /** The service being called: this one for inbound, the destination for outbound. */
  dst_service: string;
  /** The route's name; "" (the default) when the stack serves no single route. */
  route?: string;
  /**
   * The `src` label. Outbound passes this workload's own identity; inbound leaves it unset, and
   * the label comes from each request's verified caller, `metaOf(request).client` ("" when none).
   */
  src?: string;
  /** The clock latency is measured on (default: the registry's). */
  clock?: Clock;
}

/**
 * Records golden metrics around `next`: `weft_request_total` when the request starts, then
 * `weft_response_total`, `weft_response_latency_seconds` and the registry's window when response
 * headers arrive or `next` throws. Upstream 5xx responses are classified, not thrown; errors
 * are recorded with their `MeshError` code and rethrown unchanged.
 *
 * Where it sits: inbound, after identity, authorization and rate limit and before the app
 * (SPEC.md section 5), so `src` is the verified caller (the identity layer puts it in the request's
 * metadata; refusals those layers make are theirs to count); outbound,
 * outermost on a route, so a call counts once however many retries it took, as Linkerd's
 * route-level stats do.
 */
export function metrics(options: MetricsOptions): Layer {
  const { registry, direction, dst_service } = options;
  const route = options.route ?? "";
  const clock = options.clock ?? registry.clock;
  const fixed = options.src === undefined ? undefined : registry.series({ direction, src: options.src, dst_service, route });
  // One handle per caller, so a request looks its series up by one string, the caller's id.
  const bySource = new Map<string, SeriesHandle>();

  const handleFor = (request: MeshRequest): SeriesHandle => {
    if (fixed !== undefined) return fixed;
    const src = metaOf(request).client ?? "";
    let handle = bySource.get(src);
    if (handle === undefined) {
      handle = registry.series({ direction, src, dst_service, route });
      if (bySource.size < MAX_CACHED_SOURCES) bySource.set(src, handle);
    }
    return handle;
  };

  return (next) => async (request) => {
    const handle = handleFor(request);
    handle.request();
    const start = clock.now();
    let response: MeshResponse;
    try {
      response = await next(request);
    } catch (error) {
      handle.response(classify({ error }, request), clock.now() - start);
      throw error;
    }
    handle.response(classify({ response }, request), clock.now() - start);
    return response;
  };
}

/** Callers whose handle a layer keeps; others look theirs up in the registry each time. */
const MAX_CACHED_SOURCES = 1_000;
