/**
 * The mesh's Tracing resource (docs/tracing.md) as one host's sampler. Precedence, the
 * OpenTelemetry way: an `OTEL_TRACES_SAMPLER` set on the workload wins; else the resource
 * (its per-service ratio for this host's service, else its own); else the host's default.
 */
import type { MeshTracing, SamplerName } from "../config/index.ts";
import { DEFAULT_SAMPLER, type TracingConfig } from "./env.ts";
import type { Sampler } from "./tracer.ts";

/** The sampler a name means, with `ratio` for the two ratio samplers. */
export function samplerOf(name: SamplerName, ratio: number): Sampler {
  const parentBased = name.startsWith("parentbased_");
  if (name.endsWith("always_on")) return { parentBased, ratio: 1 };
  if (name.endsWith("always_off")) return { parentBased, ratio: 0 };
  return { parentBased, ratio };
}

/** The resource's sampler for `service`: a per-service ratio replaces the ratio, the sampler stays parent-based or not. */
export function meshSampler(tracing: MeshTracing, service: string): Sampler {
  const base = samplerOf(tracing.sampler, tracing.ratio ?? DEFAULT_SAMPLER.ratio);
  const override = Object.hasOwn(tracing.services ?? {}, service) ? tracing.services![service] : undefined;
  return override === undefined ? base : { parentBased: base.parentBased, ratio: override };
}

/** The sampler a host uses: its `OTEL_TRACES_SAMPLER` if set, else the mesh's resource, else its env's (default) one. */
export function effectiveSampler(config: Pick<TracingConfig, "sampler" | "samplerFromEnv">, tracing: MeshTracing | undefined, service: string): Sampler {
  if (config.samplerFromEnv || tracing === undefined) return config.sampler;
  return meshSampler(tracing, service);
}
