/**
 * Fault injection after Istio's HTTPFaultInjection: a route filter that delays or aborts a
 * share of requests, to rehearse failures, optionally only for requests that carry a header.
 */
import { sleep, type Clock, type Random } from "../clock.ts";
import type { FaultInjection } from "../config/schema.ts";
import { ERROR_HEADER, isGrpc } from "../errors.ts";
import type { Layer, MeshRequest, MeshResponse } from "../fetch.ts";
import { HeaderList } from "../headers.ts";
import type { FaultLabels } from "../metrics/index.ts";

/** The `weft-error` code of an injected abort (docs/spec-departures.md). */
export const FAULT_ERROR_CODE = "fault-injected";

/** Options of the `fault` layer. */
export interface FaultOptions {
  /** Delay `ms` on `percent` % of (triggered) requests. */
  delay?: { ms: number; percent: number } | undefined;
  /** Answer `httpStatus` (or, for gRPC, `grpcStatus`) on `percent` % of (triggered) requests. */
  abort?: FaultInjection["abort"];
  /** Only requests carrying this header (with this value, when given) are faulted. */
  header?: FaultInjection["header"];
  clock: Clock;
  random: Random;
  /** Counts each injected fault (`weft_fault_injected_total`). */
  observe?: (fault: FaultLabels["fault"]) => void;
}

/**
 * The route level's fault layer, inside retry and outside the per-try timeout and the split:
 * each try is faulted on its own draw, so retries see an injected abort as they see an
 * upstream's (a 503 is retried under `5xx`), while failure accrual, which belongs to an
 * endpoint, never sees one (no endpoint was called; docs/traffic.md says why).
 *
 * A delay waits on the clock, within the request's deadline (its signal ends the wait); an
 * abort answers at once with the configured status, `weft-error: fault-injected` and the JSON
 * error body, or for a gRPC request `grpc-status` in a trailers-only 200. Delay and abort are
 * drawn independently, delay first, as Envoy's fault filter does.
 */
export function fault(options: FaultOptions): Layer {
  const { delay, abort, header, clock, random } = options;
  const observe = options.observe ?? (() => {});
  const triggered = (request: MeshRequest): boolean => {
    if (header === undefined) return true;
    const value = request.headers.get(header.name);
    return value !== null && (header.value === undefined || value === header.value);
  };
  return (next) => async (request) => {
    if (!triggered(request)) return next(request);
    if (delay !== undefined && delay.ms > 0 && random() * 100 < delay.percent) {
      observe("delay");
      await sleep(clock, delay.ms, request.signal);
    }
    if (abort !== undefined && random() * 100 < abort.percent) {
      observe("abort");
      return aborted(abort, request);
    }
    return next(request);
  };
}

/** The answer of an injected abort. */
function aborted(abort: NonNullable<FaultInjection["abort"]>, request: MeshRequest): MeshResponse {
  const message = "fault injected by the route's FaultInjection filter";
  const headers = new HeaderList([ERROR_HEADER, FAULT_ERROR_CODE]);
  if (abort.grpcStatus !== undefined || isGrpc(request.headers)) {
    // gRPC callers read the status from grpc-status; an httpStatus maps to UNAVAILABLE (14).
    headers.set("content-type", "application/grpc");
    headers.set("grpc-status", String(abort.grpcStatus ?? 14));
    headers.set("grpc-message", encodeURIComponent(message));
    return { status: 200, headers, body: null };
  }
  headers.set("content-type", "application/json");
  const body = new TextEncoder().encode(JSON.stringify({ error: { code: FAULT_ERROR_CODE, message } }));
  headers.set("content-length", String(body.byteLength));
  return { status: abort.httpStatus ?? 503, headers, body };
}
