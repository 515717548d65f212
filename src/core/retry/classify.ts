/** Which outcomes of a try are worth another try, by the route's `on` conditions. */
import { MeshError, grpcStatusOf } from "../errors.ts";
import { isPerTryTimeout } from "../deadline/index.ts";
import type { Ended } from "../fetch.ts";

/** A retry condition (SPEC.md `Retry.on`). */
export type RetryOn = "5xx" | "gateway-error" | "reset" | "429" | "deadline-per-try";

/** gRPC statuses read from the headers of a trailers-only response (grpc/doc/statuscodes.md). */
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_INTERNAL = 13;
const GRPC_UNAVAILABLE = 14;

/**
 * The condition of `on` that `outcome` (a response, or what a try threw) meets, or undefined
 * when it should not be retried:
 * - `5xx`: a 500–599 response, or a failed connection (as in Envoy, where it would be a 502);
 * - `gateway-error`: 502, 503, 504, or a failed connection;
 * - `reset`: a failed connection: `upstream-unreachable`, or a `TypeError` thrown by `fetch`;
 * - `429`: a 429 response;
 * - `deadline-per-try`: a per-try timeout (`isPerTryTimeout`).
 * A gRPC error in a trailers-only response counts too: UNAVAILABLE as a gateway error,
 * INTERNAL as a 5xx, RESOURCE_EXHAUSTED as a 429. A status in trailers is not seen (as in
 * Envoy). Other mesh errors (no endpoints, overload, the request's own deadline) are final.
 */
export function classify(on: readonly RetryOn[], ended: Ended): RetryOn | undefined {
  const first = (...conditions: RetryOn[]) => conditions.find((c) => on.includes(c));
  const outcome = ended.response;
  if (outcome !== undefined) {
    const status = outcome.status;
    if (status === 429) return first("429");
    if (status === 502 || status === 503 || status === 504) return first("gateway-error", "5xx");
    if (status >= 500 && status <= 599) return first("5xx");
    if (status !== 200) return undefined;
    const grpc = grpcStatusOf(outcome);
    if (grpc === GRPC_UNAVAILABLE) return first("gateway-error", "5xx");
    if (grpc === GRPC_INTERNAL) return first("5xx");
    if (grpc === GRPC_RESOURCE_EXHAUSTED) return first("429");
    return undefined;
  }
  const error = ended.error;
  if (isPerTryTimeout(error)) return first("deadline-per-try");
  const unreachable = error instanceof MeshError ? error.code === "upstream-unreachable" : error instanceof TypeError;
  return unreachable ? first("reset", "gateway-error", "5xx") : undefined;
}
