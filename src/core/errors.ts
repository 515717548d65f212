/**
 * The mesh's own failures: one `MeshError` class over the closed set of codes in SPEC.md
 * section 2, the status each maps to, and the one function that turns an error into the
 * response a caller sees (JSON, or gRPC status for gRPC callers), with `weft-error` set.
 */
import type { MeshHeaders, MeshRequest, MeshResponse } from "./fetch.ts";

/** Every code the mesh may answer with, and the HTTP status it carries (SPEC.md section 2). */
const STATUS = {
  "bad-request": 400,
  unauthenticated: 401,
  forbidden: 403,
  "unknown-service": 404,
  "precondition-failed": 412,
  "payload-too-large": 413,
  "rate-limited": 429,
  "upstream-unreachable": 502,
  "no-endpoints": 503,
  overloaded: 503,
  "deadline-exceeded": 504,
  // Not in SPEC.md section 2: a host whose own settings are invalid (a missing binding, a bad
  // var) answers every request with this, naming the setting (docs/spec-departures.md).
  misconfigured: 500,
  // Not in SPEC.md section 2: a request whose header block is over the listener's limit
  // (RFC 6585's 431), answered by the mesh instead of a reset (docs/spec-departures.md).
  "header-too-large": 431,
  // Not in SPEC.md section 2: an abort a route's FaultInjection filter made on purpose. The
  // status is the one the filter names; 503 is only what a bare MeshError of it carries
  // (docs/spec-departures.md, docs/traffic.md).
  "fault-injected": 503,
} as const;

/** A code from SPEC.md section 2. */
export type ErrorCode = keyof typeof STATUS;

/** All codes, for validation and tests. */
export const ERROR_CODES = Object.keys(STATUS) as ErrorCode[];

/** The gRPC status for each code (grpc/doc/statuscodes.md), for `application/grpc` callers. */
const GRPC_STATUS: Record<ErrorCode, number> = {
  "bad-request": 3, // INVALID_ARGUMENT
  unauthenticated: 16, // UNAUTHENTICATED
  forbidden: 7, // PERMISSION_DENIED
  "unknown-service": 12, // UNIMPLEMENTED: no such service here
  "precondition-failed": 9, // FAILED_PRECONDITION
  "payload-too-large": 8, // RESOURCE_EXHAUSTED
  "rate-limited": 8, // RESOURCE_EXHAUSTED
  "upstream-unreachable": 14, // UNAVAILABLE
  "no-endpoints": 14, // UNAVAILABLE
  overloaded: 14, // UNAVAILABLE
  "deadline-exceeded": 4, // DEADLINE_EXCEEDED
  misconfigured: 13, // INTERNAL
  "header-too-large": 8, // RESOURCE_EXHAUSTED
  "fault-injected": 14, // UNAVAILABLE
};

/** The response header naming the code on every response the mesh makes itself. */
export const ERROR_HEADER = "weft-error";

/** One problem found while validating input: a path into the input and what is wrong there. */
export interface Issue {
  path: (string | number)[];
  message: string;
}

/** Options of a `MeshError` beyond its code and message. */
export interface MeshErrorOptions {
  cause?: unknown;
  /** Seconds the caller should wait before trying again (`retry-after`), for 429 and 503. */
  retryAfter?: number;
  /** Validation problems, for `bad-request` (SPEC.md: zod's path + message list). */
  issues?: Issue[];
  /** For `unauthenticated`: the `www-authenticate` challenge (RFC 6750's `Bearer ...`). */
  challenge?: string;
}

/** An error the mesh answers for itself. Its message is for humans and never holds a secret. */
export class MeshError extends Error {
  readonly code: ErrorCode;
  readonly retryAfter: number | undefined;
  readonly issues: Issue[] | undefined;
  readonly challenge: string | undefined;

  constructor(code: ErrorCode, message: string, options: MeshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MeshError";
    this.code = code;
    this.retryAfter = options.retryAfter;
    this.issues = options.issues;
    this.challenge = options.challenge;
  }

  /** The HTTP status for this error's code. */
  get status(): number {
    return statusFor(this.code);
  }
}

/** The HTTP status SPEC.md section 2 gives `code`. */
export function statusFor(code: ErrorCode): number {
  return STATUS[code];
}

/** True when `value` is one of the codes of SPEC.md section 2. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(STATUS, value);
}

/**
 * Makes a `MeshError` of anything a layer caught: a `MeshError` stays as it is, an abort or
 * timeout becomes `deadline-exceeded`, and any other failure of the upstream call (a
 * `TypeError` from `fetch`: refused, reset, DNS) becomes `upstream-unreachable`.
 */
export function toMeshError(error: unknown): MeshError {
  if (error instanceof MeshError) return error;
  const name = error instanceof Error || error instanceof DOMException ? error.name : "";
  if (name === "AbortError" || name === "TimeoutError") {
    return new MeshError("deadline-exceeded", "the request's deadline ran out", { cause: error });
  }
  return new MeshError("upstream-unreachable", "the connection to the endpoint failed", { cause: error });
}

/** True for gRPC requests, by their headers (`content-type: application/grpc`, `+proto`, `+json`, ...). */
export function isGrpc(headers: MeshHeaders): boolean {
  return (headers.get("content-type") ?? "").startsWith("application/grpc");
}

/**
 * The response the mesh makes for `error`: status from the table, `weft-error: <code>`,
 * `retry-after` when set, and a JSON body `{"error": {"code", "message", "issues"?}}`; for
 * gRPC callers a trailers-only response with `grpc-status` and `grpc-message` instead.
 * Each host calls this in exactly one place.
 */
export function errorResponse(error: unknown, request?: MeshRequest): Response {
  const mesh = toMeshError(error);
  const headers = new Headers({ [ERROR_HEADER]: mesh.code });
  if (mesh.retryAfter !== undefined) headers.set("retry-after", String(Math.max(0, Math.ceil(mesh.retryAfter))));
  if (mesh.challenge !== undefined) headers.set("www-authenticate", mesh.challenge);
  if (request && isGrpc(request.headers)) {
    headers.set("content-type", "application/grpc");
    headers.set("grpc-status", String(GRPC_STATUS[mesh.code]));
    headers.set("grpc-message", encodeURIComponent(mesh.message));
    return new Response(null, { status: 200, headers });
  }
  headers.set("content-type", "application/json");
  const body: { code: ErrorCode; message: string; issues?: Issue[] } = { code: mesh.code, message: mesh.message };
  if (mesh.issues) body.issues = mesh.issues;
  return new Response(JSON.stringify({ error: body }), { status: mesh.status, headers });
}

/** True when `response` was made by the mesh rather than an app (it carries `weft-error`). */
export function isMeshResponse(response: MeshResponse): boolean {
  return response.headers.has(ERROR_HEADER);
}

/** The gRPC status of `response` (trailers-only or header), or undefined when absent. */
export function grpcStatusOf(response: MeshResponse): number | undefined {
  const value = response.headers.get("grpc-status");
  if (value === null) return undefined;
  const n = Number(value);
  return Number.isInteger(n) ? n : undefined;
}
