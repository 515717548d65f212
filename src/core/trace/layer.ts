/**
 * The tracing layers: a server span per inbound request, a client span per outbound request,
 * and a client span per try under it, each with OpenTelemetry's HTTP attributes and Weft's.
 */
import { budgetOf } from "../deadline/header.ts";
import { ERROR_HEADER, MeshError } from "../errors.ts";
import { metaOf, own, withHeaders, type Layer, type MeshRequest, type MeshResponse } from "../fetch.ts";
import { ATTEMPT_HEADER } from "../retry/index.ts";
import { extract, inject } from "./context.ts";
import { SPAN_KIND_CLIENT, SPAN_KIND_SERVER, STATUS_ERROR, type HopTrace, type Span, type Tracer } from "./tracer.ts";

/** The path of a serialized absolute URL, without its query (`url.path`). */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  return url.slice(start, query < 0 ? url.length : query);
}

/** The host of a serialized absolute URL, without its port (`server.address`). */
function hostOf(url: string): string {
  const start = url.indexOf("//") + 2;
  let end = url.indexOf("/", start);
  if (end < 0) end = url.length;
  const authority = url.slice(start, end);
  if (authority.startsWith("[")) return authority.slice(0, authority.indexOf("]") + 1);
  const colon = authority.lastIndexOf(":");
  return colon < 0 ? authority : authority.slice(0, colon);
}

/** What a span records of how its call ended: status, `error.type`, `weft.error`, status code. */
function ended(span: Span, response: MeshResponse | undefined, error: unknown, clientSide: boolean): void {
  if (response) {
    span.set("http.response.status_code", response.status);
    const code = response.headers.get(ERROR_HEADER);
    span.set("weft.error", code ?? undefined);
    // OpenTelemetry HTTP conventions: a server span is an error on 5xx, a client span on 4xx too.
    if (response.status >= 500 || (clientSide && response.status >= 400)) {
      span.status = STATUS_ERROR;
      span.set("error.type", code ?? String(response.status));
    }
    return;
  }
  span.status = STATUS_ERROR;
  const code = error instanceof MeshError ? error.code : undefined;
  // A mesh error becomes its host's answer (errorResponse): record the status it will have.
  if (error instanceof MeshError) span.set("http.response.status_code", error.status);
  span.set("weft.error", code);
  span.set("error.type", code ?? (error instanceof Error ? error.name : "_OTHER"));
}

/** Options of the tracing layers. */
export interface TraceOptions {
  tracer: Tracer;
  /** The service this proxy fronts (`weft.service`), and its own identity where known. */
  service: string;
  identity?: string | undefined;
  /** The caller's network address where the host knows it (`network.peer.address`). */
  peer?: ((request: MeshRequest) => string | undefined) | undefined;
}

/**
 * A hop's trace for `request`: its parent's context continued, or a new trace at the edge.
 * Malformed trace headers count as none; `inject` later replaces them.
 */
function continueTrace(tracer: Tracer, request: MeshRequest): { hop: HopTrace; parentSpanId: string | undefined } {
  const parent = extract(request.headers);
  const traceId = parent?.traceId ?? tracer.traceId();
  const sampled = tracer.sampled(parent, traceId);
  return {
    hop: { traceId, spanId: parent?.spanId ?? tracer.spanId(), sampled, format: parent?.format ?? "w3c", tracestate: parent?.tracestate },
    parentSpanId: parent?.spanId,
  };
}

/**
 * The inbound hop's server span: outermost on the inbound side, so refusals of path, identity
 * and policy are recorded too. The app gets the trace context with this span as its parent,
 * in the format the caller used (W3C for a request that came with none).
 */
