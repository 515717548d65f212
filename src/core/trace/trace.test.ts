import { describe, expect, it } from "vitest";
import { stack, type Fetch } from "../fetch.ts";
import { HeaderList } from "../headers.ts";
import { createManualClock, fakeUpstream, seededRandom, settle } from "../../testing/index.ts";
import { extract, inject, parseB3, parseTraceparent } from "./context.ts";
import { readTracingEnv } from "./env.ts";
import { createExporter, MAX_EXPORTS_IN_FLIGHT } from "./exporter.ts";
import { traceInbound } from "./layer.ts";
import { createTracer, Span, SPAN_KIND_SERVER, underRatio, type Sampler } from "./tracer.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const headersOf = (init: Record<string, string>) => new HeaderList(Object.entries(init).flatMap(([k, v]) => [k.toLowerCase(), v]));

describe("trace context", () => {
  it("reads a W3C traceparent with its flags and tracestate", () => {
    expect(extract(headersOf({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: "congo=t61rcWkgMzE" }))).toEqual({
      traceId: TRACE,
      spanId: SPAN,
      sampled: true,
      format: "w3c",
      tracestate: "congo=t61rcWkgMzE",
    });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.sampled).toBe(false);
    // A later version may add fields after a dash; version 00 may not.
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01-extra`)?.traceId).toBe(TRACE);
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01-extra`)).toBeUndefined();
  });

  it.each([
    ["upper-case hex", `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${SPAN}-01`],
    ["an all-zero span id", `00-${TRACE}-${"0".repeat(16)}-01`],
    ["version ff", `ff-${TRACE}-${SPAN}-01`],
    ["a short trace id", `00-${TRACE.slice(1)}-${SPAN}-01`],
    ["garbage", "hello"],
    ["an empty value", ""],
  ])("refuses a traceparent with %s", (_what, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it("falls back to single-header B3, then multi-header B3, padding 64-bit trace ids", () => {
    expect(extract(headersOf({ b3: `${TRACE}-${SPAN}-0` }))).toEqual({ traceId: TRACE, spanId: SPAN, sampled: false, format: "b3" });
    expect(extract(headersOf({ b3: `a3ce929d0e0e4736-${SPAN}-d-${SPAN}` }))).toEqual({ traceId: `0000000000000000a3ce929d0e0e4736`, spanId: SPAN, sampled: true, format: "b3" });
    expect(extract(headersOf({ "X-B3-TraceId": TRACE, "X-B3-SpanId": SPAN, "X-B3-Sampled": "1" }))).toEqual({ traceId: TRACE, spanId: SPAN, sampled: true, format: "b3multi" });
    // A malformed traceparent does not hide a good B3 context behind it.
    expect(extract(headersOf({ traceparent: "00-bad", b3: `${TRACE}-${SPAN}-1` }))?.format).toBe("b3");
    expect(parseB3("0")).toBeUndefined();
    expect(parseB3(`${TRACE}-${SPAN}-x`)).toBeUndefined();
    expect(extract(headersOf({ "x-b3-traceid": "zz", "x-b3-spanid": SPAN }))).toBeUndefined();
  });

  it("writes the context in the format it came in, replacing every trace header there", () => {
    const w3c = headersOf({ traceparent: "garbage", b3: "junk", "x-b3-spanid": "1" });
    inject(w3c, { traceId: TRACE, spanId: SPAN, sampled: true, format: "w3c", tracestate: "a=b" });
    expect([...w3c.flat]).toEqual(["traceparent", `00-${TRACE}-${SPAN}-01`, "tracestate", "a=b"]);
    const b3 = headersOf({});
    inject(b3, { traceId: TRACE, spanId: SPAN, sampled: false, format: "b3", parentSpanId: "1111111111111111" });
    expect(b3.get("b3")).toBe(`${TRACE}-${SPAN}-0-1111111111111111`);
    const multi = headersOf({});
    inject(multi, { traceId: TRACE, spanId: SPAN, sampled: true, format: "b3multi" });
    expect([multi.get("x-b3-traceid"), multi.get("x-b3-spanid"), multi.get("x-b3-sampled")]).toEqual([TRACE, SPAN, "1"]);
  });
});

describe("sampling", () => {
  const spans: Span[] = [];
  const tracerWith = (sampler: Sampler, seed: number) => createTracer({ sampler, sink: (span) => spans.push(span), random: seededRandom(seed) });

  it("follows the parent's flag whatever the ratio, and the ratio on new traces (±3σ over 2,000)", () => {
    const tracer = tracerWith({ parentBased: true, ratio: 0.1 }, 7);
    const n = 2_000;
    let roots = 0;
    let parentYes = 0;
    let parentNo = 0;
    for (let i = 0; i < n; i++) {
      const id = tracer.traceId();
      if (tracer.sampled(undefined, id)) roots++;
      if (tracer.sampled({ traceId: id, spanId: SPAN, sampled: true, format: "w3c" }, id)) parentYes++;
      if (tracer.sampled({ traceId: id, spanId: SPAN, sampled: false, format: "w3c" }, id)) parentNo++;
    }
    const sigma = Math.sqrt(n * 0.1 * 0.9);
    expect(Math.abs(roots - n * 0.1)).toBeLessThanOrEqual(3 * sigma);
    expect(parentYes).toBe(n);
    expect(parentNo).toBe(0);
  });

  it("decides the same for the same trace id on every hop", () => {
    expect(underRatio(`${"f".repeat(18)}00000000000000`, 0.01)).toBe(true);
    expect(underRatio(`${"0".repeat(18)}ffffffffffffff`, 0.99)).toBe(false);
    expect(underRatio(TRACE, 1)).toBe(true);
    expect(underRatio(TRACE, 0)).toBe(false);
  });

  it("samples the ratio of requests that arrive with no context, through the inbound layer (±3σ over 2,000)", async () => {
    const ended: Span[] = [];
    const tracer = createTracer({ sampler: { parentBased: true, ratio: 0.25 }, sink: (span) => ended.push(span), random: seededRandom(11) });
    const app = fakeUpstream([200]);
    const fetch: Fetch = stack(app, traceInbound({ tracer, service: "orders" }));
    const n = 2_000;
    for (let i = 0; i < n; i++) await fetch(new Request("http://orders/x"));
    const sigma = Math.sqrt(n * 0.25 * 0.75);
    expect(Math.abs(ended.length - n * 0.25)).toBeLessThanOrEqual(3 * sigma);
    // Every request started a trace, sampled or not, and the app was told its decision.
    const flags = app.requests.map((r) => parseTraceparent(r.headers.get("traceparent"))!.sampled);
    expect(flags.filter(Boolean).length).toBe(ended.length);
    expect(ended.every((span) => span.kind === SPAN_KIND_SERVER && span.parentSpanId === undefined)).toBe(true);
  });
});

