import { describe, expect, it } from "vitest";
import { createManualClock, seededRandom } from "../../testing/index.ts";
import { MeshTracingSchema, ResourceSchema, SnapshotSchema, validate } from "../config/index.ts";
import { readTracingEnv } from "./env.ts";
import { createTracing } from "./index.ts";
import { effectiveSampler, meshSampler } from "./mesh.ts";

const mesh = (fields: Record<string, unknown>) => MeshTracingSchema.parse({ name: "mesh", ...fields });
const pathsOf = (value: unknown) => {
  const result = validate(ResourceSchema, { kind: "Tracing", name: "mesh", ...(value as object) });
  return result.ok ? [] : result.issues.map((i) => i.path.join("."));
};

describe("the Tracing resource", () => {
  it("takes OpenTelemetry's sampler names, a ratio for the ratio samplers and per-service ratios, with parentbased_traceidratio by default", () => {
    expect(mesh({})).toEqual({ name: "mesh", sampler: "parentbased_traceidratio" });
    for (const sampler of ["parentbased_traceidratio", "parentbased_always_on", "parentbased_always_off", "traceidratio", "always_on", "always_off"]) {
      expect(pathsOf({ sampler }), sampler).toEqual([]);
    }
    expect(pathsOf({ sampler: "traceidratio", ratio: 0, services: { checkout: 1, "web-2": 0.25 } })).toEqual([]);
    expect(validate(SnapshotSchema, { version: 1, services: [], routes: [], policies: [], jwks: { keys: [] }, tracing: { name: "mesh", sampler: "always_on" } }).ok).toBe(true);
  });

  it("refuses bad values naming the field: the name, the sampler, a ratio out of range or where no ratio applies, a bad service", () => {
    expect(pathsOf({ name: "default" })).toEqual(["name"]);
    expect(pathsOf({ sampler: "sometimes" })).toEqual(["sampler"]);
    expect(pathsOf({ ratio: 2 })).toEqual(["ratio"]);
    expect(pathsOf({ ratio: "0.5" })).toEqual(["ratio"]);
    expect(pathsOf({ sampler: "parentbased_always_on", ratio: 0.5 })).toEqual(["ratio"]);
    expect(pathsOf({ services: { checkout: -0.1 } })).toEqual(["services.checkout"]);
    expect(pathsOf({ services: { Checkout: 1 } })).toEqual(["services.Checkout"]);
    expect(pathsOf({ percent: 5 })).toEqual(expect.arrayContaining([""]));
  });
});

describe("sampling precedence", () => {
  const env = (vars: Record<string, string>) => {
    const read = readTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", ...vars });
    if (!read.ok || !read.config) throw new Error("tracing env");
    return read.config;
  };

  it("uses the resource's sampler, its per-service ratio for that service, and keeps it parent-based or not", () => {
    const tracing = mesh({ sampler: "parentbased_traceidratio", ratio: 0.2, services: { checkout: 1, quiet: 0 } });
    expect(meshSampler(tracing, "web")).toEqual({ parentBased: true, ratio: 0.2 });
    expect(meshSampler(tracing, "checkout")).toEqual({ parentBased: true, ratio: 1 });
    expect(meshSampler(tracing, "quiet")).toEqual({ parentBased: true, ratio: 0 });
    expect(meshSampler(tracing, "constructor")).toEqual({ parentBased: true, ratio: 0.2 });
    expect(meshSampler(mesh({ sampler: "always_off", services: { checkout: 1 } }), "checkout")).toEqual({ parentBased: false, ratio: 1 });
    expect(meshSampler(mesh({ sampler: "always_on" }), "web")).toEqual({ parentBased: false, ratio: 1 });
    expect(meshSampler(mesh({ sampler: "parentbased_always_off" }), "web")).toEqual({ parentBased: true, ratio: 0 });
    expect(meshSampler(mesh({}), "web")).toEqual({ parentBased: true, ratio: 0.01 });
  });

  it("lets an OTEL_TRACES_SAMPLER set on the workload win over the resource; without either, the default", () => {
    const tracing = mesh({ sampler: "always_on" });
    expect(effectiveSampler(env({ OTEL_TRACES_SAMPLER: "always_off" }), tracing, "web")).toEqual({ parentBased: false, ratio: 0 });
    expect(effectiveSampler(env({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.3" }), tracing, "web")).toEqual({ parentBased: false, ratio: 0.3 });
    // OTEL_TRACES_SAMPLER_ARG alone tunes the default only: the resource decides.
    expect(effectiveSampler(env({ OTEL_TRACES_SAMPLER_ARG: "0.3" }), tracing, "web")).toEqual({ parentBased: false, ratio: 1 });
    expect(effectiveSampler(env({ OTEL_TRACES_SAMPLER_ARG: "0.3" }), undefined, "web")).toEqual({ parentBased: true, ratio: 0.3 });
    expect(effectiveSampler(env({}), undefined, "web")).toEqual({ parentBased: true, ratio: 0.01 });
  });

  it("changes a host's tracer for the requests that follow when the resource comes, changes and goes", () => {
    const { tracer, follow } = createTracing(env({}), { service: "web", host: "sidecar", background: () => {}, clock: createManualClock(), timer: false, random: seededRandom(5) });
    const sampledOf = () => Array.from({ length: 200 }, () => tracer.sampled(undefined, tracer.traceId())).filter(Boolean).length;
    follow(mesh({ sampler: "always_on" }));
    expect(sampledOf()).toBe(200);
    follow(mesh({ sampler: "always_off", services: { web: 0 } }));
    expect(sampledOf()).toBe(0);
    // Parent-based with the resource: a sampled caller is followed even at ratio 0.
    follow(mesh({ sampler: "parentbased_always_off" }));
    expect(tracer.sampled({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", sampled: true, format: "w3c" }, "4bf92f3577b34da6a3ce929d0e0e4736")).toBe(true);
    follow(undefined);
    // Back to the default 1 %: 200 draws sample well under half (mean 2, ±3σ well under 100).
    expect(sampledOf()).toBeLessThan(100);
  });
});
