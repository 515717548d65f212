/**
 * Spans, ids and the sampler. One tracer per isolate (Workers) or per process (the sidecar):
 * it decides which traces are recorded and hands each ended span to its sink (the exporter).
 */
import type { Random } from "../clock.ts";
import type { TraceContext, TraceFormat } from "./context.ts";

/** OpenTelemetry's `SpanKind` numbers as OTLP carries them. */
export const SPAN_KIND_SERVER = 2;
export const SPAN_KIND_CLIENT = 3;

/** OTLP `Status.code`: unset, or error (a 5xx, or a call that failed). */
export const STATUS_UNSET = 0;
export const STATUS_ERROR = 2;

/** An attribute value: OTLP's string, int or bool. */
export type AttributeValue = string | number | boolean;

/**
 * How traces are chosen (`OTEL_TRACES_SAMPLER`): `ratio` of new traces are recorded; with
 * `parentBased` a request that carries a parent's context follows the parent's decision.
 * `parentbased_traceidratio` is `{ parentBased: true, ratio }`.
 */
export interface Sampler {
  parentBased: boolean;
  ratio: number;
}

/** One finished or running span. Per request, per hop. */
export class Span {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  readonly kind: number;
  /** Epoch milliseconds (fractional). */
  readonly start: number;
  end = 0;
  status = STATUS_UNSET;
  tracestate: string | undefined;
  /** `[key, value, key, value, ...]`, in the order set (later values win on export). */
  readonly attributes: (string | AttributeValue)[] = [];

  constructor(traceId: string, spanId: string, parentSpanId: string | undefined, name: string, kind: number, start: number) {
    this.traceId = traceId;
    this.spanId = spanId;
    this.parentSpanId = parentSpanId;
    this.name = name;
    this.kind = kind;
    this.start = start;
  }

  /** Sets an attribute; undefined and "" are left out. */
  set(key: string, value: AttributeValue | undefined): this {
    if (value !== undefined && value !== "") this.attributes.push(key, value);
    return this;
  }
}

/**
 * A hop's trace state for one request, kept in its metadata: the trace, the span the next
 * hop's context names as parent, the decision, the wire format to answer in, and the span
 * being recorded (only when sampled).
 */
export interface HopTrace {
  traceId: string;
  /** The id the next hop (or the app) gets as its parent. */
  spanId: string;
  sampled: boolean;
  format: TraceFormat;
  tracestate?: string | undefined;
  /** The span of this layer, when the trace is sampled. */
  span?: Span | undefined;
}

/** Options of `createTracer`. */
export interface TracerOptions {
  sampler: Sampler;
  /** Receives each ended, sampled span. */
  sink: (span: Span) => void;
  /** Uniform in [0, 1): ids come from it. `Math.random` by default, as OpenTelemetry JS's id generator. */
  random?: Random;
  /** Epoch milliseconds, fractional where the runtime has it. */
  now?: () => number;
}

/** Starts spans and decides sampling. Per isolate or per process. */
export interface Tracer {
  /** The decision for a trace: the parent's (parent-based, with a parent) or the ratio's on the trace id. */
  sampled(parent: TraceContext | undefined, traceId: string): boolean;
  /** A new random trace id (32 hex digits). */
  traceId(): string;
  /** A new random span id (16 hex digits). */
  spanId(): string;
  /** Starts a span; `end(span)` finishes and exports it. */
  start(traceId: string, parentSpanId: string | undefined, name: string, kind: number): Span;
  end(span: Span): void;
  now(): number;
  /** Replaces the sampler for the decisions that follow (the mesh's Tracing resource changed). */
  setSampler(sampler: Sampler): void;
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** 8 hex digits from one draw of `random` (32 bits). */
const hex8 = (random: Random): string => {
  const n = (random() * 0x1_0000_0000) >>> 0;
  return HEX_BYTE[n >>> 24]! + HEX_BYTE[(n >>> 16) & 255]! + HEX_BYTE[(n >>> 8) & 255]! + HEX_BYTE[n & 255]!;
};

/**
 * The ratio test on a trace id: its last 14 hex digits (56 bits: the part W3C Trace Context
 * level 2 calls random) as a fraction of 2^56, below `ratio`. Every hop that sees the same
 * trace id decides the same way, as OpenTelemetry's `TraceIdRatioBased` intends.
 */
export function underRatio(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  // Two parts, each exact in a double: 6 + 8 hex digits.
  const high = parseInt(traceId.slice(18, 24), 16);
  const low = parseInt(traceId.slice(24, 32), 16);
  return (high * 0x1_0000_0000 + low) / 2 ** 56 < ratio;
}

/** A tracer with `options.sampler`, sending ended spans to `options.sink`. */
export function createTracer(options: TracerOptions): Tracer {
  const random = options.random ?? Math.random;
  const now = options.now ?? (() => Date.now());
  let { parentBased, ratio } = options.sampler;
  const spanId = () => {
    const id = hex8(random) + hex8(random);
    return id === "0000000000000000" ? "0000000000000001" : id;
  };
  return {
    sampled: (parent, traceId) => (parentBased && parent !== undefined ? parent.sampled : underRatio(traceId, ratio)),
    traceId() {
      let id = hex8(random) + hex8(random) + hex8(random) + hex8(random);
      if (id === "0".repeat(32)) id = `${id.slice(0, 31)}1`;
      return id;
    },
    spanId,
    start: (traceId, parentSpanId, name, kind) => new Span(traceId, spanId(), parentSpanId, name, kind, now()),
    end(span) {
      span.end = now();
      options.sink(span);
    },
    now,
    setSampler(sampler) {
      ({ parentBased, ratio } = sampler);
    },
  };
}
