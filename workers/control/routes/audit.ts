/** `GET /v1/audit?after=<seq>&limit=<n>`: who changed what, when, from which version to which; oldest first. */
import { z } from "zod";
import type { RouteKit } from "../app.ts";
import { json, parse } from "../http.ts";
import { DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE } from "../limits.ts";

const Count = (max: number) => z.string().regex(/^\d{1,15}$/, "must be a whole number").transform(Number).pipe(z.number().int().min(0).max(max));

const QuerySchema = z.object({
  after: Count(Number.MAX_SAFE_INTEGER).optional(),
  limit: Count(MAX_AUDIT_PAGE).pipe(z.number().min(1)).optional(),
});

/** Mounts the audit log (admin only). `next` in the answer is the `after` of the following page, or null. */
export function auditRoutes(kit: RouteKit): void {
  const { mount, deps } = kit;
  mount("/v1/audit", {
    GET: {
      access: "read",
      handle: async (c) => {
        const query = parse(QuerySchema, { after: c.req.query("after"), limit: c.req.query("limit") }, "the query");
        return json(await deps.store().audit(query.after ?? 0, query.limit ?? DEFAULT_AUDIT_PAGE));
      },
    },
  });
}
