/**
 * Distributed tracing: W3C Trace Context (and B3) carried through every hop, a span per proxy
 * per request and per try, and spans exported in batches over OTLP/HTTP off the request path.
 */
import type { Clock, Random } from "../clock.ts";
import type { TracingConfig } from "./env.ts";
import { createExporter, type Exporter } from "./exporter.ts";
import type { MeshTracing } from "../config/index.ts";
import { effectiveSampler } from "./mesh.ts";
import { createTracer, type Tracer } from "./tracer.ts";

export { B3, TRACEPARENT, TRACESTATE, extract, inject, parseB3, parseTraceparent } from "./context.ts";
export type { TraceContext, TraceFormat } from "./context.ts";
export { DEFAULT_SAMPLER, readTracingEnv } from "./env.ts";
export type { TracingConfig, TracingEnv } from "./env.ts";
export { createExporter, DEFAULT_EXPORT_TIMEOUT_MS, DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE, DEFAULT_SCHEDULE_DELAY_MS, MAX_EXPORTS_IN_FLIGHT } from "./exporter.ts";
export type { Exporter, ExporterCounts, ExporterOptions } from "./exporter.ts";
export { traceAttempt, traceInbound, traceOutbound } from "./layer.ts";
export type { AttemptOptions, TraceOptions } from "./layer.ts";
export { effectiveSampler, meshSampler, samplerOf } from "./mesh.ts";
export { encodeSpans } from "./otlp.ts";
export type { ExportResource } from "./otlp.ts";
export { createTracer, Span, SPAN_KIND_CLIENT, SPAN_KIND_SERVER, STATUS_ERROR, STATUS_UNSET, underRatio } from "./tracer.ts";
export type { AttributeValue, HopTrace, Sampler, Tracer, TracerOptions } from "./tracer.ts";

/** A host's tracing: the tracer its layers use and the exporter it flushes. */
export interface Tracing {
  tracer: Tracer;
  exporter: Exporter;
  /** Follows the snapshot's Tracing resource (or its absence): the sampler of new requests changes. */
  follow(tracing: MeshTracing | undefined): void;
}

/** Options of `createTracing` besides the config. */
export interface TracingOptions {
  /** The service this proxy fronts: the resource's `service.name` unless `OTEL_SERVICE_NAME` says otherwise. */
  service: string;
  /** `router` or `sidecar` (`weft.host`), and the instance (`service.instance.id`: pod name, or none). */
  host: "router" | "sidecar";
  instance?: string | undefined;
  background: (task: Promise<unknown>) => void;
  clock: Clock;
  /** The sidecar sets a timer for its batches; a Worker calls `exporter.due()` after requests. */
  timer: boolean;
  random?: Random;
  now?: () => number;
  fetch?: (request: Request) => Promise<Response>;
}

/** The instrumentation scope Weft's spans carry. */
export const SCOPE = { name: "weft", version: "0.1.0" };

/** A tracer whose spans go to an exporter built from `config`. Per isolate or per process. */
export function createTracing(config: TracingConfig, options: TracingOptions): Tracing {
  const attributes: (string | number)[] = ["service.name", config.serviceName ?? options.service, "weft.host", options.host];
  if (options.instance) attributes.push("service.instance.id", options.instance);
  const exporter = createExporter({
    endpoint: config.endpoint,
    headers: config.headers,
    resource: { attributes, scope: SCOPE },
    background: options.background,
    clock: options.clock,
    timer: options.timer,
    maxQueue: config.maxQueue,
    maxBatch: config.maxBatch,
    scheduleDelayMs: config.scheduleDelayMs,
    timeoutMs: config.timeoutMs,
    ...(options.fetch && { fetch: options.fetch }),
  });
  const tracer = createTracer({
    sampler: config.sampler,
    sink: (span) => exporter.add(span),
    ...(options.random && { random: options.random }),
    ...(options.now && { now: options.now }),
  });
  const follow = (tracing: MeshTracing | undefined) => tracer.setSampler(effectiveSampler(config, tracing, options.service));
  return { tracer, exporter, follow };
}
