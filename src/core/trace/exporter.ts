/**
 * The span exporter: a bounded queue of ended spans, sent in batches over OTLP/HTTP off the
 * request path. A slow, hung or absent collector costs dropped spans, counted, never a
 * request's time: the queue and the exports in flight are bounded, and a full queue drops.
 * Per isolate (Workers) or per process (the sidecar).
 */
import type { Clock } from "../clock.ts";
import { familyHeader, sample } from "../metrics/exposition.ts";
import { encodeSpans, type ExportResource } from "./otlp.ts";
import type { Span } from "./tracer.ts";

/** OpenTelemetry's `OTEL_BSP_MAX_QUEUE_SIZE` default: spans held before new ones are dropped. */
export const DEFAULT_MAX_QUEUE = 2048;
/** OpenTelemetry's `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` default. */
export const DEFAULT_MAX_BATCH = 512;
/** OpenTelemetry's `OTEL_BSP_SCHEDULE_DELAY` default: a batch leaves at least this often. */
export const DEFAULT_SCHEDULE_DELAY_MS = 5_000;
/** OpenTelemetry's `OTEL_EXPORTER_OTLP_TIMEOUT` default: an export is given up after this. */
export const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;
/**
 * Exports in flight at once: 2. A batch due while two are still waiting on the collector is
 * dropped (and counted) instead of piling up, which bounds memory at the queue plus two batches.
 */
export const MAX_EXPORTS_IN_FLIGHT = 2;

/** Options of `createExporter`. */
export interface ExporterOptions {
  /** The full OTLP/HTTP traces URL (`.../v1/traces`). */
  endpoint: string;
  /** Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`): often a collector's credential, so never logged. */
  headers?: readonly (readonly [string, string])[];
  resource: ExportResource;
  /** Sends one export; the global `fetch` by default. */
  fetch?: (request: Request) => Promise<Response>;
  /** Hands off an export that outlives the request that triggered it (`waitUntil`, or a tracked set). */
  background: (task: Promise<unknown>) => void;
  clock: Clock;
  /**
   * Whether the exporter sets its own timer for the schedule delay (the sidecar). A Worker
   * has no timers between requests: its host calls `due()` after each request instead.
   */
  timer: boolean;
  maxQueue?: number;
  maxBatch?: number;
  scheduleDelayMs?: number;
  timeoutMs?: number;
}

/** Counts of what happened to spans. */
export interface ExporterCounts {
  exported: number;
  dropped: number;
}

/** The exporter. Per isolate or per process. */
export interface Exporter {
  /** Queues an ended span; drops it (counted) when the queue is full. */
  add(span: Span): void;
  /**
   * For hosts without timers, after each request: sends a batch if one is due (full, or the
   * schedule delay passed), else hands the host's `background` a send for when it is.
   */
  due(): void;
  /** Sends everything queued and resolves when the exports end (shutdown). */
  flush(): Promise<void>;
  counts(): ExporterCounts;
  /** `weft_trace_spans_dropped_total` and `weft_trace_spans_exported_total` in the Prometheus text format. */
  expose(): string;
}

/** An exporter to `options.endpoint`. */
export function createExporter(options: ExporterOptions): Exporter {
  const { clock, resource } = options;
  const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  const delay = options.scheduleDelayMs ?? DEFAULT_SCHEDULE_DELAY_MS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_EXPORT_TIMEOUT_MS;
  const send = options.fetch ?? ((request: Request) => fetch(request));
  const headers: [string, string][] = [["content-type", "application/x-protobuf"], ...(options.headers ?? []).map(([k, v]): [string, string] => [k, v])];

  let queue: Span[] = [];
  let inFlight = 0;
  let exported = 0;
  let dropped = 0;
  let lastSent = clock.now();
  let timer: unknown;
  /** A host without timers (`due`) has a send waiting for the schedule delay to pass. */
  let trailing = false;
  const running = new Set<Promise<void>>();

  const post = async (batch: Span[]): Promise<void> => {
    inFlight++;
    try {
      const response = await send(
        new Request(options.endpoint, { method: "POST", headers, body: encodeSpans(batch, resource), signal: AbortSignal.timeout(timeoutMs) }),
      );
      await response.body?.cancel();
      if (response.status >= 200 && response.status < 300) exported += batch.length;
      else dropped += batch.length;
    } catch {
      // Refused, reset or timed out: the batch is lost, and counted.
      dropped += batch.length;
    } finally {
      inFlight--;
    }
  };

  const sendBatch = (): void => {
    if (queue.length === 0) return;
    const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
    queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
    lastSent = clock.now();
    if (inFlight >= MAX_EXPORTS_IN_FLIGHT) {
      dropped += batch.length;
      return;
    }
    const task = post(batch);
    running.add(task);
    void task.finally(() => running.delete(task));
    options.background(task);
  };

  const arm = (): void => {
    if (!options.timer || timer !== undefined) return;
    timer = clock.setTimeout(() => {
      timer = undefined;
      sendBatch();
      if (queue.length) arm();
    }, delay);
    // Node: a pending export timer must not keep a finished process alive.
    (timer as { unref?: () => void } | undefined)?.unref?.();
  };

  return {
    add(span) {
      if (queue.length >= maxQueue) {
        dropped++;
        return;
      }
      queue.push(span);
      if (queue.length >= maxBatch) sendBatch();
      else arm();
    },
    due() {
      if (queue.length === 0) return;
      const wait = lastSent + delay - clock.now();
      if (queue.length >= maxBatch || wait <= 0) return sendBatch();
      // Not due yet (a batch left less than the delay ago, say from a nested call's request):
      // what is queued leaves once the delay has passed, in the background of this request,
      // rather than waiting for a request that may never come.
      if (trailing) return;
      trailing = true;
      options.background(
        new Promise<void>((resolve) => clock.setTimeout(resolve, wait)).then(() => {
          trailing = false;
          sendBatch();
        }),
      );
    },
    async flush() {
      while (queue.length) sendBatch();
      await Promise.allSettled([...running]);
    },
    counts: () => ({ exported, dropped }),
    expose: () =>
      familyHeader("weft_trace_spans_dropped_total", "counter", "Spans dropped: queue full, collector slow, refusing or failing") +
      sample("weft_trace_spans_dropped_total", "", dropped) +
      familyHeader("weft_trace_spans_exported_total", "counter", "Spans the collector accepted") +
      sample("weft_trace_spans_exported_total", "", exported),
  };
}
