/**
 * The failure-accrual layer: reports each request's outcome to an endpoint's breaker and
 * refuses requests while the breaker holds the endpoint out.
 */
import { isTimeout } from "../deadline/index.ts";
import { ERROR_HEADER, MeshError, grpcStatusOf } from "../errors.ts";
import type { Layer, MeshRequest, MeshResponse } from "../fetch.ts";
import { retryAfterMs } from "../retry/index.ts";
import { GRPC_RESOURCE_EXHAUSTED, type FailureAccrual, type Result } from "./accrual.ts";

/**
 * The mesh's own answers that carry gRPC RESOURCE_EXHAUSTED for a request too large, not for
 * load (`errorResponse`): a caller's oversized request says nothing of the endpoint.
 */
const TOO_LARGE = new Set(["payload-too-large", "header-too-large"]);

/**
 * True for an endpoint's answer that says it is overloaded: 429, or gRPC RESOURCE_EXHAUSTED
 * unless the mesh made it for a request over a size limit.
 */
export function isOverloaded(response: MeshResponse): boolean {
  if (response.status === 429) return true;
  return grpcStatusOf(response) === GRPC_RESOURCE_EXHAUSTED && !TOO_LARGE.has(response.headers.get(ERROR_HEADER) ?? "");
}

/**
 * Endpoint level (the outermost layer of one endpoint's stack, inside the balancer): admits
 * each request through `accrual` and reports how it ended, as `accrual.classify` judges it.
 * Upstream responses, 5xx included, pass through unchanged and thrown errors are rethrown.
 * While the endpoint is ejected, or on probation with its trial in flight, it throws
 * `MeshError("no-endpoints")` without calling the endpoint.
 *
 * What the breaker is told (docs/architecture.md, "Failure accrual"):
 * - a response: judged by `classify` (by default a 5xx or a failing gRPC status is a failure);
 * - an overloaded answer (429, or gRPC RESOURCE_EXHAUSTED), as Linkerd 2.20 treats it: the
 *   endpoint is held out for its `retry-after` (`accrual.overloaded`), and the answer neither
 *   grows nor resets its failure streak; it is passed back to the caller as it came;
 * - a failed connection (refused, reset: a `TypeError` from `fetch`, `upstream-unreachable`):
 *   judged by `classify` (by default a failure);
 * - a timeout: the request's signal aborted with a timeout reason (`isTimeout`: the route's
 *   deadline, the caller's budget or the per-try timeout ran out, whichever layer above set
 *   it), or a timeout error thrown from below: judged by `classify`, as an error, at the
 *   moment the timer fires, whether or not the endpoint's call ever settles; but nothing when
 *   the host says the caller was still sending the body then (`HostBody.complete`);
 * - a cancellation for any other reason (the caller went away, an `AbortError`): nothing;
 * - any other `MeshError` thrown from below (a token the mesh could not get, a budget found
 *   spent before the request was forwarded): nothing, since the request never reached the
 *   endpoint; an `upstream-unreachable` one is a failed connection, above.
 */
export function failureAccrual(accrual: FailureAccrual): Layer {
  return (next) => async (request) => {
    const ticket = accrual.admit();
    if (ticket === undefined) {
      const why = accrual.state() === "ejected" ? "is ejected by failure accrual" : "is on probation with its trial request in flight";
      throw new MeshError("no-endpoints", `endpoint ${accrual.id} ${why}`);
    }
    const signal = request.signal;
    // Cancelled before it was sent: the endpoint had no part in it.
    if (signal?.aborted) {
      ticket("ignored");
      return next(request);
    }
    const judge = (result: Result) => ticket(accrual.classify(result, request) ? "failure" : "success");
    // Decided when the signal aborts, not when the call settles: an endpoint that is stopped,
    // or a host whose fetch ignores its signal, may never settle it.
    // A timeout while the caller was still sending the body is the caller's slowness, not the
    // endpoint's: it could not have answered yet.
    const onAbort = () => (isTimeout(signal?.reason) && !stillSending(request) ? judge({ error: signal?.reason }) : ticket("ignored"));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const response = await next(request);
      if (isOverloaded(response)) {
        accrual.overloaded(retryAfterMs(response));
        ticket("ignored");
      } else judge({ response });
      return response;
    } catch (error) {
      // An aborted call was decided when its signal aborted.
      if (!signal?.aborted) {
        const refusedByMesh = error instanceof MeshError && error.code !== "upstream-unreachable" && !isTimeout(error);
        if (refusedByMesh || (isTimeout(error) && stillSending(request))) ticket("ignored");
        else judge({ error });
      }
      throw error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  };
}

/** Whether the host says the request's body has not all arrived from its caller yet. */
function stillSending(request: MeshRequest): boolean {
  const body = request.body;
  return typeof body === "object" && body !== null && "complete" in body && body.complete === false;
}
