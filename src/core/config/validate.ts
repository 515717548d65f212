/**
 * Validation at the edges: runs a schema and reports every problem at once, each with its
 * path, in the `issues` shape of SPEC.md section 2; and the checks that span resources
 * (a route's service and backends exist, names are unique).
 */
import type { z } from "zod";
import type { Issue } from "../errors.ts";
import type { Snapshot } from "./schema.ts";

/** A validated value, or every issue found. */
export type Validated<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

/** The issues of a zod error, as paths and messages (symbols in paths become strings). */
export function issuesOf(error: z.ZodError): Issue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map((p) => (typeof p === "number" ? p : String(p))),
    message: issue.message,
  }));
}

/** Parses `input` with `schema`; never throws. */
export function validate<S extends z.ZodType>(schema: S, input: unknown): Validated<z.infer<S>> {
  const result = schema.safeParse(input);
  return result.success ? { ok: true, value: result.data } : { ok: false, issues: issuesOf(result.error) };
}

/**
 * The problems of a snapshot that no single resource shows: duplicate names, routes whose
 * service or backends do not exist, policies whose target does not, routes whose backend
 * weights are all zero. An empty list means the snapshot hangs together.
 */
export function referenceIssues(snapshot: Pick<Snapshot, "services" | "routes" | "policies">): Issue[] {
  const issues: Issue[] = [];
  const duplicates = (kind: "services" | "routes" | "policies", names: string[]) => {
    const seen = new Set<string>();
    names.forEach((name, i) => {
      if (seen.has(name)) issues.push({ path: [kind, i, "name"], message: `duplicate name "${name}"` });
      seen.add(name);
    });
  };
  duplicates("services", snapshot.services.map((s) => s.name));
  duplicates("routes", snapshot.routes.map((r) => r.name));
  duplicates("policies", snapshot.policies.map((p) => p.name));

  const services = new Set(snapshot.services.map((s) => s.name));
  snapshot.routes.forEach((route, i) => {
    if (!services.has(route.service)) issues.push({ path: ["routes", i, "service"], message: `no service "${route.service}"` });
    route.backends.forEach((backend, j) => {
      if (!services.has(backend.service)) issues.push({ path: ["routes", i, "backends", j, "service"], message: `no service "${backend.service}"` });
    });
    (route.filters ?? []).forEach((filter, j) => {
      if (filter.type !== "RequestMirror") return;
      const mirror = filter.requestMirror.backendRef.service;
      if (!services.has(mirror)) issues.push({ path: ["routes", i, "filters", j, "requestMirror", "backendRef", "service"], message: `no service "${mirror}"` });
    });
    if (route.backends.every((b) => b.weight === 0)) issues.push({ path: ["routes", i, "backends"], message: "at least one backend needs a weight above 0" });
  });
  const routes = new Map(snapshot.routes.map((r) => [r.name, r.service]));
  snapshot.policies.forEach((policy, i) => {
    const { service, route } = policy.target;
    if (!services.has(service)) issues.push({ path: ["policies", i, "target", "service"], message: `no service "${service}"` });
    if (route !== undefined && routes.get(route) !== service) {
      issues.push({ path: ["policies", i, "target", "route"], message: `no route "${route}" of service "${service}"` });
    }
  });
  return issues;
}
