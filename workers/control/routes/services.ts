/**
 * `GET|PUT|DELETE /v1/services/:name`, `GET /v1/services`, and endpoint registration with
 * leases: `PUT|DELETE /v1/services/:name/endpoints/:id` and `GET /v1/services/:name/endpoints`.
 * A registered endpoint is in every snapshot until its lease runs out; registering it again
 * with the same fields renews the lease without a new version.
 */
import { z } from "zod";
import { DurationSchema, EndpointSchema, ServiceSchema, durationMs, formatDuration, parseDuration } from "../../../src/core/config/index.ts";
import { MeshError } from "../../../src/core/errors.ts";
import { callerOf, unwrap } from "../app.ts";
import type { ControlContext, RouteKit } from "../app.ts";
import { serviceOf } from "../auth.ts";
import { etag, expectationOf, json, parse, readJson } from "../http.ts";
import { MAX_LEASE_TTL_MS, MIN_LEASE_TTL_MS } from "../limits.ts";
import type { Lease } from "../store/index.ts";
import { nameParam, resourceRoutes } from "./resources.ts";

/** The body of an endpoint registration: the endpoint's fields, a lease length and an optional version. */
const RegistrationSchema = EndpointSchema.omit({ leaseExpiresAt: true })
  .extend({
    id: EndpointSchema.shape.id.optional(),
    ttl: DurationSchema.refine((text) => {
      const parsed = parseDuration(text);
      return parsed.ok && parsed.ms >= MIN_LEASE_TTL_MS && parsed.ms <= MAX_LEASE_TTL_MS;
    }, `must be between ${formatDuration(MIN_LEASE_TTL_MS)} and ${formatDuration(MAX_LEASE_TTL_MS)}`).optional(),
    version: z.number().int().min(0).optional(),
  });

/** An endpoint and its lease, as the API shows them. */
function presentLease(lease: Lease): Record<string, unknown> {
  return { ...lease.endpoint, leaseExpiresAt: new Date(lease.expiresAt).toISOString(), ttl: formatDuration(lease.ttlMs), version: lease.version };
}

/** Only the admin, or a workload whose identity names this service, may touch its endpoints. */
function mayManage(c: ControlContext, service: string, trustDomain: string): void {
  const caller = callerOf(c);
  if (!caller.admin && serviceOf(caller.id, trustDomain) !== service) throw new MeshError("forbidden", "this identity may not manage this service's endpoints");
}

/** Mounts the service resources and their endpoint registrations. */
export function serviceRoutes(kit: RouteKit): void {
  resourceRoutes(kit, "services", "Service", ServiceSchema);
  const { mount, deps, limits } = kit;

  mount("/v1/services/:name/endpoints", {
    GET: {
      access: "caller",
      handle: async (c) => {
        const service = nameParam(c.req.param("name"));
        mayManage(c, service, deps.trustDomain);
        const leases = unwrap(await deps.store().endpoints(service));
        return json({ service, items: leases.map(presentLease) });
      },
    },
  });

  mount("/v1/services/:name/endpoints/:id", {
    PUT: {
      access: "caller",
      handle: async (c) => {
        const service = nameParam(c.req.param("name"));
        const id = parse(EndpointSchema.shape.id, c.req.param("id") ?? "", "the endpoint id in the path");
        mayManage(c, service, deps.trustDomain);
        const raw = await readJson(c.req.raw, { maxBytes: limits.maxBodyBytes, maxDepth: limits.maxJsonDepth });
        const body = parse(RegistrationSchema, raw, "the endpoint registration");
        if (body.id !== undefined && body.id !== id) throw new MeshError("bad-request", "the body's id differs from the path's", { issues: [{ path: ["id"], message: `must be "${id}"` }] });
        const { ttl, version, ...fields } = body;
        // A workload's endpoint is held to the identity it proved (mutual TLS checks it);
        // only the admin may name another.
        const caller = callerOf(c);
        if (!caller.admin && fields.address.startsWith("https://")) fields.identity = caller.id;
        const ttlMs = ttl === undefined ? limits.defaultLeaseTtlMs : durationMs(ttl);
        const expect = expectationOf(c.req.raw.headers, version);
        const lease = unwrap(await deps.store().register(service, { ...fields, id }, ttlMs, expect, callerOf(c).id));
        return json({ ...presentLease(lease), outcome: lease.outcome }, lease.outcome === "created" ? 201 : 200, { etag: etag(lease.version) });
      },
    },
    DELETE: {
      access: "caller",
      handle: async (c) => {
        const service = nameParam(c.req.param("name"));
        const id = parse(EndpointSchema.shape.id, c.req.param("id") ?? "", "the endpoint id in the path");
        mayManage(c, service, deps.trustDomain);
        const expect = expectationOf(c.req.raw.headers, undefined);
        const result = unwrap(await deps.store().deregister(service, id, expect, callerOf(c).id));
        return json({ service, id, deleted: true, version: result.version });
      },
    },
  });
}
