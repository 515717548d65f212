/**
 * Circuit breaking per endpoint (Linkerd's consecutive-failures failure accrual): an
 * endpoint that fails 7 times in a row is ejected for a growing penalty, then one real
 * request on probation decides whether it takes traffic again.
 */
export {
  DEFAULT_CONSECUTIVE_FAILURES,
  DEFAULT_OVERLOAD_HOLD_MS,
  GRPC_RESOURCE_EXHAUSTED,
  DEFAULT_PENALTY_BACKOFF,
  createFailureAccrual,
  isFailure,
  penalty,
} from "./accrual.ts";
export type {
  AccrualState,
  Classify,
  FailureAccrual,
  FailureAccrualOptions,
  Outcome,
  PenaltyBackoff,
  Result,
  Ticket,
} from "./accrual.ts";
export { failureAccrual, isOverloaded } from "./layer.ts";
