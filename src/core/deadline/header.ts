/**
 * The two wire forms of a time budget: Weft's `weft-timeout-ms` (whole milliseconds) and
 * gRPC's `grpc-timeout` (up to 8 digits and a unit, grpc/doc/PROTOCOL-HTTP2.md). Parsers
 * return a result instead of throwing, since a malformed header is an expected input.
 */
import { isGrpc } from "../errors.ts";
import type { MeshRequest } from "../fetch.ts";

/** The header carrying the caller's remaining budget in whole milliseconds (SPEC.md section 1). */
export const TIMEOUT_HEADER = "weft-timeout-ms";

/** gRPC's own timeout header, honoured and rewritten for `application/grpc*` requests. */
export const GRPC_TIMEOUT_HEADER = "grpc-timeout";

/** A parsed timeout: its value in milliseconds, or why the header could not be read. */
export type TimeoutResult = { ok: true; ms: number } | { ok: false; error: string };

/** The milliseconds in one of each `grpc-timeout` unit (PROTOCOL-HTTP2.md: H M S m u n). */
const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** The nanoseconds in each unit, finest first: the order the encoder tries them in. */
const GRPC_UNITS_NS: [string, number][] = [
  ["n", 1],
  ["u", 1e3],
  ["m", 1e6],
  ["S", 1e9],
  ["M", 6e10],
  ["H", 3.6e12],
];

/** The largest TimeoutValue gRPC allows: "at most 8 digits" (PROTOCOL-HTTP2.md). */
const GRPC_MAX_VALUE = 99_999_999;

/**
 * Reads `weft-timeout-ms`: a non-negative whole number of milliseconds. `undefined` when the
 * header is absent; an error result for anything else (signs, fractions, spaces, words).
 * "0" is valid and means the budget has run out.
 */
export function parseTimeoutMs(value: string | null): TimeoutResult | undefined {
  if (value === null) return undefined;
  if (!/^\d{1,15}$/.test(value)) return { ok: false, error: `${TIMEOUT_HEADER} must be whole milliseconds` };
  return { ok: true, ms: Number(value) };
}

/**
 * Reads `grpc-timeout` (`TimeoutValue TimeoutUnit`, value 1 to 8 ASCII digits, unit one of
 * H M S m u n) into milliseconds, possibly fractional (`500u` is 0.5 ms). `undefined` when
 * absent; an error result when the grammar does not match.
 */
export function parseGrpcTimeout(value: string | null): TimeoutResult | undefined {
  if (value === null) return undefined;
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!match) return { ok: false, error: `${GRPC_TIMEOUT_HEADER} must be 1 to 8 digits and one of H M S m u n` };
  return { ok: true, ms: Number(match[1]) * GRPC_UNIT_MS[match[2]!]! };
}

/**
 * Writes `ms` as a `grpc-timeout` value the way grpc-go's `encodeTimeout` does: the finest
 * unit whose value fits in 8 digits, rounded up, and `0n` for a budget that has run out.
 * A budget beyond 99,999,999 hours is written as that maximum.
 */
export function formatGrpcTimeout(ms: number): string {
  if (!(ms > 0)) return "0n";
  // Whole nanoseconds first, rounded up but forgiving float noise below a thousandth of a
  // nanosecond, so that 0.3 ms (300000.00000000006 ns in binary) is 300000n and not 300001n.
  const ns = Math.ceil(ms * 1e6 - 1e-3);
  if (!Number.isSafeInteger(ns)) return `${Math.min(GRPC_MAX_VALUE, Math.ceil(ms / GRPC_UNIT_MS.H!))}H`;
  for (const [unit, size] of GRPC_UNITS_NS) {
    const value = Math.ceil(ns / size);
    if (value <= GRPC_MAX_VALUE) return `${Math.max(1, value)}${unit}`;
  }
  return `${GRPC_MAX_VALUE}H`;
}

/**
 * The caller's remaining budget in milliseconds as the request's headers state it:
 * `weft-timeout-ms`, and for gRPC requests (`content-type: application/grpc*`) also
 * `grpc-timeout`, the smaller winning when both are present. `undefined` when neither is.
 *
 * A malformed header is ignored, as if absent, rather than refused: a budget is advice from
 * the caller, and gRPC servers likewise run without a deadline when none is readable. The
 * route's own timeout still bounds such a request.
 */
export function budgetOf(request: MeshRequest): number | undefined {
  const candidates = [parseTimeoutMs(request.headers.get(TIMEOUT_HEADER))];
  if (isGrpc(request.headers)) candidates.push(parseGrpcTimeout(request.headers.get(GRPC_TIMEOUT_HEADER)));
  let budget: number | undefined;
  for (const result of candidates) {
    if (result?.ok && (budget === undefined || result.ms < budget)) budget = result.ms;
  }
  return budget;
}
