/**
 * The sidecar's own HTTP/1.1 on `node:net`: parsers, a keep-alive client pool and a server
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
export { RequestParser } from "./request-parser.ts";
export type { RequestSink } from "./request-parser.ts";
export { createServer, DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_KEEP_ALIVE_TIMEOUT_MS, DEFAULT_LINGER_MS, IncomingBody } from "./server.ts";
export type { Http1Server, LightRequest, RequestHandler, ResponseWriter, ServerOptions } from "./server.ts";
