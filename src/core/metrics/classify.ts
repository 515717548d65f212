/**
 * Success or failure of one call, as the golden metrics count it (SPEC.md section 7): a 5xx
 * or a mesh error is a failure; gRPC calls are judged by `grpc-status`.
 */
import { ERROR_HEADER, isErrorCode, isGrpc, grpcStatusOf, toMeshError } from "../errors.ts";
import type { ErrorCode } from "../errors.ts";
import type { Ended, MeshRequest } from "../fetch.ts";

/** Whether a call counts toward the success rate. */
export type Classification = "success" | "failure";

/** What the metrics record of one call's outcome: the labels `weft_response_total` adds. */
export interface Outcome {
  /** The HTTP status the caller sees (200 for gRPC, whose status travels in `grpc-status`). */
  status_code: number;
  classification: Classification;
  /** The mesh's error code when the mesh made the response or threw, else "". */
  error: ErrorCode | "";
}

/**
 * The gRPC status codes that count as failures: UNKNOWN, DEADLINE_EXCEEDED, INTERNAL,
 * UNAVAILABLE, DATA_LOSS. Linkerd's default classifier uses this set for the `classification`
 * label of `response_total` (linkerd2-proxy `linkerd/app/core/src/classify.rs` `grpc_class`):
 * the others (NOT_FOUND, PERMISSION_DENIED, INVALID_ARGUMENT, ...) are answers the server meant
 * to give, as a 4xx is for HTTP.
 */
export const GRPC_FAILURE_CODES: ReadonlySet<number> = new Set([2, 4, 13, 14, 15]);

/**
 * The gRPC status a gRPC client derives from an HTTP status when no `grpc-status` came
 * (grpc/doc/http-grpc-status-mapping.md); anything else non-200 is UNKNOWN (2).
 */
const GRPC_FROM_HTTP: Record<number, number> = { 400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14 };

/**
 * Classifies a call by how it ended: a response, or anything thrown.
 *
 * - Thrown: always a failure, with the `MeshError` code `toMeshError` gives it and the status
 *   the host's error response will carry.
 * - A response with `weft-error` (the mesh made it): a failure with that code.
 * - A response with `grpc-status` in its headers (trailers-only gRPC): a failure when the code
 *   is in `GRPC_FAILURE_CODES`.
 * - A gRPC request (`content-type: application/grpc*`) answered without `grpc-status`: a 200 is
 *   a success (the status is in trailers, which a `fetch` response does not show at headers
 *   time); another HTTP status is judged by the gRPC code a client maps it to.
 * - Otherwise HTTP: 5xx is a failure, everything else a success.
 */
export function classify(ended: Ended, request?: MeshRequest): Outcome {
  const outcome = ended.response;
  if (outcome === undefined) {
    const error = toMeshError(ended.error);
    const grpc = request !== undefined && isGrpc(request.headers);
    return { status_code: grpc ? 200 : error.status, classification: "failure", error: error.code };
  }
  const status = outcome.status;
  const meshError = outcome.headers.get(ERROR_HEADER);
  if (meshError !== null) return { status_code: status, classification: "failure", error: isErrorCode(meshError) ? meshError : "" };
  // The request's content-type matters only for a non-200 answer without grpc-status.
  const grpcStatus = grpcStatusOf(outcome) ?? (status !== 200 && request !== undefined && isGrpc(request.headers) ? (GRPC_FROM_HTTP[status] ?? 2) : undefined);
  const failed = grpcStatus !== undefined ? GRPC_FAILURE_CODES.has(grpcStatus) : status >= 500;
  return { status_code: status, classification: failed ? "failure" : "success", error: "" };
}
