/**
 * The failure-accrual layer: reports each request's outcome to an endpoint's breaker and
 * refuses requests while the breaker holds the endpoint out.
 */
import { MeshError } from "../errors.ts";
import type { Layer, MeshResponse } from "../fetch.ts";
import type { FailureAccrual } from "./accrual.ts";

/**
 * Endpoint level (the outermost layer of one endpoint's stack, inside the balancer): admits
 * each request through `accrual` and reports how it ended, as `accrual.classify` judges it.
 * Upstream responses, 5xx included, pass through unchanged and thrown errors are rethrown;
 * an answer to a request whose own signal was aborted (the caller gave up) counts for
 * nothing. While the endpoint is ejected, or on probation with its trial in flight, it
 * throws `MeshError("no-endpoints")` without calling the endpoint.
 */
export function failureAccrual(accrual: FailureAccrual): Layer {
  return (next) => async (request) => {
    const ticket = accrual.admit();
    if (ticket === undefined) {
      const why = accrual.state() === "ejected" ? "is ejected by failure accrual" : "is on probation with its trial request in flight";
      throw new MeshError("no-endpoints", `endpoint ${accrual.id} ${why}`);
    }
    let response: MeshResponse;
    try {
      response = await next(request);
    } catch (error) {
      ticket(request.signal?.aborted ? "ignored" : accrual.classify({ error }, request) ? "failure" : "success");
      throw error;
    }
    ticket(accrual.classify({ response }, request) ? "failure" : "success");
    return response;
  };
}
