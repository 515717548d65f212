import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { createManualClock } from "../../testing/index.ts";
import { createRegistry } from "./registry.ts";

// The exposition is checked with a parser we did not write (a port of the Prometheus Python
// client's parser), so "Prometheus can read it" is not our own opinion.

interface Family {
  name: string;
  help: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }[];
}

function parse(text: string): Map<string, Family> {
  const families = parsePrometheusTextFormat(text) as Family[];
  return new Map(families.map((f) => [f.name, f]));
}

const FAMILIES = [
  ["weft_request_total", "COUNTER"],
  ["weft_response_total", "COUNTER"],
  ["weft_response_latency_seconds", "HISTOGRAM"],
  ["weft_retry_total", "COUNTER"],
  ["weft_retry_budget_exhausted_total", "COUNTER"],
  ["weft_endpoint_ejections_total", "COUNTER"],
  ["weft_mirror_total", "COUNTER"],
  ["weft_fault_injected_total", "COUNTER"],
  ["weft_config_version", "GAUGE"],
  ["weft_metrics_dropped_total", "COUNTER"],
];

describe("expose", () => {
  it("writes every family with HELP and TYPE, even before anything was counted", () => {
    const text = createRegistry({ clock: createManualClock() }).expose();
    expect(text.endsWith("\n")).toBe(true);
    const families = parse(text);
    expect([...families.values()].map((f) => [f.name, f.type])).toEqual(FAMILIES);
    for (const family of families.values()) expect(family.help).not.toBe("");
  });

  it("writes counters with their labels and values in a form a Prometheus parser reads back", () => {
    const registry = createRegistry({ clock: createManualClock() });
    const labels = { direction: "outbound", src: "spiffe://mesh/ns/shop/sa/web", dst_service: "orders", route: "list" } as const;
    registry.countRequest(labels);
    registry.countRequest(labels);
    registry.recordResponse(labels, { status_code: 503, classification: "failure", error: "no-endpoints" }, 2);
    registry.countEjection({ dst_service: "orders", endpoint: "orders-1" });
    registry.setConfigVersion(12);
    const families = parse(registry.expose());
    expect(families.get("weft_request_total")!.metrics).toEqual([{ labels, value: "2" }]);
    expect(families.get("weft_response_total")!.metrics).toEqual([
      { labels: { ...labels, status_code: "503", classification: "failure", error: "no-endpoints" }, value: "1" },
    ]);
    expect(families.get("weft_endpoint_ejections_total")!.metrics).toEqual([{ labels: { dst_service: "orders", endpoint: "orders-1" }, value: "1" }]);
    expect(families.get("weft_config_version")!.metrics).toEqual([{ value: "12" }]);
  });

  it("escapes backslashes, double quotes and newlines in label values", () => {
    const registry = createRegistry({ clock: createManualClock() });
    const src = 'odd \\ "caller"\nname';
    registry.countRequest({ direction: "inbound", src, dst_service: "orders", route: "" });
    const text = registry.expose();
    expect(text).toContain('src="odd \\\\ \\"caller\\"\\nname"');
    expect(parse(text).get("weft_request_total")!.metrics[0]!.labels!.src).toBe(src);
  });

  it("writes the latency histogram in seconds, with cumulative le buckets up to +Inf, _sum and _count", () => {
    const registry = createRegistry({ clock: createManualClock() });
    const labels = { direction: "inbound", src: "", dst_service: "orders", route: "" } as const;
    for (const ms of [0.5, 7, 7, 250, 60_000]) registry.recordResponse(labels, { status_code: 200, classification: "success", error: "" }, ms);
    const text = registry.expose();
    const histogram = parse(text).get("weft_response_latency_seconds")!;
    // This parser keeps one histogram's buckets (by le) and does not keep labelled _sum/_count.
    // Bounds and sum are in seconds (the base unit), the bounds Linkerd's in ms / 1,000.
    const buckets = histogram.metrics[0]!.buckets!;
    expect(Object.keys(buckets)).toHaveLength(26);
    expect(buckets["0.001"]).toBe("1");
    expect(buckets["0.005"]).toBe("1");
    expect(buckets["0.01"]).toBe("3");
    expect(buckets["0.2"]).toBe("3");
    expect(buckets["0.3"]).toBe("4");
    expect(buckets["50"]).toBe("4");
    expect(buckets["+Inf"]).toBe("5");
    const series = 'direction="inbound",src="",dst_service="orders",route="",status_code="200",classification="success",error=""';
    expect(text).toContain(`weft_response_latency_seconds_sum{${series}} 60.2645\n`);
    expect(text).toContain(`weft_response_latency_seconds_count{${series}} 5\n`);
  });

  it("keeps every series of a labelled family apart", () => {
    const registry = createRegistry({ clock: createManualClock() });
    for (const route of ["list", "create", "delete"]) {
      registry.recordResponse({ direction: "inbound", src: "", dst_service: "orders", route }, { status_code: 200, classification: "success", error: "" }, 1);
    }
    const families = parse(registry.expose());
    expect(families.get("weft_response_total")!.metrics.map((m) => m.labels!.route)).toEqual(["list", "create", "delete"]);
  });
});
