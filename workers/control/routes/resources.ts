/**
 * The routes every resource family shares (SPEC.md section 6): list, get, put and delete,
 * each resource carrying `version` and an `ETag`, writes checked against `If-Match`,
 * `If-None-Match: *` or the body's `version` (stale: 412 `precondition-failed`).
 */
import type { z } from "zod";
import { NameSchema } from "../../../src/core/config/index.ts";
import { MeshError } from "../../../src/core/errors.ts";
import { callerOf, unwrap } from "../app.ts";
import type { RouteKit } from "../app.ts";
import { etag, expectationOf, json, parse, readJson } from "../http.ts";
import type { Kind, ResourceBody, StoredResource } from "../store/index.ts";

/** A resource as the API shows it: its `kind` and its fields, `version` included. */
export function present(resource: StoredResource): Record<string, unknown> {
  return { kind: resource.kind, ...resource.body };
}

/** Validates a name from the path (a DNS label), or throws `bad-request`. */
export function nameParam(value: string | undefined, what = "the name in the path"): string {
  return parse(NameSchema, value ?? "", what);
}

/**
 * A PUT body for `kind` named `name`: `kind` may be given (and must match), `name` may be
 * left out (the path names it) or must match the path.
 */
export function bodyFor<S extends z.ZodType>(raw: unknown, kind: Kind, name: string, schema: S): z.infer<S> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new MeshError("bad-request", `the body must be a JSON object describing a ${kind}`);
  const { kind: given, ...fields } = raw as Record<string, unknown>;
  if (given !== undefined && given !== kind) throw new MeshError("bad-request", `the body's kind must be ${kind}`, { issues: [{ path: ["kind"], message: `must be "${kind}"` }] });
  if (fields.name === undefined) fields.name = name;
  else if (fields.name !== name) throw new MeshError("bad-request", "the body's name differs from the path's", { issues: [{ path: ["name"], message: `must be "${name}"` }] });
  return parse(schema, fields, `the ${kind}`);
}

/** Mounts list/get/put/delete for one family, e.g. `services` of kind `Service`. */
export function resourceRoutes(kit: RouteKit, family: string, kind: Kind, schema: z.ZodType<ResourceBody>): void {
  const { mount, deps, limits } = kit;

  mount(`/v1/${family}`, {
    GET: {
      access: "read",
      handle: async () => {
        const { version, items } = await deps.store().list(kind);
        return json({ version, items: items.map(present) }, 200, { etag: etag(version) });
      },
    },
  });

  mount(`/v1/${family}/:name`, {
    GET: {
      access: "read",
      handle: async (c) => {
        const name = nameParam(c.req.param("name"));
        const resource = await deps.store().get(kind, name);
        if (!resource) throw new MeshError("unknown-service", `no ${kind} "${name}"`);
        return json(present(resource), 200, { etag: etag(resource.body.version) });
      },
    },
    PUT: {
      access: "admin",
      handle: async (c) => {
        const name = nameParam(c.req.param("name"));
        const body = bodyFor(await readJson(c.req.raw, { maxBytes: limits.maxBodyBytes, maxDepth: limits.maxJsonDepth }), kind, name, schema);
        const expect = expectationOf(c.req.raw.headers, body.version);
        const result = unwrap(await deps.store().write([{ op: "put", kind, body, expect }], callerOf(c).id));
        const [outcome] = result.results;
        const stored = outcome!.resource!;
        return json(present(stored), outcome!.outcome === "created" ? 201 : 200, { etag: etag(stored.body.version) });
      },
    },
    DELETE: {
      access: "admin",
      handle: async (c) => {
        const name = nameParam(c.req.param("name"));
        const expect = expectationOf(c.req.raw.headers, undefined);
        const result = unwrap(await deps.store().write([{ op: "delete", kind, name, expect }], callerOf(c).id));
        return json({ kind, name, deleted: true, version: result.version });
      },
    },
  });
}
