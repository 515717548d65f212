/** One workload's data plane assembled from config, shared by the router worker and the Node sidecar. */
export { createProxy } from "./proxy.ts";
export { toOrigin, toWebHeaders, toWebRequest, toWebResponse } from "../core/web.ts";
export { BARE_NAMES, DEFAULT_CLUSTER_DOMAIN, serviceNames, serviceOf, serviceOfHost } from "./naming.ts";
export type { NamingOptions, ServiceNames } from "./naming.ts";
export type { Connect, Proxy, ProxyOptions } from "./proxy.ts";
export { CONTROL_AUDIENCE, createControlClient } from "./control-client.ts";
export type { BootstrapCredential, ControlClient, ControlClientOptions, Registration } from "./control-client.ts";
