/** Live request inspection (`weft tap`): which calls a tap session wants, sampled to its rate, with secrets left out. */
export { DEFAULT_TAP_MAX_RPS, MAX_TAP_EVENTS_PER_PUSH, REDACTED_HEADERS, createTapper, traceIdOf } from "./tap.ts";
export type { TapBatch, TapEvent, TapSession, Tapper, TapperOptions } from "./tap.ts";
