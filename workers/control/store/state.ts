/**
 * The config store's state and its rules, kept free of Durable Object APIs so they read and
 * test as plain code: one version counter, compare-and-set on each resource's version,
 * all-or-none writes, referential checks across resources, endpoint leases that expire out of
 * the snapshot. Every method either fails without touching anything or returns the storage
 * mutation that makes its change durable; the Durable Object applies it.
 */
import { referenceIssues } from "../../../src/core/config/index.ts";
import type { AuthorizationPolicy, Endpoint, ExternalService, MeshTracing, Route, Service } from "../../../src/core/config/index.ts";
import type { Issue } from "../../../src/core/errors.ts";
import { failure, KINDS } from "./model.ts";
import type { AuditEntry, Change, ChangeOutcome, Expectation, Kind, Lease, Outcome, ResourceBody, StoredResource, WriteResult } from "./model.ts";

/**
 * Most resources of one kind the store holds: the snapshot schema's own cap, so every
 * snapshot the store publishes is one the data plane accepts.
 */
export const DEFAULT_MAX_RESOURCES_PER_KIND = 10_000;

/** Most endpoints, static and leased together, of one service: the Service schema's cap. */
export const DEFAULT_MAX_ENDPOINTS_PER_SERVICE = 1_000;

/**
 * How often the store notes that it is running while endpoints hold leases: a quarter of the
 * shortest lease, as the kubelet renews its node lease at a quarter of its duration
 * (`nodeLeaseRenewIntervalFraction` 0.25: every 10 s for the 40 s lease), kept within
 * 1 s..10 s so a short lease does not make the store write more than once a second.
 */
export const LEASE_HEARTBEAT_FRACTION = 0.25;
export const MIN_LEASE_HEARTBEAT_MS = 1_000;
export const MAX_LEASE_HEARTBEAT_MS = 10_000;

/**
 * The store counts as having been away when its last heartbeat is older than this many
 * heartbeats: one missed beat is alarm lateness or an eviction woken on time; two are an outage.
 */
export const AWAY_AFTER_HEARTBEATS = 2;

/** Storage keys: one per resource, one per lease, plus `meta` and the audit log's `a:` keys. */
export const keys = {
  resource: (kind: Kind, name: string) => `r:${kind}:${name}`,
  lease: (service: string, id: string) => `l:${service}/${id}`,
  meta: "meta",
  audit: (seq: number) => `a:${String(seq).padStart(12, "0")}`,
} as const;

/** The durable changes of one accepted operation, for the Durable Object to persist atomically. */
export interface Mutation {
  /** The store version after the change (unchanged for a lease renewal). */
  version: number;
  puts: Record<string, unknown>;
  deletes: string[];
  /** The audit line to append, without its sequence number and time; absent for renewals. */
  audit?: Omit<AuditEntry, "seq" | "at">;
}

/** An accepted operation: what to answer and what to persist (nothing when it changed nothing). */
export interface Accepted<T> {
  value: T;
  mutation?: Mutation;
}

/** Limits the state enforces on counts. */
export interface StateLimits {
  maxResourcesPerKind: number;
  maxEndpointsPerService: number;
}

const DEFAULT_LIMITS: StateLimits = {
  maxResourcesPerKind: DEFAULT_MAX_RESOURCES_PER_KIND,
  maxEndpointsPerService: DEFAULT_MAX_ENDPOINTS_PER_SERVICE,
};

/** The body without its version, in a stable text form, to tell a real change from a no-op. */
function canonical(value: unknown): string {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const { version: _version, ...rest } = value as Record<string, unknown>;
    return JSON.stringify(rest);
  }
  return JSON.stringify(value);
}

function resourceKey(kind: Kind, name: string): string {
  return `${kind}/${name}`;
}

function describe(kind: Kind | "Endpoint", name: string): string {
  return `${kind} "${name}"`;
}

/** Why `expect` does not hold for a thing at `current` (undefined: absent), or undefined if it holds. */
export function unmet(expect: Expectation, current: number | undefined, what: string): string | undefined {
  if (expect === undefined) return undefined;
  if (expect === "absent") return current === undefined ? undefined : `${what} already exists (version ${current})`;
  if (expect === "present") return current !== undefined ? undefined : `${what} does not exist`;
  if (current === undefined) return `${what} does not exist, so version ${expect.version} is stale`;
  return current === expect.version ? undefined : `${what} is at version ${current}, not ${expect.version}`;
}

