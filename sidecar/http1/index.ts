/**
 * The sidecar's own HTTP/1.1 on `node:net`: a response parser and a keep-alive client pool
 * with llhttp's framing rules and smuggling defences, lighter per request than `node:http`
 * and undici (see `docs/sidecar.md`, "Transport").
 */
export { DEFAULT_APP_CONNECT_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, Pool } from "./pool.ts";
export type { DispatchHandler, DispatchOptions, PoolOptions, RequestBody } from "./pool.ts";
export { Http1Error } from "./errors.ts";
export type { Http1ErrorCode } from "./errors.ts";
export { DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_HEADER_SIZE } from "./fields.ts";
export { ResponseParser } from "./response-parser.ts";
export type { ResponseSink } from "./response-parser.ts";