export function traceInbound(options: TraceOptions): Layer {
  const { tracer } = options;
  return (next) => async (request) => {
    const owned = own(request);
    const { hop, parentSpanId } = continueTrace(tracer, owned);
    let span: Span | undefined;
    if (hop.sampled) {
      span = tracer.start(hop.traceId, parentSpanId, `${owned.method} inbound`, SPAN_KIND_SERVER);
      span.tracestate = hop.tracestate;
      span
        .set("http.request.method", owned.method)
        .set("url.path", pathOf(owned.url))
        .set("server.address", hostOf(owned.url))
        .set("network.peer.address", options.peer?.(owned))
        .set("weft.direction", "inbound")
        .set("weft.service", options.service)
        .set("weft.dst_identity", options.identity)
        .set("weft.deadline_ms", budgetOf(owned));
      hop.spanId = span.spanId;
      hop.span = span;
    }
    owned.meta.trace = hop;
    inject(owned.headers, hop);
    if (!span) return next(owned);
    return spanning(tracer, span, false, () => next(owned), () => {
      const meta = owned.meta;
      if (meta.route) span.set("weft.route", meta.route);
      span.set("weft.src_identity", meta.client);
    });
  };
}

/**
 * The outbound hop's client span: outermost on the outbound side, one per call however many
 * tries it takes; each try is a child span (`traceAttempt`) whose id the next hop gets.
 */
export function traceOutbound(options: TraceOptions): Layer {
  const { tracer } = options;
  return (next) => async (request) => {
    const owned = own(request);
    const { hop, parentSpanId } = continueTrace(tracer, owned);
    if (!hop.sampled) {
      owned.meta.trace = hop;
      return next(owned);
    }
    const span = tracer.start(hop.traceId, parentSpanId, `${owned.method} outbound`, SPAN_KIND_CLIENT);
    span.tracestate = hop.tracestate;
    span
      .set("http.request.method", owned.method)
      .set("url.path", pathOf(owned.url))
      .set("server.address", hostOf(owned.url))
      .set("weft.direction", "outbound")
      .set("weft.service", options.service)
      .set("weft.src_identity", options.identity)
      .set("weft.deadline_ms", budgetOf(owned));
    hop.spanId = span.spanId;
    hop.span = span;
    owned.meta.trace = hop;
    return spanning(tracer, span, true, () => next(owned), () => {
      if (owned.meta.route) span.set("weft.route", owned.meta.route);
    });
  };
}

/** Options of `traceAttempt`: the endpoint this stack reaches. */
export interface AttemptOptions {
  tracer: Tracer;
  /** The backend service (`weft.backend`, `weft.dst_service`). */
  backend: string;
  /** The endpoint's id and address (`weft.endpoint`, `network.peer.address`). */
  endpoint: string;
  address: string;
}

/**
 * One try's client span, a child of the outbound span: outermost at the endpoint level, so
 * there is one per try and it names the endpoint the balancer picked. It writes the context
 * the next hop gets (this span as parent; an unsampled trace's ids as they came).
 */
export function traceAttempt(options: AttemptOptions): Layer {
  const { tracer } = options;
  return (next) => async (request) => {
    const hop = metaOf(request).trace;
    if (hop === undefined) return next(request);
    if (!hop.sampled) return next(withHeaders(request, (headers) => inject(headers, hop)));
    const span = tracer.start(hop.traceId, hop.spanId, `${request.method} attempt`, SPAN_KIND_CLIENT);
    const attempt = Number(request.headers.get(ATTEMPT_HEADER) ?? "1");
    span
      .set("http.request.method", request.method)
      .set("url.path", pathOf(request.url))
      .set("server.address", hostOf(request.url))
      .set("network.peer.address", options.address.startsWith("binding:") ? options.address : hostOf(options.address))
      .set("weft.backend", options.backend)
      .set("weft.endpoint", options.endpoint)
      .set("weft.attempt", Number.isSafeInteger(attempt) ? attempt : undefined)
      .set("weft.route", metaOf(request).route);
    const sent = withHeaders(request, (headers) => inject(headers, { ...hop, spanId: span.spanId, parentSpanId: hop.spanId }));
    return spanning(tracer, span, true, () => next(sent));
  };
}

/**
 * Runs a hop's `call` inside `span` and ends the span with how the call ended, response or
 * error; `settle` first adds what is known only then (the route, the verified caller).
 */
async function spanning(tracer: Tracer, span: Span, client: boolean, call: () => Promise<MeshResponse>, settle?: () => void): Promise<MeshResponse> {
  let response: MeshResponse | undefined;
  let failure: unknown;
  try {
    response = await call();
    return response;
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    settle?.();
    ended(span, response, failure, client);
    tracer.end(span);
  }
}
