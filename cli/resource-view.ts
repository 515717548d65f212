/**
 * Resources as `weft get` shows them: a table row per resource (what `kubectl get` shows for
 * its kinds), or documents with their `kind` that `weft apply` reads back.
 */
import type { KindedResource, StoredResource } from "./control-api.ts";
import type { KindInfo } from "./kinds.ts";
import type { Cell, Style } from "./output.ts";
import { table } from "./output.ts";

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const list = (value: unknown): Record<string, unknown>[] => (Array.isArray(value) ? value.filter(isRecord) : []);
const text = (value: unknown, fallback = "-") => (typeof value === "string" || typeof value === "number" ? String(value) : fallback);

/** `resource` as a document: `kind`, `name` and `version` first, then its fields as stored. */
export function asDocument(kind: KindInfo, resource: StoredResource): KindedResource {
  const { name, version, kind: _stored, ...rest } = resource;
  return { kind: kind.kind, name, ...(version === undefined ? {} : { version }), ...rest };
}

function matchSummary(route: Record<string, unknown>): string {
  const matches = list(route.matches);
  if (matches.length === 0) return "/*";
  const one = (m: Record<string, unknown>) => {
    const path = isRecord(m.path) ? m.path : undefined;
    const value = text(path?.value, "/");
    const shown = path?.type === "Exact" ? value : path?.type === "RegularExpression" ? `~${value}` : `${value.replace(/\/$/, "")}/*`;
    const extras = list(m.headers).length + list(m.query).length;
    return `${typeof m.method === "string" ? `${m.method} ` : ""}${shown}${extras ? ` (+${extras})` : ""}`;
  };
  return matches.length > 2 ? `${one(matches[0]!)}, … ${matches.length - 1} more` : matches.map(one).join(", ");
}

function rowOf(kind: KindInfo, r: StoredResource): Cell[] {
  const version = text(r.version);
  switch (kind.kind) {
    case "Service":
      return [r.name, String(list(r.endpoints).length), text(r.balancer), text(r.defaultPolicy), version];
    case "Route":
      return [
        r.name,
        text(r.service),
        matchSummary(r),
        list(r.backends)
          .map((b) => `${text(b.service)}:${text(b.weight, "1")}`)
          .join(",") || "-",
        version,
      ];
    case "AuthorizationPolicy": {
      const target = isRecord(r.target) ? `${text(r.target.service)}${typeof r.target.route === "string" ? `/${r.target.route}` : ""}` : "-";
      const from = list(r.from)
        .flatMap((f) => [...(Array.isArray(f.identities) ? f.identities.map(String) : []), ...(f.unauthenticated ? ["unauthenticated"] : [])])
        .join(",");
      return [r.name, target, text(r.action), from || "*", version];
    }
    case "ExternalService":
      return [r.name, (Array.isArray(r.hosts) ? r.hosts.map(String) : []).join(",") || "-", text(r.protocol, "https"), text(r.address), version];
    case "Tracing": {
      const services = isRecord(r.services) ? Object.entries(r.services).map(([name, ratio]) => `${name}:${text(ratio)}`) : [];
      return [r.name, text(r.sampler, "parentbased_traceidratio"), text(r.ratio), services.join(",") || "-", version];
    }
  }
}

const HEADERS: Record<KindInfo["kind"], string[]> = {
  Service: ["NAME", "ENDPOINTS", "BALANCER", "DEFAULT-POLICY", "VERSION"],
  Route: ["NAME", "SERVICE", "MATCHES", "BACKENDS", "VERSION"],
  AuthorizationPolicy: ["NAME", "TARGET", "ACTION", "FROM", "VERSION"],
  ExternalService: ["NAME", "HOSTS", "PROTOCOL", "ADDRESS", "VERSION"],
  Tracing: ["NAME", "SAMPLER", "RATIO", "SERVICES", "VERSION"],
};

/** The table `weft get KIND` prints for `resources` of one kind. */
export function resourceTable(kind: KindInfo, resources: StoredResource[], style: Style): string {
  return table(HEADERS[kind.kind], resources.map((r) => rowOf(kind, r)), style);
}
