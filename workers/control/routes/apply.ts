/**
 * `POST /v1/apply`: several resources written (and deleted) at once, all or none, as one new
 * version, the way `weft apply -f` sends a file. Each resource may carry its `version` as a
 * precondition; one stale version fails the whole apply with 412.
 */
import { z } from "zod";
import { NameSchema, ResourceSchema, validate } from "../../../src/core/config/index.ts";
import type { Issue } from "../../../src/core/errors.ts";
import { MeshError } from "../../../src/core/errors.ts";
import { callerOf, unwrap } from "../app.ts";
import type { RouteKit } from "../app.ts";
import { json, parse, readJson } from "../http.ts";
import { MAX_ISSUES } from "../limits.ts";
import { KINDS } from "../store/index.ts";
import type { Change, ResourceBody } from "../store/index.ts";

/** Mounts the apply route (admin only). */
export function applyRoutes(kit: RouteKit): void {
  const { mount, deps, limits } = kit;
  const ApplySchema = z
    .strictObject({
      resources: z.array(z.unknown()).max(limits.maxApplyResources).default([]),
      delete: z
        .array(z.strictObject({ kind: z.enum(KINDS), name: NameSchema, version: z.number().int().min(0).optional() }))
        .max(limits.maxApplyResources)
        .default([]),
    })
    .refine((body) => body.resources.length + body.delete.length > 0, "give at least one resource or deletion")
    .refine((body) => body.resources.length + body.delete.length <= limits.maxApplyResources, `at most ${limits.maxApplyResources} changes at once`);

  mount("/v1/apply", {
    POST: {
      access: "admin",
      handle: async (c) => {
        const body = parse(ApplySchema, await readJson(c.req.raw, { maxBytes: limits.maxBodyBytes, maxDepth: limits.maxJsonDepth }), "the apply request");
        const changes: Change[] = [];
        const issues: Issue[] = [];
        body.resources.forEach((raw, i) => {
          const result = validate(ResourceSchema, raw);
          if (!result.ok) {
            for (const issue of result.issues) issues.push({ path: ["resources", i, ...issue.path], message: issue.message });
            return;
          }
          const { kind, version, ...fields } = result.value;
          changes.push({ op: "put", kind, body: fields as ResourceBody, expect: version === undefined ? undefined : version === 0 ? "absent" : { version } });
        });
        if (issues.length) throw new MeshError("bad-request", "the apply request is not valid", { issues: issues.slice(0, MAX_ISSUES) });
        for (const d of body.delete) changes.push({ op: "delete", kind: d.kind, name: d.name, expect: d.version === undefined ? undefined : { version: d.version } });
        const result = unwrap(await deps.store().write(changes, callerOf(c).id));
        return json({ version: result.version, results: result.results.map(({ kind, name, outcome, version }) => ({ kind, name, outcome, version })) });
      },
    },
  });
}
