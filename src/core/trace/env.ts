/**
 * Tracing configured the OpenTelemetry way: the `OTEL_*` variables of the OpenTelemetry
 * specification's "Environment Variable Specification" and its OTLP exporter, read from the
 * sidecar's environment or a Worker's vars and secrets alike.
 */
import { DEFAULT_EXPORT_TIMEOUT_MS, DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE, DEFAULT_SCHEDULE_DELAY_MS } from "./exporter.ts";
import type { Sampler } from "./tracer.ts";

/** Tracing settings; absent when tracing is off. */
export interface TracingConfig {
  /** The full OTLP/HTTP traces URL. */
  endpoint: string;
  /** Export headers (credentials, often): never logged. */
  headers: [string, string][];
  sampler: Sampler;
  /** `OTEL_TRACES_SAMPLER` was set: the workload's sampler wins over the mesh's Tracing resource. */
  samplerFromEnv: boolean;
  /** `service.name` of the resource. */
  serviceName: string | undefined;
  timeoutMs: number;
  scheduleDelayMs: number;
  maxQueue: number;
  maxBatch: number;
}

/** The result: tracing off (no endpoint, `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER=none`), on, or every problem. */
export type TracingEnv = { ok: true; config: TracingConfig | undefined } | { ok: false; problems: string[] };

/**
 * The OpenTelemetry default sampler is `parentbased_always_on`; a mesh records every request
 * of every service, so Weft's default is `parentbased_traceidratio` with ratio 0.01 (1 %), as
 * Istio's default `sampling: 1.0` percent. Set `OTEL_TRACES_SAMPLER_ARG` for more.
 */
export const DEFAULT_SAMPLER: Sampler = { parentBased: true, ratio: 0.01 };

const SAMPLERS: Record<string, (ratio: number) => Sampler> = {
  always_on: () => ({ parentBased: false, ratio: 1 }),
  always_off: () => ({ parentBased: false, ratio: 0 }),
  traceidratio: (ratio) => ({ parentBased: false, ratio }),
  parentbased_always_on: () => ({ parentBased: true, ratio: 1 }),
  parentbased_always_off: () => ({ parentBased: true, ratio: 0 }),
  parentbased_traceidratio: (ratio) => ({ parentBased: true, ratio }),
};

/** `k1=v1,k2=v2` with URL-encoded values (the W3C Baggage form the specification names). */
function parseHeaders(text: string, name: string, problems: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (const item of text.split(",")) {
    if (item.trim() === "") continue;
    const eq = item.indexOf("=");
    const key = eq < 0 ? "" : item.slice(0, eq).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(key)) {
      // The value may be a credential: name the variable only.
      problems.push(`${name} must be a list of name=value pairs separated by commas`);
      return [];
    }
    let value: string;
    try {
      value = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      problems.push(`${name} has a value that is not URL-encoded correctly`);
      return [];
    }
    if (/[\r\n\0]/.test(value)) {
      problems.push(`${name} has a value with a line break or NUL`);
      return [];
    }
    pairs.push([key, value]);
  }
  return pairs;
}

function whole(env: Record<string, unknown>, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  const text = env[name];
  if (typeof text !== "string" || text === "") return fallback;
  if (!/^\d{1,9}$/.test(text) || Number(text) < min || Number(text) > max) {
    problems.push(`${name} must be a whole number from ${min} to ${max}`);
    return fallback;
  }
  return Number(text);
}

function httpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && !url.username && !url.password;
  } catch {
    return false;
  }
}

/**
 * Reads the `OTEL_*` settings of `env` (strings; other values are ignored, as a Worker's env
 * also holds bindings). Every problem is reported at once, naming the variable, never a value.
 */
export function readTracingEnv(env: Record<string, unknown>): TracingEnv {
  const text = (name: string): string | undefined => {
    const value = env[name];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
  };
  const problems: string[] = [];
  if (text("OTEL_SDK_DISABLED")?.toLowerCase() === "true") return { ok: true, config: undefined };
  const exporter = text("OTEL_TRACES_EXPORTER")?.toLowerCase();
  if (exporter === "none") return { ok: true, config: undefined };
  if (exporter !== undefined && exporter !== "otlp") problems.push(`OTEL_TRACES_EXPORTER must be otlp or none (Weft exports OTLP only)`);

  const tracesEndpoint = text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const baseEndpoint = text("OTEL_EXPORTER_OTLP_ENDPOINT");
  // The signal-specific URL is used as it is; the base one gets the signal's path.
  let endpoint: string | undefined;
  if (tracesEndpoint !== undefined) {
    if (httpUrl(tracesEndpoint)) endpoint = tracesEndpoint;
    else problems.push("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http(s) URL without credentials");
  } else if (baseEndpoint !== undefined) {
    if (httpUrl(baseEndpoint)) endpoint = `${baseEndpoint.replace(/\/+$/, "")}/v1/traces`;
    else problems.push("OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL without credentials");
  }

  const protocol = text("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? text("OTEL_EXPORTER_OTLP_PROTOCOL");
  if (protocol !== undefined && protocol !== "http/protobuf") problems.push(`OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf (Weft exports OTLP/HTTP with protobuf; grpc and http/json are not supported)`);

  const headers = [
    ...parseHeaders(text("OTEL_EXPORTER_OTLP_HEADERS") ?? "", "OTEL_EXPORTER_OTLP_HEADERS", problems),
    ...parseHeaders(text("OTEL_EXPORTER_OTLP_TRACES_HEADERS") ?? "", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", problems),
  ];

  let sampler = DEFAULT_SAMPLER;
  const samplerName = text("OTEL_TRACES_SAMPLER")?.toLowerCase();
  const arg = text("OTEL_TRACES_SAMPLER_ARG");
  let ratio = DEFAULT_SAMPLER.ratio;
  if (arg !== undefined) {
    const n = Number(arg);
    if (!/^(\d+(\.\d*)?|\.\d+)(e-?\d+)?$/i.test(arg) || !(n >= 0 && n <= 1)) problems.push("OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1");
    else ratio = n;
  }
  if (samplerName !== undefined) {
    const make = SAMPLERS[samplerName];
    if (make) sampler = make(ratio);
    else problems.push(`OTEL_TRACES_SAMPLER must be one of ${Object.keys(SAMPLERS).join(", ")}`);
  } else {
    sampler = { ...DEFAULT_SAMPLER, ratio };
  }

  const timeoutMs = whole(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", whole(env, "OTEL_EXPORTER_OTLP_TIMEOUT", DEFAULT_EXPORT_TIMEOUT_MS, 1, 600_000, problems), 1, 600_000, problems);
  const scheduleDelayMs = whole(env, "OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS, 1, 600_000, problems);
  const maxQueue = whole(env, "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE, 1, 1_000_000, problems);
  const maxBatch = whole(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_MAX_BATCH, 1, 1_000_000, problems);
  if (maxBatch > maxQueue) problems.push("OTEL_BSP_MAX_EXPORT_BATCH_SIZE must not be larger than OTEL_BSP_MAX_QUEUE_SIZE");

  if (problems.length) return { ok: false, problems };
  if (endpoint === undefined) return { ok: true, config: undefined };
  return { ok: true, config: { endpoint, headers, sampler, samplerFromEnv: samplerName !== undefined, serviceName: text("OTEL_SERVICE_NAME"), timeoutMs, scheduleDelayMs, maxQueue, maxBatch } };
}
