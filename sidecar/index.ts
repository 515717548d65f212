/** The Node sidecar: the mesh's core beside a Kubernetes pod's app, on SPEC.md section 8's ports. */
export { createSidecar, DEFAULT_CONTROL_CALL_TIMEOUT_MS, DEFAULT_INBOUND_IDLE_TIMEOUT_MS, DEFAULT_OUTBOUND_IDLE_TIMEOUT_MS } from "./sidecar.ts";
export type { BoundAddresses, Sidecar, SidecarOptions } from "./sidecar.ts";
export {
  DEFAULT_ADMIN_PORT,
  DEFAULT_HEADER_TIMEOUT_MS,
  DEFAULT_INBOUND_PORT,
  DEFAULT_LEASE_TTL_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_OUTBOUND_PORT,
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_SNAPSHOT_WAIT_S,
  DEFAULT_STATS_INTERVAL_MS,
  DEFAULT_TOKEN_PATH,
  loadConfig,
} from "./config.ts";
export type { ConfigResult, ListenAddress, SidecarConfig } from "./config.ts";
export { createControlLink, DEFAULT_RECONNECT_BACKOFF } from "./control-link.ts";
export type { ControlLink, ControlLinkOptions, LinkStatus } from "./control-link.ts";
export { createUpstreams, DEFAULT_INBOUND_CONNECT_TIMEOUT_MS, DEFAULT_OUTBOUND_CONNECT_TIMEOUT_MS, DEFAULT_POOL_IDLE_TIMEOUT_MS } from "./upstream.ts";
export type { UpstreamOptions, Upstreams } from "./upstream.ts";
export { createBridge, DEFAULT_LINGER, DEFAULT_MAX_HEADER_KIB } from "./bridge.ts";
export { createTunnels, DEFAULT_TLS_PORTS, REFUSAL_LINGER_MS, refuseConnect } from "./tunnel.ts";
export type { TunnelOptions, Tunnels } from "./tunnel.ts";
export { hostnameOf, isHostValue, parseConnectTarget } from "./authority.ts";
export type { ConnectTarget } from "./authority.ts";
export type { Bridge, BridgeOptions, Target } from "./bridge.ts";
export { createListener, DEFAULT_HEADER_CHECK_INTERVAL_MS, DEFAULT_REFUSED_LOG_INTERVAL_MS } from "./listener.ts";
export type { ListenerOptions } from "./listener.ts";
export { BodySource, DEFAULT_BODY_HIGH_WATER_BYTES } from "./body.ts";
export { createAdminHandler, isLoopback } from "./admin.ts";
export type { AdminOptions } from "./admin.ts";
export { SIDECAR_ENV, SIDECAR_NODE_FLAGS } from "./node-flags.ts";
export { createLog } from "./log.ts";
export type { Level, Log } from "./log.ts";