/**
 * The config store's state, held in memory by its Durable Object (one per store) and rebuilt
 * from storage when the object starts.
 */
export class ConfigState {
  #version: number;
  readonly #resources: Map<string, StoredResource>;
  readonly #leases: Map<string, Lease>;
  readonly #limits: StateLimits;

  constructor(init: { version?: number; resources?: StoredResource[]; leases?: Lease[]; limits?: Partial<StateLimits> } = {}) {
    this.#version = init.version ?? 0;
    this.#resources = new Map((init.resources ?? []).map((r) => [resourceKey(r.kind, r.body.name), r]));
    this.#leases = new Map((init.leases ?? []).map((l) => [`${l.service}/${l.endpoint.id}`, l]));
    this.#limits = { ...DEFAULT_LIMITS, ...init.limits };
  }

  /** The store version: the number of accepted changes so far. */
  get version(): number {
    return this.#version;
  }

  /** One resource, or undefined. */
  get(kind: Kind, name: string): StoredResource | undefined {
    return this.#resources.get(resourceKey(kind, name));
  }

  /** Every resource of a kind, by name. */
  list(kind: Kind): StoredResource[] {
    return [...this.#resources.values()].filter((r) => r.kind === kind).sort((a, b) => (a.body.name < b.body.name ? -1 : 1));
  }

  /** The leases of a service, by endpoint id (expired ones included until `expire` runs). */
  leases(service: string): Lease[] {
    return [...this.#leases.values()].filter((l) => l.service === service).sort((a, b) => (a.endpoint.id < b.endpoint.id ? -1 : 1));
  }

  /** The earliest lease expiry (epoch ms), or undefined when no endpoint holds a lease. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const lease of this.#leases.values()) if (next === undefined || lease.expiresAt < next) next = lease.expiresAt;
    return next;
  }

  /**
   * How often the store must note that it is running (see `LEASE_HEARTBEAT_FRACTION`), or
   * undefined when no endpoint holds a lease and there is nothing to protect.
   */
  heartbeatMs(): number | undefined {
    let shortest: number | undefined;
    for (const lease of this.#leases.values()) if (shortest === undefined || lease.ttlMs < shortest) shortest = lease.ttlMs;
    if (shortest === undefined) return undefined;
    return Math.min(MAX_LEASE_HEARTBEAT_MS, Math.max(MIN_LEASE_HEARTBEAT_MS, Math.round(shortest * LEASE_HEARTBEAT_FRACTION)));
  }

  /**
   * The grace period after a restart at `now`, when the store was away: registrants could not
   * renew while it was, so every lease still live at its last heartbeat (`aliveAt`; undefined
   * when unknown, as in a store from before heartbeats) runs at least one lease TTL from `now`,
   * as Kubernetes' node controller gives every node a full grace period after its own outage.
   * A restart within `AWAY_AFTER_HEARTBEATS` heartbeats (a deploy, an eviction woken on time)
   * grants nothing, so a dead endpoint's lease is not stretched by restarts alone. The version
   * stays (the snapshot does not change); the mutation persists the new ends, so a second
   * restart inside the grace does not grant it again unless the store was away again.
   */
  resume(now: number, aliveAt: number | undefined): Accepted<Lease[]> {
    const heartbeat = this.heartbeatMs();
    if (heartbeat === undefined) return { value: [] };
    if (aliveAt !== undefined && now - aliveAt <= AWAY_AFTER_HEARTBEATS * heartbeat) return { value: [] };
    const graced: Lease[] = [];
    for (const [key, lease] of this.#leases) {
      if (aliveAt !== undefined && lease.expiresAt <= aliveAt) continue;
      if (lease.expiresAt >= now + lease.ttlMs) continue;
      const extended: Lease = { ...lease, expiresAt: now + lease.ttlMs };
      this.#leases.set(key, extended);
      graced.push(extended);
    }
    if (!graced.length) return { value: [] };
    const puts = Object.fromEntries(graced.map((l) => [keys.lease(l.service, l.endpoint.id), l]));
    return { value: graced, mutation: { version: this.#version, puts, deletes: [] } };
  }

  /**
   * Applies `changes` all or none: every expectation is checked against the state before the
   * write, then the result must hang together (routes' services exist, ...). A write that
   * changes nothing leaves the version as it is; otherwise the version goes up by one and
   * every changed resource takes the new version.
   */
  write(changes: Change[], actor: string): Outcome<Accepted<WriteResult>> {
    const seen = new Set<string>();
    for (const [i, change] of changes.entries()) {
      const name = change.op === "put" ? change.body.name : change.name;
      const key = resourceKey(change.kind, name);
      if (seen.has(key)) return failure("bad-request", `${describe(change.kind, name)} appears more than once`, [{ path: [i], message: "duplicate resource" }]);
      seen.add(key);
    }
    const stale: string[] = [];
    for (const change of changes) {
      const name = change.op === "put" ? change.body.name : change.name;
      const why = unmet(change.expect, this.get(change.kind, name)?.body.version, describe(change.kind, name));
      if (why) stale.push(why);
    }
    if (stale.length) return failure("precondition-failed", stale.join("; "));
    for (const change of changes) {
      if (change.op === "delete" && !this.get(change.kind, change.name)) return failure("unknown-service", `no ${describe(change.kind, change.name)}`);
    }

    const next = new Map(this.#resources);
    const results: WriteResult["results"] = [];
    const nextVersion = this.#version + 1;
    for (const change of changes) {
      if (change.op === "delete") {
        next.delete(resourceKey(change.kind, change.name));
        results.push({ kind: change.kind, name: change.name, outcome: "deleted", version: nextVersion });
        continue;
      }
      const key = resourceKey(change.kind, change.body.name);
      const current = next.get(key);
      if (current && canonical(current.body) === canonical(change.body)) {
        results.push({ kind: change.kind, name: change.body.name, outcome: "unchanged", version: current.body.version, resource: current });
        continue;
      }
      const { version: _ignored, ...fields } = change.body;
      const stored: StoredResource = { kind: change.kind, body: { ...fields, version: nextVersion } as ResourceBody & { version: number } };
      next.set(key, stored);
      results.push({ kind: change.kind, name: change.body.name, outcome: current ? "updated" : "created", version: nextVersion, resource: stored });
    }
    if (results.every((r) => r.outcome === "unchanged")) return { ok: true, value: { value: { version: this.#version, results } } };

    const issues = this.#problems(next);
    if (issues.length) return failure("bad-request", "the change would leave the config inconsistent", issues);

    // Deleting a service takes its registered endpoints with it.
    const deletedServices = new Set(changes.filter((c) => c.op === "delete" && c.kind === "Service").map((c) => (c as { name: string }).name));
    const droppedLeases = [...this.#leases.values()].filter((l) => deletedServices.has(l.service));

    const puts: Record<string, unknown> = {};
    const deletes: string[] = [];
    for (const r of results) {
      if (r.kind === "Endpoint") continue;
      if (r.outcome === "deleted") deletes.push(keys.resource(r.kind, r.name));
      else if (r.outcome !== "unchanged") puts[keys.resource(r.kind, r.name)] = next.get(resourceKey(r.kind, r.name));
    }
    for (const lease of droppedLeases) deletes.push(keys.lease(lease.service, lease.endpoint.id));

    this.#resources.clear();
    for (const [k, v] of next) this.#resources.set(k, v);
    for (const lease of droppedLeases) this.#leases.delete(`${lease.service}/${lease.endpoint.id}`);
    const from = this.#version;
    this.#version = nextVersion;
    const changed = results.filter((r) => r.outcome !== "unchanged").map(({ kind, name, outcome }) => ({ kind, name, outcome }));
    return {
      ok: true,
      value: {
        value: { version: nextVersion, results },
        mutation: { version: nextVersion, puts, deletes, audit: { actor, action: "write", changes: changed, fromVersion: from, toVersion: nextVersion } },
      },
    };
  }

  /**
   * Registers or renews an endpoint of an existing service with a lease of `ttlMs` from `now`.
   * Renewing with the same fields only moves the lease's end: the snapshot does not change,
   * so neither does the version (and data-plane pollers are not woken for it).
   */
  register(service: string, endpoint: Endpoint, ttlMs: number, expect: Expectation, actor: string, now: number): Outcome<Accepted<Lease>> {
    if (!this.get("Service", service)) return failure("unknown-service", `no service "${service}"`);
    const key = `${service}/${endpoint.id}`;
    const current = this.#leases.get(key);
    const why = unmet(expect, current?.version, describe("Endpoint", key));
    if (why) return failure("precondition-failed", why);
    const stored: Endpoint = { ...endpoint };
    delete stored.leaseExpiresAt;
    if (current && canonical(current.endpoint) === canonical(stored)) {
      const renewed: Lease = { ...current, expiresAt: now + ttlMs, ttlMs };
      this.#leases.set(key, renewed);
      return { ok: true, value: { value: renewed, mutation: { version: this.#version, puts: { [keys.lease(service, endpoint.id)]: renewed }, deletes: [] } } };
    }
    if (!current) {
      const statics = new Set(((this.get("Service", service)!.body as Service).endpoints ?? []).map((e) => e.id));
      const leased = this.leases(service).length;
      if (statics.size + leased + 1 > this.#limits.maxEndpointsPerService) {
        return failure("bad-request", `service "${service}" already has ${this.#limits.maxEndpointsPerService} endpoints`);
      }
    }
    const version = this.#version + 1;
    const lease: Lease = { service, endpoint: stored, expiresAt: now + ttlMs, ttlMs, version };
    this.#leases.set(key, lease);
    const from = this.#version;
    this.#version = version;
    const outcome: ChangeOutcome = current ? "updated" : "created";
    return {
      ok: true,
      value: {
        value: lease,
        mutation: {
          version,
          puts: { [keys.lease(service, endpoint.id)]: lease },
          deletes: [],
          audit: { actor, action: "register", changes: [{ kind: "Endpoint", name: key, outcome }], fromVersion: from, toVersion: version },
        },
      },
    };
  }

  /** Removes a registered endpoint before its lease runs out. */
  deregister(service: string, id: string, expect: Expectation, actor: string): Outcome<Accepted<WriteResult>> {
    const key = `${service}/${id}`;
    const current = this.#leases.get(key);
    const why = unmet(expect, current?.version, describe("Endpoint", key));
    if (why) return failure("precondition-failed", why);
    if (!current) return failure("unknown-service", `no registered endpoint "${id}" of service "${service}"`);
    this.#leases.delete(key);
    const from = this.#version;
    const version = ++this.#version;
    return {
      ok: true,
      value: {
        value: { version, results: [{ kind: "Endpoint", name: key, outcome: "deleted", version }] },
        mutation: {
          version,
          puts: {},
          deletes: [keys.lease(service, id)],
          audit: { actor, action: "deregister", changes: [{ kind: "Endpoint", name: key, outcome: "deleted" }], fromVersion: from, toVersion: version },
        },
      },
    };
  }

  /** Drops every endpoint whose lease ran out by `now`, as one change by `system`; undefined if none did. */
  expire(now: number): Mutation | undefined {
    const expired = [...this.#leases.values()].filter((l) => l.expiresAt <= now);
    if (!expired.length) return undefined;
    for (const lease of expired) this.#leases.delete(`${lease.service}/${lease.endpoint.id}`);
    const from = this.#version;
    const version = ++this.#version;
    return {
      version,
      puts: {},
      deletes: expired.map((l) => keys.lease(l.service, l.endpoint.id)),
      audit: {
        actor: "system",
        action: "expire",
        changes: expired.map((l) => ({ kind: "Endpoint" as const, name: `${l.service}/${l.endpoint.id}`, outcome: "deleted" as const })),
        fromVersion: from,
        toVersion: version,
      },
    };
  }

  /**
   * A change made outside the resources (a signing key rotated): takes a new version so the
   * snapshot that carries the trust bundle is published again.
   */
  bump(actor: string, action: AuditEntry["action"], changes: AuditEntry["changes"], puts: Record<string, unknown> = {}): Mutation {
    const from = this.#version;
    const version = ++this.#version;
    return { version, puts, deletes: [], audit: { actor, action, changes, fromVersion: from, toVersion: version } };
  }

  /**
   * The snapshot of SPEC.md section 3 without its trust bundle: services (static endpoints
   * merged with live leased ones, a leased endpoint replacing a static one of the same id),
   * routes and policies, each sorted by name.
   */
  snapshot(): { version: number; services: Service[]; routes: Route[]; policies: AuthorizationPolicy[]; externalServices?: ExternalService[]; tracing?: MeshTracing } {
    const services = this.list("Service").map((r) => {
      const service = r.body as Service;
      const leased = this.leases(service.name).map((l) => l.endpoint);
      if (!leased.length) return service;
      const ids = new Set(leased.map((e) => e.id));
      return { ...service, endpoints: [...(service.endpoints ?? []).filter((e) => !ids.has(e.id)), ...leased] };
    });
    return {
      version: this.#version,
      services,
      routes: this.list("Route").map((r) => r.body as Route),
      policies: this.list("AuthorizationPolicy").map((r) => r.body as AuthorizationPolicy),
      // Egress (issue 16): present only once one is declared, so older snapshots read the same.
      ...(this.list("ExternalService").length > 0 && { externalServices: this.list("ExternalService").map((r) => r.body as ExternalService) }),
      // Mesh-wide tracing (issue 13): the one Tracing resource, once applied.
      ...(this.list("Tracing").length > 0 && { tracing: this.list("Tracing")[0]!.body as MeshTracing }),
    };
  }

  /** Cross-resource problems and count limits of a would-be state, each pathed by kind and name. */
  #problems(next: Map<string, StoredResource>): Issue[] {
    const byKind = (kind: Kind) => [...next.values()].filter((r) => r.kind === kind);
    const issues: Issue[] = [];
    for (const kind of KINDS) {
      const count = byKind(kind).length;
      if (count > this.#limits.maxResourcesPerKind) issues.push({ path: [kind], message: `at most ${this.#limits.maxResourcesPerKind} resources of kind ${kind}` });
    }
    const services = byKind("Service").map((r) => r.body as Service);
    for (const service of services) {
      const ids = new Set([...(service.endpoints ?? []).map((e) => e.id), ...this.leases(service.name).map((l) => l.endpoint.id)]);
      if (ids.size > this.#limits.maxEndpointsPerService) {
        issues.push({ path: ["Service", service.name, "endpoints"], message: `at most ${this.#limits.maxEndpointsPerService} endpoints, static and registered together` });
      }
    }
    // Egress (issue 16): an outside service shares no name with a mesh service, nor a host with another.
    const serviceNames = new Set(services.map((s) => s.name));
    const hostOwners = new Map<string, string>();
    for (const external of byKind("ExternalService").map((r) => r.body as ExternalService)) {
      if (serviceNames.has(external.name)) issues.push({ path: ["ExternalService", external.name, "name"], message: `a Service is named "${external.name}" too` });
      for (const host of external.hosts) {
        const owner = hostOwners.get(host);
        if (owner !== undefined && owner !== external.name) issues.push({ path: ["ExternalService", external.name, "hosts"], message: `host "${host}" is declared by ExternalService "${owner}" too` });
        hostOwners.set(host, external.name);
      }
    }
    const routes = byKind("Route").map((r) => r.body as Route);
    const policies = byKind("AuthorizationPolicy").map((r) => r.body as AuthorizationPolicy);
    const lists = { services, routes, policies } as const;
    const kindOf = { services: "Service", routes: "Route", policies: "AuthorizationPolicy" } as const;
    for (const issue of referenceIssues(lists)) {
      const [collection, index, ...rest] = issue.path;
      const list = lists[collection as keyof typeof lists] as { name: string }[] | undefined;
      const item = typeof index === "number" ? list?.[index] : undefined;
      issues.push(item ? { path: [kindOf[collection as keyof typeof kindOf], item.name, ...rest], message: issue.message } : issue);
    }
    return issues;
  }
}
