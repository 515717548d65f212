/** The control plane's source of truth: the `Store` Durable Object, its state rules and the types its RPC speaks. */
export { Store } from "./store.ts";
export type { BootstrapCredential, ClusterTrust, IssuedToken, SnapshotAnswer } from "./store.ts";
export { ConfigState, DEFAULT_MAX_ENDPOINTS_PER_SERVICE, DEFAULT_MAX_RESOURCES_PER_KIND, unmet } from "./state.ts";
export { KINDS, failure } from "./model.ts";
export type { Actor, AuditEntry, AuditPage, Change, ChangeOutcome, Expectation, Failure, Kind, Lease, Outcome, ResourceBody, SnapshotText, StoredResource, WriteResult } from "./model.ts";
