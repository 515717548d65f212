/**
 * Trace context on the wire: W3C Trace Context level 1 (`traceparent`, `tracestate`) and
 * Zipkin's B3, single header (`b3`) and multi header (`x-b3-*`), read in that order as
 * linkerd2-proxy reads them, and written back in the format that came.
 */
import type { MeshHeaders } from "../fetch.ts";

/** The wire format a context came in; the next hop gets the same one. */
export type TraceFormat = "w3c" | "b3" | "b3multi";

/** A parent's context as read from a request. */
export interface TraceContext {
  /** 32 lower-case hex digits, not all zero. */
  traceId: string;
  /** The parent span's id: 16 lower-case hex digits, not all zero. */
  spanId: string;
  /** The parent's sampling decision (W3C flag 01; B3 `1` or debug `d`). */
  sampled: boolean;
  format: TraceFormat;
  /** The W3C `tracestate` that came with a `traceparent`, passed on as it is. */
  tracestate?: string;
}

export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";
export const B3 = "b3";
export const B3_TRACE_ID = "x-b3-traceid";
export const B3_SPAN_ID = "x-b3-spanid";
export const B3_PARENT_SPAN_ID = "x-b3-parentspanid";
export const B3_SAMPLED = "x-b3-sampled";
export const B3_FLAGS = "x-b3-flags";

/** Every header this module reads or writes: what a hop strips before writing its own. */
const ALL = [TRACEPARENT, TRACESTATE, B3, B3_TRACE_ID, B3_SPAN_ID, B3_PARENT_SPAN_ID, B3_SAMPLED, B3_FLAGS];

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = "0".repeat(32);
const ZERO16 = "0".repeat(16);

/**
 * `tracestate` limits (W3C Trace Context section 3.3.1): at most 32 list members; a value
 * past 512 characters may be dropped, which a hop does rather than pass on something it
 * cannot vouch for.
 */
const MAX_TRACESTATE = 512;

/** A `traceparent` value, or undefined when malformed (W3C section 3.2). */
export function parseTraceparent(value: string | null): Omit<TraceContext, "format"> | undefined {
  if (value === null) return undefined;
  // version "00" is exactly 55 characters; a later version may append fields after a "-".
  if (value.length < 55 || (value.length > 55 && value[55] !== "-")) return undefined;
  if (value[2] !== "-" || value[35] !== "-" || value[52] !== "-") return undefined;
  const version = value.slice(0, 2);
  if (!/^[0-9a-f]{2}$/.test(version) || version === "ff" || (version === "00" && value.length !== 55)) return undefined;
  const traceId = value.slice(3, 35);
  const spanId = value.slice(36, 52);
  const flags = value.slice(53, 55);
  if (!HEX32.test(traceId) || traceId === ZERO32 || !HEX16.test(spanId) || spanId === ZERO16 || !/^[0-9a-f]{2}$/.test(flags)) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

/** A B3 trace id: 16 or 32 hex digits (a 64-bit id is left-padded to 128 bits), or undefined. */
function b3TraceId(value: string): string | undefined {
  const id = value.length === 16 ? ZERO16 + value : value;
  return HEX32.test(id) && id !== ZERO32 ? id : undefined;
}

/** A B3 sampling state: `1`/`d` sampled, `0` not, undefined when absent or malformed (the receiver decides). */
function b3Sampled(value: string | null | undefined): boolean | undefined {
  if (value === "1" || value === "d" || value === "true") return true;
  if (value === "0" || value === "false") return false;
  return undefined;
}

/** The single `b3` header (`{trace}-{span}[-{sampled}[-{parent}]]`), or undefined when malformed. */
export function parseB3(value: string | null): Omit<TraceContext, "format"> | undefined {
  if (value === null || value.length > 68) return undefined;
  const parts = value.split("-");
  if (parts.length < 2 || parts.length > 4) return undefined;
  const traceId = b3TraceId(parts[0]!);
  const spanId = parts[1]!;
  if (traceId === undefined || !HEX16.test(spanId) || spanId === ZERO16) return undefined;
  const sampled = parts.length > 2 ? b3Sampled(parts[2]) : undefined;
  if (parts.length > 2 && sampled === undefined) return undefined;
  if (parts.length > 3 && !HEX16.test(parts[3]!)) return undefined;
  return { traceId, spanId, sampled: sampled ?? true };
}

/** The `x-b3-*` headers, or undefined when absent or malformed. */
function parseB3Multi(headers: MeshHeaders): Omit<TraceContext, "format"> | undefined {
  const trace = headers.get(B3_TRACE_ID);
  const span = headers.get(B3_SPAN_ID);
  if (trace === null || span === null) return undefined;
  const traceId = b3TraceId(trace);
  if (traceId === undefined || !HEX16.test(span) || span === ZERO16) return undefined;
  const flags = headers.get(B3_FLAGS);
  const sampledHeader = headers.get(B3_SAMPLED);
  const sampled = flags === "1" ? true : b3Sampled(sampledHeader);
  if (sampledHeader !== null && sampled === undefined) return undefined;
  return { traceId, spanId: span, sampled: sampled ?? true };
}

/**
 * The parent context of `headers`: `traceparent` first, then `b3`, then `x-b3-*`; undefined
 * when none is present and well formed. A B3 context that leaves sampling to the receiver is
 * taken as sampled, as Zipkin's instrumentation does for a context that carries ids.
 */
export function extract(headers: MeshHeaders): TraceContext | undefined {
  const traceparent = headers.get(TRACEPARENT);
  if (traceparent !== null) {
    const w3c = parseTraceparent(traceparent);
    if (w3c) {
      const state = headers.get(TRACESTATE);
      return state !== null && state.length <= MAX_TRACESTATE ? { ...w3c, format: "w3c", tracestate: state } : { ...w3c, format: "w3c" };
    }
  }
  const single = parseB3(headers.get(B3));
  if (single) return { ...single, format: "b3" };
  const multi = parseB3Multi(headers);
  if (multi) return { ...multi, format: "b3multi" };
  return undefined;
}

/**
 * Writes the context `traceId`/`spanId` with `sampled` into `headers` in `format`, after
 * removing every trace header there (a malformed one is replaced, never passed on).
 * `parentSpanId` is B3's optional parent field.
 */
export function inject(headers: MeshHeaders, context: { traceId: string; spanId: string; sampled: boolean; format: TraceFormat; tracestate?: string | undefined; parentSpanId?: string | undefined }): void {
  for (const name of ALL) headers.delete(name);
  const { traceId, spanId, sampled } = context;
  switch (context.format) {
    case "w3c":
      headers.set(TRACEPARENT, `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`);
      if (context.tracestate) headers.set(TRACESTATE, context.tracestate);
      return;
    case "b3":
      headers.set(B3, `${traceId}-${spanId}-${sampled ? "1" : "0"}${context.parentSpanId ? `-${context.parentSpanId}` : ""}`);
      return;
    case "b3multi":
      headers.set(B3_TRACE_ID, traceId);
      headers.set(B3_SPAN_ID, spanId);
      headers.set(B3_SAMPLED, sampled ? "1" : "0");
      if (context.parentSpanId) headers.set(B3_PARENT_SPAN_ID, context.parentSpanId);
      return;
  }
}
