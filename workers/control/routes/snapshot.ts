/**
 * `GET /v1/snapshot`: the whole config the data plane needs, versioned. `If-None-Match` with
 * the version a reader holds gets 304; with `?wait=<seconds>` as well, the request is held
 * until a newer version exists (answered as soon as it does) or the wait runs out (304).
 */
import { MeshError } from "../../../src/core/errors.ts";
import { unwrap } from "../app.ts";
import type { RouteKit } from "../app.ts";
import { etag, versionsOf } from "../http.ts";

const WAIT = /^\d{1,6}(\.\d{1,3})?$/;

/** Mounts the snapshot route. Readable by the admin and by any workload's control-plane token. */
export function snapshotRoutes(kit: RouteKit): void {
  const { mount, deps, limits } = kit;
  mount("/v1/snapshot", {
    GET: {
      access: "config",
      handle: async (c) => {
        const wait = c.req.query("wait");
        let waitMs = 0;
        if (wait !== undefined) {
          if (!WAIT.test(wait) || Number(wait) > limits.maxWaitSeconds) {
            throw new MeshError("bad-request", `wait must be a number of seconds from 0 to ${limits.maxWaitSeconds}`, { issues: [{ path: ["wait"], message: "invalid" }] });
          }
          waitMs = Math.round(Number(wait) * 1000);
        }
        const answer = unwrap(await deps.store().snapshot(versionsOf(c.req.header("if-none-match") ?? null), waitMs));
        const headers = { etag: etag(answer.version), "cache-control": "no-store" };
        if ("notModified" in answer) return new Response(null, { status: 304, headers });
        return new Response(answer.text, { status: 200, headers: { ...headers, "content-type": "application/json" } });
      },
    },
  });
}
