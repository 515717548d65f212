/**
 * The types the store and the API share: resource kinds, write requests with their
 * compare-and-set expectations, results, leases and audit entries. Plain data only, since
 * every value here crosses the Durable Object's RPC boundary by structured clone.
 */
import type { AuthorizationPolicy, Endpoint, ExternalService, MeshTracing, Route, Service } from "../../../src/core/config/index.ts";
import type { ErrorCode, Issue } from "../../../src/core/errors.ts";

/** The kinds of resource users write (SPEC.md section 9), in the order snapshots list them. */
export const KINDS = ["Service", "Route", "AuthorizationPolicy", "ExternalService", "Tracing"] as const;

/** One of `KINDS`. */
export type Kind = (typeof KINDS)[number];

/** A resource's body as stored: its fields of SPEC.md section 3, `version` included. */
export type ResourceBody = Service | Route | AuthorizationPolicy | ExternalService | MeshTracing;

/** A stored resource: its kind, and its body whose `version` is the store version that last wrote it. */
export interface StoredResource {
  kind: Kind;
  body: ResourceBody & { version: number };
}

/**
 * What a write expects of the resource it touches, checked under the store's lock:
 * a version (`If-Match: "7"` or a body's `version: 7`), `absent` (`If-None-Match: *`, or
 * `version: 0`), `present` (`If-Match: *`), or nothing (an unconditional write).
 */
export type Expectation = { version: number } | "absent" | "present" | undefined;

/** One change of an all-or-none write. `body.name` names the resource. */
export type Change =
  | { op: "put"; kind: Kind; body: ResourceBody; expect?: Expectation }
  | { op: "delete"; kind: Kind; name: string; expect?: Expectation };

/** What happened to one resource in a write. */
export type ChangeOutcome = "created" | "updated" | "unchanged" | "deleted";

/** The answer to a write: the store version after it and what became of each resource. */
export interface WriteResult {
  version: number;
  /** Per change; `resource` is the stored resource after a put (created, updated or unchanged). */
  results: { kind: Kind | "Endpoint"; name: string; outcome: ChangeOutcome; version: number; resource?: StoredResource }[];
}

/** A registered endpoint and its lease, as `GET /v1/services/:name/endpoints` shows it. */
export interface Lease {
  service: string;
  endpoint: Endpoint;
  /** Epoch milliseconds when the lease runs out unless renewed. */
  expiresAt: number;
  /** The lease's length, in milliseconds, as last registered. */
  ttlMs: number;
  /** The store version that last changed this endpoint (renewals alone do not). */
  version: number;
}

/** Who made a change: `admin`, a workload's SPIFFE ID, or `system` (lease expiry, key rotation). */
export type Actor = string;

/** One line of the audit log: who, when, what, and the store version from → to. */
export interface AuditEntry {
  seq: number;
  /** ISO 8601 time of the change. */
  at: string;
  actor: Actor;
  action: "write" | "register" | "deregister" | "expire" | "rotate-keys" | "rotate-ca" | "tap-start" | "tap-stop";
  changes: { kind: Kind | "Endpoint" | "SigningKey" | "TrustAnchors" | "WorkerSecret" | "Cluster" | "Tap"; name: string; outcome: ChangeOutcome }[];
  fromVersion: number;
  toVersion: number;
}

/** A page of the audit log, oldest first; `next` is the `after` to ask for the next page. */
export interface AuditPage {
  entries: AuditEntry[];
  next: number | null;
}

/** A failure the store reports instead of throwing (errors do not survive RPC as classes). */
export interface Failure {
  ok: false;
  code: ErrorCode;
  message: string;
  issues?: Issue[];
  /** Seconds to wait before trying again, for `overloaded`. */
  retryAfter?: number;
}

/** A value, or the reason there is none. */
export type Outcome<T> = { ok: true; value: T } | Failure;

/** Builds a `Failure`. */
export function failure(code: ErrorCode, message: string, issues?: Issue[]): Failure {
  return issues ? { ok: false, code, message, issues } : { ok: false, code, message };
}

/** The snapshot as the store serves it: its version and its JSON text. */
export interface SnapshotText {
  version: number;
  text: string;
}
