/**
 * Load balancing at the backend level: a mutable set of endpoints, each behind its own
 * failure-accrual breaker, and the balancer that picks one of them per request
 * (peak-EWMA power-of-two-choices, as Linkerd does; round-robin and random besides).
 */
export { DEFAULT_ALGORITHM, balance } from "./balance.ts";
export type { Algorithm, BalanceOptions, Balancer, EndpointLoad } from "./balance.ts";
export { createEndpointSet } from "./endpoint-set.ts";
export type { Endpoint, EndpointInit, EndpointSet, EndpointSetOptions } from "./endpoint-set.ts";
export { DEFAULT_DECAY, DEFAULT_RTT, createPeakEwma } from "./peak-ewma.ts";
export type { PeakEwma, PeakEwmaOptions } from "./peak-ewma.ts";
