/**
 * Spans as an OTLP/HTTP protobuf body: `ExportTraceServiceRequest` of
 * opentelemetry-proto's `collector/trace/v1/trace_service.proto`, written field by field.
 * Only the fields Weft sets are written; tests decode the result with the official
 * generated definitions (tests/trace).
 */
import type { AttributeValue, Span } from "./tracer.ts";

/** A growable byte buffer with the protobuf wire primitives. */
class Writer {
  bytes = new Uint8Array(1024);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }

  varint(value: number): void {
    this.room(10);
    // Values here are below 2^53: split into 7-bit groups with arithmetic, not 32-bit shifts.
    while (value >= 0x80) {
      this.bytes[this.length++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.bytes[this.length++] = value;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  raw(data: Uint8Array): void {
    this.room(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  /**
   * A length-delimited field whose content `write` produces, written in place: five bytes
   * are kept for the length and the content moved back over those it does not need, so a
   * nested message costs no buffer of its own.
   */
  message(field: number, write: (w: Writer) => void): void {
    this.tag(field, 2);
    const at = this.length;
    this.room(5);
    this.length += 5;
    write(this);
    const size = this.length - at - 5;
    let needed = 1;
    while (size >= 0x80 ** needed) needed++;
    if (needed < 5) this.bytes.copyWithin(at + needed, at + 5, this.length);
    this.length -= 5 - needed;
    const end = this.length;
    this.length = at;
    this.varint(size);
    this.length = end;
  }

  string(field: number, value: string): void {
    this.tag(field, 2);
    const n = value.length;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (value.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (!ascii) {
      const data = encoder.encode(value);
      this.varint(data.length);
      return this.raw(data);
    }
    // Attribute keys and most values are ASCII: written byte for byte, without TextEncoder's
    // call and the array it makes.
    this.varint(n);
    this.room(n);
    const bytes = this.bytes;
    let at = this.length;
    for (let i = 0; i < n; i++) bytes[at++] = value.charCodeAt(i);
    this.length = at;
  }

  /** `hex` (lower-case, even length) as a bytes field. */
  hexBytes(field: number, hex: string): void {
    const n = hex.length >> 1;
    this.tag(field, 2);
    this.varint(n);
    this.room(n);
    const bytes = this.bytes;
    let at = this.length;
    for (let i = 0; i < hex.length; i += 2) bytes[at++] = (NIBBLE[hex.charCodeAt(i)]! << 4) | NIBBLE[hex.charCodeAt(i + 1)]!;
    this.length = at;
  }

  /** A fixed64 of a non-negative integer below 2^64 given as a bigint. */
  fixed64(field: number, value: bigint): void {
    this.tag(field, 1);
    this.room(8);
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.length, 8);
    view.setBigUint64(0, value, true);
    this.length += 8;
  }

  double(field: number, value: number): void {
    this.tag(field, 1);
    this.room(8);
    new DataView(this.bytes.buffer, this.bytes.byteOffset + this.length, 8).setFloat64(0, value, true);
    this.length += 8;
  }

  finish(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

const encoder = new TextEncoder();

/** The value of each hex digit by its character code (ids are lower-case hex, checked where they are read). */
const NIBBLE = new Uint8Array(128);
for (let i = 0; i < 16; i++) NIBBLE["0123456789abcdef".charCodeAt(i)] = i;

/** `AnyValue`: string (1), bool (2), int (3, zig-zag-free varint of a non-negative int), double (4). */
function anyValue(w: Writer, value: AttributeValue): void {
  if (typeof value === "string") return w.string(1, value);
  if (typeof value === "boolean") {
    w.tag(2, 0);
    return w.varint(value ? 1 : 0);
  }
  if (Number.isSafeInteger(value) && value >= 0) {
    w.tag(3, 0);
    return w.varint(value);
  }
  w.double(4, value);
}

/** `KeyValue` list (field `field`), the last value of a key winning (a span has a dozen: a scan beats a map). */
function attributes(w: Writer, field: number, flat: readonly (string | AttributeValue)[]): void {
  next: for (let i = 0; i < flat.length; i += 2) {
    const key = flat[i] as string;
    for (let j = i + 2; j < flat.length; j += 2) if (flat[j] === key) continue next;
    const value = flat[i + 1]!;
    w.message(field, (kv) => {
      kv.string(1, key);
      kv.message(2, (v) => anyValue(v, value));
    });
  }
}

/** Epoch milliseconds (fractional) as OTLP's unix nanoseconds, to the microsecond. */
const nanos = (ms: number): bigint => BigInt(Math.round(ms * 1000)) * 1000n;

/** Resource attributes and the instrumentation scope's name and version. */
export interface ExportResource {
  attributes: readonly (string | AttributeValue)[];
  scope: { name: string; version: string };
}

/**
 * The protobuf body of `POST /v1/traces`: one `ResourceSpans` (this proxy) with one
 * `ScopeSpans` holding `spans`.
 */
export function encodeSpans(spans: readonly Span[], resource: ExportResource): Uint8Array {
  const w = new Writer();
  w.message(1, (rs) => {
    rs.message(1, (r) => attributes(r, 1, resource.attributes));
    rs.message(2, (ss) => {
      ss.message(1, (scope) => {
        scope.string(1, resource.scope.name);
        scope.string(2, resource.scope.version);
      });
      for (const span of spans) {
        ss.message(2, (s) => {
          s.hexBytes(1, span.traceId);
          s.hexBytes(2, span.spanId);
          if (span.tracestate) s.string(3, span.tracestate);
          if (span.parentSpanId !== undefined) s.hexBytes(4, span.parentSpanId);
          s.string(5, span.name);
          s.tag(6, 0);
          s.varint(span.kind);
          s.fixed64(7, nanos(span.start));
          s.fixed64(8, nanos(Math.max(span.end, span.start)));
          attributes(s, 9, span.attributes);
          if (span.status !== 0) {
            s.message(15, (status) => {
              status.tag(3, 0);
              status.varint(span.status);
            });
          }
        });
      }
    });
  });
  return w.finish();
}
