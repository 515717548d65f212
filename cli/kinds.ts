/**
 * The three kinds of resource (SPEC.md section 3) and the words people type for them, as
 * kubectl accepts `svc`, `service` and `services`.
 */

/** One kind of resource: its `kind` value, its API path and the words naming it. */
export interface KindInfo {
  /** The `kind` field of a document. */
  kind: "Service" | "Route" | "AuthorizationPolicy" | "ExternalService" | "Tracing";
  /** The control API's path segment: `/v1/<path>/:name`. */
  path: "services" | "routes" | "policies" | "externalservices" | "tracing";
  /** The lower-case singular, as `weft apply` prints results (`service/orders configured`). */
  singular: string;
  /** Every word that names the kind on the command line, lower case. */
  words: string[];
}

/** The kinds in the order `weft get all` prints them. */
export const KINDS: readonly KindInfo[] = [
  { kind: "Service", path: "services", singular: "service", words: ["service", "services", "svc"] },
  { kind: "Route", path: "routes", singular: "route", words: ["route", "routes", "rt", "httproute", "httproutes"] },
  {
    kind: "AuthorizationPolicy",
    path: "policies",
    singular: "policy",
    words: ["policy", "policies", "authorizationpolicy", "authorizationpolicies", "authz", "ap"],
  },
  { kind: "ExternalService", path: "externalservices", singular: "externalservice", words: ["externalservice", "externalservices", "ext", "se"] },
  // Mesh-wide tracing (issue 13): one resource, named mesh.
  { kind: "Tracing", path: "tracing", singular: "tracing", words: ["tracing", "tracings", "trace"] },
];

/** The kind a word names (case-insensitive), or undefined. */
export function kindOf(word: string): KindInfo | undefined {
  const lower = word.toLowerCase();
  return KINDS.find((k) => k.words.includes(lower) || k.kind.toLowerCase() === lower);
}

/** The kind whose `kind` field is `kind`. */
export function kindInfo(kind: KindInfo["kind"]): KindInfo {
  return KINDS.find((k) => k.kind === kind)!;
}

/** The words people can type for kinds, for usage errors. */
export const KIND_WORDS = "services (svc), routes (rt), policies (ap), externalservices (ext), tracing";
