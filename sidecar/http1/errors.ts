/**
 * The client's failures, each named by what went wrong and when, so a caller can map those
 * before the response (refused, reset, timed out) to `upstream-unreachable` and the rest to
 * a broken response.
 */

/** What went wrong. */
export type Http1ErrorCode =
  /** Nothing listens at the address (`ECONNREFUSED`). */
  | "connect-refused"
  /** The connection was not open within the connect timeout. */
  | "connect-timeout"
  /** Another failure to connect (no route, address not available, ...); `cause` says which. */
  | "connect-failed"
  /** The connection closed or was reset after it opened and before a response head. */
  | "connection-reset"
  /** The response broke the framing rules (see `docs/sidecar.md`, "Transport"). */
  | "invalid-response"
  /** The connection closed or was reset after the response head, before its end. */
  | "response-cut"
  /** The request cannot be sent as given (a field, target or method that would break framing). */
  | "invalid-request"
  /** The request body failed, or did not match its declared `content-length`. */
  | "request-body"
  /** The caller aborted without giving a reason. */
  | "aborted"
  /** The pool was closed or destroyed. */
  | "closed";

/** A failure of one request on an HTTP/1.1 pool. Its message never holds header values. */
export class Http1Error extends Error {
  readonly code: Http1ErrorCode;
  /** True when no byte of a response head had been taken: the request may not have reached the server's app. */
  readonly beforeResponse: boolean;

  constructor(code: Http1ErrorCode, message: string, beforeResponse: boolean, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "Http1Error";
    this.code = code;
    this.beforeResponse = beforeResponse;
  }
}
