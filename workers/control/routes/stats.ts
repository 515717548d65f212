/**
 * Golden metrics (SPEC.md section 7): routers and sidecars push their deltas with
 * `POST /v1/stats` (batched, best-effort, off the request path); `GET /v1/stats` answers
 * success rate, RPS and latency quantiles per service and route over the last minute, and
 * `GET /metrics` the same totals in the Prometheus text format.
 */
import { z } from "zod";
import { EXPOSITION_CONTENT_TYPE } from "../../../src/core/metrics/index.ts";
import type { MetricsDelta } from "../../../src/core/metrics/index.ts";
import { MeshError } from "../../../src/core/errors.ts";
import { callerOf } from "../app.ts";
import type { RouteKit } from "../app.ts";
import { json, parse, readJson } from "../http.ts";

/** The envelope of a pushed delta; its contents are checked entry by entry by the aggregator. */
const DeltaSchema = z.looseObject({
  v: z.literal(1),
  requests: z.array(z.unknown()).max(100_000),
  responses: z.array(z.unknown()).max(100_000),
});

const HOST = /^[A-Za-z0-9._:/-]{1,128}$/;

/** Mounts the stats routes. */
export function statsRoutes(kit: RouteKit): void {
  const { mount, deps, limits } = kit;
  mount("/v1/stats", {
    POST: {
      access: "caller",
      handle: async (c) => {
        const host = c.req.query("host");
        if (host !== undefined && !HOST.test(host)) throw new MeshError("bad-request", "host must be 1 to 128 letters, digits or ._:/-", { issues: [{ path: ["host"], message: "invalid" }] });
        const delta = parse(DeltaSchema, await readJson(c.req.raw, { maxBytes: limits.maxBodyBytes, maxDepth: limits.maxJsonDepth }), "the metrics delta");
        const caller = callerOf(c);
        const result = await deps.stats().push(delta as unknown as MetricsDelta, host === undefined ? caller.id : `${caller.id} ${host}`);
        if (!result.ok) throw new MeshError("bad-request", `the metrics delta was refused: ${result.reason}`);
        return json({ accepted: true, ignored: result.ignored }, 202);
      },
    },
    GET: { access: "read", handle: async () => json(await deps.stats().stats()) },
  });
  mount("/metrics", {
    GET: {
      access: "read",
      handle: async () => new Response(await deps.stats().expose(), { headers: { "content-type": EXPOSITION_CONTENT_TYPE, "cache-control": "no-store" } }),
    },
  });
}