describe("exporter", () => {
  const span = (i: number) => {
    const s = new Span(TRACE, (i + 1).toString(16).padStart(16, "0"), undefined, "GET inbound", SPAN_KIND_SERVER, 1_700_000_000_000);
    s.end = 1_700_000_000_001;
    return s;
  };

  it("drops and counts what a hung collector cannot take, holding at most the queue and two batches", async () => {
    const clock = createManualClock();
    let calls = 0;
    const hung = () => {
      calls++;
      return new Promise<Response>(() => {});
    };
    const exporter = createExporter({ endpoint: "http://127.0.0.1:1/v1/traces", resource: { attributes: [], scope: { name: "t", version: "0" } }, fetch: hung, background: () => {}, clock, timer: true, maxQueue: 100, maxBatch: 10 });
    for (let i = 0; i < 1_000; i++) exporter.add(span(i));
    await settle();
    // Two batches went out and hang; every later batch and every span past them is dropped.
    expect(calls).toBe(MAX_EXPORTS_IN_FLIGHT);
    expect(exporter.counts()).toEqual({ exported: 0, dropped: 1_000 - 2 * 10 });
  });

  it("on a host without timers, sends what a request queued once the delay passes, though no request follows", async () => {
    const clock = createManualClock();
    const sent: number[] = [];
    const background: Promise<unknown>[] = [];
    const exporter = createExporter({
      endpoint: "http://127.0.0.1:1/v1/traces",
      resource: { attributes: [], scope: { name: "t", version: "0" } },
      fetch: async () => {
        sent.push(clock.now());
        return new Response(null, { status: 200 });
      },
      background: (task) => background.push(task),
      clock,
      timer: false,
      scheduleDelayMs: 10,
    });
    await clock.advance(10);
    // A nested call's request ends first and sends its span at once.
    exporter.add(span(1));
    exporter.due();
    await settle();
    expect(sent).toEqual([10]);
    // The outer request ends 1 ms later: its span is not due, and no other request comes.
    await clock.advance(1);
    exporter.add(span(2));
    exporter.due();
    exporter.due();
    expect(background).toHaveLength(2);
    await clock.advance(9);
    await Promise.all(background);
    await Promise.all(background);
    expect(sent).toEqual([10, 20]);
    expect(exporter.counts()).toEqual({ exported: 2, dropped: 0 });
  });

  it("counts a refused export's spans as dropped and a 2xx's as exported", async () => {
    const clock = createManualClock();
    let answer: () => Promise<Response> = () => Promise.reject(new TypeError("fetch failed"));
    const exporter = createExporter({ endpoint: "http://127.0.0.1:1/v1/traces", resource: { attributes: [], scope: { name: "t", version: "0" } }, fetch: () => answer(), background: () => {}, clock, timer: true, maxBatch: 5 });
    for (let i = 0; i < 5; i++) exporter.add(span(i));
    await exporter.flush();
    answer = async () => new Response(null, { status: 200 });
    for (let i = 0; i < 3; i++) exporter.add(span(i));
    // Below a batch: sent when the schedule delay passes.
    await clock.advance(5_000);
    await exporter.flush();
    expect(exporter.counts()).toEqual({ exported: 3, dropped: 5 });
    expect(exporter.expose()).toContain("weft_trace_spans_dropped_total 5\n");
  });
});

describe("OTEL_* settings", () => {
  it("reads the endpoint, headers and parentbased_traceidratio with its argument", () => {
    const result = readTracingEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20s3cret,x-team=mesh",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.1",
    });
    expect(result).toMatchObject({ ok: true, config: { endpoint: "http://collector:4318/v1/traces", headers: [["authorization", "Bearer s3cret"], ["x-team", "mesh"]], sampler: { parentBased: true, ratio: 0.1 } } });
    expect(readTracingEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://c.example/otlp/traces", OTEL_EXPORTER_OTLP_ENDPOINT: "http://x" })).toMatchObject({ config: { endpoint: "https://c.example/otlp/traces" } });
    expect(readTracingEnv({})).toEqual({ ok: true, config: undefined });
    expect(readTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" })).toEqual({ ok: true, config: undefined });
  });

  it("names every bad setting at once, never a header's value", () => {
    const result = readTracingEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: "ftp://c",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization Bearer-s3cret",
      OTEL_TRACES_SAMPLER: "sometimes",
      OTEL_TRACES_SAMPLER_ARG: "2",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
    });
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems;
    expect(problems).toHaveLength(5);
    expect(problems.join("\n")).not.toContain("s3cret");
  });
});
