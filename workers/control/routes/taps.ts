/**
 * `weft tap` (issue 14): tap sessions and their events, and the dashboard's topology and
 * per-second history.
 *
 * - `POST /v1/taps` (tap permission) starts a session: a new snapshot version lists it, so
 *   every router and sidecar carrying the service's traffic learns of it on the snapshot
 *   channel it already follows; the audit log names who tapped what.
 * - `GET /v1/taps/:id/events?after=&wait=` (tap permission) long-polls for its events.
 * - `DELETE /v1/taps/:id` ends it (it also ends by itself at `expiresAt`).
 * - `POST /v1/tap-events` is where data planes push the events they sampled.
 * - `GET /v1/topology` and `GET /v1/history?service=` (read) feed the dashboard.
 */
import { z } from "zod";
import { DEFAULT_TAP_MAX_RPS } from "../../../src/core/tap/index.ts";
import { NameSchema } from "../../../src/core/config/index.ts";
import { MeshError } from "../../../src/core/errors.ts";
import { callerOf, unwrap } from "../app.ts";
import type { RouteKit } from "../app.ts";
import { json, parse, readJson } from "../http.ts";

/** A tap session lasts 10 minutes unless asked otherwise, at most an hour; our numbers (a tap is for looking, not logging). */
export const DEFAULT_TAP_SECONDS = 600;
export const MAX_TAP_SECONDS = 3_600;
/** Longest a tap events long-poll is held. */
export const MAX_TAP_WAIT_SECONDS = 30;

const StartSchema = z.strictObject({
  service: NameSchema,
  to: NameSchema.optional(),
  route: NameSchema.optional(),
  method: z
    .string()
    .regex(/^[A-Za-z]{1,16}$/, "must be an HTTP method")
    .transform((m) => m.toUpperCase())
    .optional(),
  pathPrefix: z.string().startsWith("/", "must start with /").max(512).optional(),
  maxRps: z.number().int().min(1).max(10_000).default(DEFAULT_TAP_MAX_RPS),
  seconds: z.number().int().min(1).max(MAX_TAP_SECONDS).default(DEFAULT_TAP_SECONDS),
});

const Count = (max: number) => z.string().regex(/^\d{1,15}$/, "must be a whole number").transform(Number).pipe(z.number().int().min(0).max(max));
const EventsQuery = z.object({ after: Count(Number.MAX_SAFE_INTEGER).optional(), wait: Count(MAX_TAP_WAIT_SECONDS).optional() });
const TAP_ID = /^[a-z0-9-]{1,64}$/;

function tapId(value: string): string {
  if (!TAP_ID.test(value)) throw new MeshError("bad-request", "a tap id is 1 to 64 of a-z, 0-9 and -", { issues: [{ path: ["id"], message: "invalid" }] });
  return value;
}

function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Mounts the tap and dashboard-data routes. */
export function tapRoutes(kit: RouteKit): void {
  const { mount, deps, limits } = kit;

  mount("/v1/taps", {
    GET: { access: "read", handle: async () => json({ items: await deps.store().taps() }) },
    POST: {
      access: "tap",
      handle: async (c) => {
        const body = parse(StartSchema, await readJson(c.req.raw, { maxBytes: limits.maxBodyBytes, maxDepth: limits.maxJsonDepth }), "the tap");
        if (!(await deps.store().get("Service", body.service))) throw new MeshError("unknown-service", `no service "${body.service}"`);
        const tap = {
          id: newId(),
          service: body.service,
          ...(body.to !== undefined && { to: body.to }),
          ...(body.route !== undefined && { route: body.route }),
          ...(body.method !== undefined && { method: body.method }),
          ...(body.pathPrefix !== undefined && { pathPrefix: body.pathPrefix }),
          maxRps: body.maxRps,
          expiresAt: new Date(Date.now() + body.seconds * 1000).toISOString(),
        };
        return json(unwrap(await deps.store().startTap(tap, callerOf(c).id)), 201);
      },
    },
  });

  mount("/v1/taps/:id", {
    DELETE: {
      access: "tap",
      handle: async (c) => {
        const id = tapId(c.req.param("id") ?? "");
        if (!(await deps.store().stopTap(id, callerOf(c).id))) throw new MeshError("unknown-service", `no tap session "${id}"`);
        await deps.stats().tapClose(id);
        return json({ id, stopped: true });
      },
    },
  });

  mount("/v1/taps/:id/events", {
    GET: {
      access: "tap",
      handle: async (c) => {
        const id = tapId(c.req.param("id") ?? "");
        const query = parse(EventsQuery, { after: c.req.query("after"), wait: c.req.query("wait") }, "the query");
        const live = (await deps.store().taps()).some((t) => t.id === id);
        if (!live) throw new MeshError("unknown-service", `no live tap session "${id}" (it ended, or never was)`);
        return json(await deps.stats().tapRead(id, query.after ?? 0, (query.wait ?? 0) * 1000));
      },
    },
  });

  mount("/v1/tap-events", {
    POST: {
      access: "caller",
      handle: async (c) => {
        const batch = await readJson(c.req.raw, { maxBytes: limits.maxBodyBytes, maxDepth: limits.maxJsonDepth });
        if (typeof batch !== "object" || batch === null || !Array.isArray((batch as { events?: unknown }).events)) {
          throw new MeshError("bad-request", "a tap batch is {events: [...], dropped: {...}}", { issues: [{ path: ["events"], message: "must be an array" }] });
        }
        return json(await deps.stats().tapPush(batch), 202);
      },
    },
  });

  mount("/v1/topology", { GET: { access: "read", handle: async () => json({ edges: (await deps.stats().history()).edges }) } });

  mount("/v1/history", {
    GET: {
      access: "read",
      handle: async (c) => {
        const service = parse(z.object({ service: NameSchema }), { service: c.req.query("service") }, "the query").service;
        return json(await deps.stats().history(service));
      },
    },
  });
}
