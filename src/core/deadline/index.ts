/**
 * Deadlines across hops: read the caller's time budget (`weft-timeout-ms`, `grpc-timeout`),
 * bound each request by it and by the route's timeouts, cancel the upstream call when it runs
 * out, and forward only what is left to the next hop.
 */
export {
  GRPC_TIMEOUT_HEADER,
  TIMEOUT_HEADER,
  budgetOf,
  formatGrpcTimeout,
  parseGrpcTimeout,
  parseTimeoutMs,
} from "./header.ts";
export type { TimeoutResult } from "./header.ts";
export { deadline, isPerTryTimeout, isTimeout, propagateDeadline, timeout } from "./deadline.ts";
export type { DeadlineOptions, PropagateDeadlineOptions, TimeoutOptions } from "./deadline.ts";
