/** One workload's data plane assembled from config, shared by the router worker and the Node sidecar. */
export { createProxy, serviceOf, toOrigin } from "./proxy.ts";
export type { Connect, Proxy, ProxyOptions } from "./proxy.ts";
