import { describe, expect, it } from "vitest";
import { decodeExport } from "./receiver.ts";
import { encodeSpans } from "../../src/core/trace/otlp.ts";
import { Span, SPAN_KIND_CLIENT, STATUS_ERROR } from "../../src/core/trace/tracer.ts";

describe("the OTLP encoder", () => {
  it("writes what the official opentelemetry-proto definitions decode, field for field", () => {
    const spans = Array.from({ length: 300 }, (_, i) => {
      const span = new Span("4bf92f3577b34da6a3ce929d0e0e4736", (i + 1).toString(16).padStart(16, "0"), "00f067aa0ba902b7", "GET attempt", SPAN_KIND_CLIENT, 1_764_000_000_123.456);
      span.end = 1_764_000_000_125.5;
      span.status = STATUS_ERROR;
      span.tracestate = "congo=t61rcWkgMzE";
      // Long values push nested lengths past one and two varint bytes.
      span.set("http.request.method", "GET").set("weft.attempt", i).set("weft.sampled", true).set("weft.ratio", 0.25).set("url.path", `/${"x".repeat(i * 50)}`).set("weft.attempt", i + 1).set("weft.note", "café ✓");
      return span;
    });
    const decoded = decodeExport(encodeSpans(spans, { attributes: ["service.name", "orders", "weft.host", "sidecar"], scope: { name: "weft", version: "0.1.0" } }));
    const rs = decoded.resourceSpans[0];
    expect(rs.resource.attributes).toEqual([
      { key: "service.name", value: { stringValue: "orders" } },
      { key: "weft.host", value: { stringValue: "sidecar" } },
    ]);
    expect(rs.scopeSpans[0].scope).toEqual({ name: "weft", version: "0.1.0" });
    const out = rs.scopeSpans[0].spans;
    expect(out).toHaveLength(300);
    const last = out[299];
    expect(Buffer.from(last.traceId, "base64").toString("hex")).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(Buffer.from(last.spanId, "base64").toString("hex")).toBe((300).toString(16).padStart(16, "0"));
    expect(Buffer.from(last.parentSpanId, "base64").toString("hex")).toBe("00f067aa0ba902b7");
    expect(last).toMatchObject({ name: "GET attempt", kind: 3, traceState: "congo=t61rcWkgMzE", startTimeUnixNano: "1764000000123456000", endTimeUnixNano: "1764000000125500000", status: { code: 2 } });
    // The last value of a key wins; ints, bools and doubles keep their types; non-ASCII text is UTF-8.
    expect(Object.fromEntries(last.attributes.map((kv: { key: string; value: unknown }) => [kv.key, kv.value]))).toEqual({
      "http.request.method": { stringValue: "GET" },
      "weft.attempt": { intValue: "300" },
      "weft.sampled": { boolValue: true },
      "weft.ratio": { doubleValue: 0.25 },
      "url.path": { stringValue: `/${"x".repeat(299 * 50)}` },
      "weft.note": { stringValue: "café ✓" },
    });
    expect(last.attributes).toHaveLength(6);
  });
});
