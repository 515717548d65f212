/**
 * Authorization as a pure function (SPEC.md section 3): any matching DENY denies; else, if
 * any ALLOW policy targets the service or route, the call must match one; else the
 * service's default policy decides. AUDIT policies only report that they matched.
 */
import type { AuthorizationPolicy } from "../config/schema.ts";
import { wholeMatch } from "../regex/index.ts";

export type { AuthorizationPolicy } from "../config/schema.ts";

/** A service's policy for calls no ALLOW policy speaks of (Linkerd's default policies). */
export type DefaultPolicy = "all-authenticated" | "all-unauthenticated" | "deny";

/** What authorization looks at: the call's target, its verified caller, its method and path. */
export interface AuthzInput {
  service: string;
  route?: string;
  /** The caller's verified SPIFFE ID; undefined for an unauthenticated caller. */
  identity?: string;
  method: string;
  path: string;
  /** The verified end user (`requestAuthentication`); undefined when the call carried no token. */
  endUser?: EndUser;
}

/** A verified end user's token, as policies match it. */
export interface EndUser {
  issuer: string;
  subject: string;
  audiences: readonly string[];
  /** The token's whole payload, for `claims` rules. */
  claims: Readonly<Record<string, unknown>>;
}

/** The verdict, what decided it, and the AUDIT policies the call matched. */
export interface AuthzDecision {
  allowed: boolean;
  /** The name of the policy that decided, or `default:<policy>`. */
  reason: string;
  /** Names of matching AUDIT policies, for logs. */
  audited: string[];
  /**
   * For a denial: `unauthenticated` when the call was refused for lack of an identity it
   * could have presented (401), `forbidden` when its identity is not allowed (403).
   */
  code?: "unauthenticated" | "forbidden";
}

/**
 * Decides whether `input` may proceed under `policies` and the service's `defaultPolicy`.
 *
 * `input.path` is the normalized path (`../path`, which the proxy applies first). Path rules
 * fail closed: an ALLOW rule's paths match that path exactly, case and `;` parameters
 * included, so an ALLOW grants no more than it names; DENY and AUDIT rules' paths match it
 * loosely (`loosePath`: case-insensitively, `;` parameters ignored), so a DENY for `/admin`
 * also stops `/ADMIN` and `/admin;x`, which case-insensitive or parameter-stripping apps
 * would serve as `/admin`.
 */
export function authorize(policies: readonly AuthorizationPolicy[], defaultPolicy: DefaultPolicy, input: AuthzInput): AuthzDecision {
  const audited: string[] = [];
  let allowTargets = false;
  let allowedBy: string | undefined;
  let allowNeedsIdentity = false;
  let loose: string | undefined;
  const paths = { exact: input.path, loose: () => (loose ??= loosePath(input.path)) };
  for (const policy of policies) {
    if (!targets(policy, input)) continue;
    if (policy.action === "ALLOW") allowTargets = true;
    if (!matches(policy, input, paths)) {
      // An ALLOW an authenticated caller could have matched: the refusal is for lack of identity.
      if (policy.action === "ALLOW" && input.identity === undefined && policy.from?.some((f) => f.identities?.length)) allowNeedsIdentity = true;
      if (policy.action === "ALLOW" && input.endUser === undefined && policy.from?.some(wantsEndUser)) allowNeedsIdentity = true;
      continue;
    }
    if (policy.action === "DENY") return { allowed: false, reason: policy.name, audited, code: "forbidden" };
    if (policy.action === "AUDIT") audited.push(policy.name);
    else allowedBy ??= policy.name;
  }
  if (allowTargets) {
    if (allowedBy !== undefined) return { allowed: true, reason: allowedBy, audited };
    return { allowed: false, reason: "no ALLOW policy matched", audited, code: allowNeedsIdentity ? "unauthenticated" : "forbidden" };
  }
  const reason = `default:${defaultPolicy}`;
  switch (defaultPolicy) {
    case "all-unauthenticated":
      return { allowed: true, reason, audited };
    case "all-authenticated":
      return input.identity !== undefined ? { allowed: true, reason, audited } : { allowed: false, reason, audited, code: "unauthenticated" };
    case "deny":
      return { allowed: false, reason, audited, code: "forbidden" };
  }
}

function targets(policy: AuthorizationPolicy, input: AuthzInput): boolean {
  return policy.target.service === input.service && (policy.target.route === undefined || policy.target.route === input.route);
}

/**
 * Whether the call matches a policy's `from` and `to`. An absent list matches everything.
 * A `from` entry matches a caller whose identity fits one of its globs; `unauthenticated:
 * true` matches every caller, authenticated or not, as Linkerd's unauthenticated
 * authorizations do. An entry with neither field matches anyone.
 */
function matches(policy: AuthorizationPolicy, input: AuthzInput, paths: { exact: string; loose: () => string }): boolean {
  const fromOk =
    !policy.from ||
    policy.from.some((from) => {
      if (from.unauthenticated) return true;
      if (from.identities && !(input.identity !== undefined && from.identities.some((glob) => spiffeGlob(glob).test(input.identity!)))) return false;
      return !wantsEndUser(from) || endUserMatches(from, input.endUser);
    });
  if (!fromOk) return false;
  const pathOk =
    policy.action === "ALLOW"
      ? (pattern: string) => pathMatches(pattern, paths.exact)
      : (pattern: string) => pathMatches(loosePattern(pattern), paths.loose());
  return !policy.to || policy.to.some((to) => (!to.methods || to.methods.includes(input.method.toUpperCase())) && (!to.paths || to.paths.some(pathOk)));
}

type From = NonNullable<AuthorizationPolicy["from"]>[number];

/** Whether a `from` entry names anything of an end user's token. */
function wantsEndUser(from: From): boolean {
  return from.issuers !== undefined || from.subjects !== undefined || from.audiences !== undefined || from.claims !== undefined;
}

/**
 * Whether the verified end user fits a `from` entry's end-user conditions: every list given
 * must have a pattern that matches (`audiences`: any of the token's audiences; a `claims`
 * entry: the claim's value, or any element of it when it is a list). No end user, no match.
 */
function endUserMatches(from: From, user: EndUser | undefined): boolean {
  if (user === undefined) return false;
  const any = (patterns: readonly string[] | undefined, values: readonly string[]) => patterns === undefined || values.some((value) => patterns.some((pattern) => pathMatches(pattern, value)));
  if (!any(from.issuers, [user.issuer]) || !any(from.subjects, [user.subject]) || !any(from.audiences, user.audiences)) return false;
  return (from.claims ?? []).every((claim) => any(claim.values, claimValues(user.claims, claim.name)));
}

/**
 * The string values of the claim at `name`, a dotted path for nested claims: a string as it
 * is, a number or boolean as text, each string, number or boolean of a list; nothing else.
 */
export function claimValues(claims: Readonly<Record<string, unknown>>, name: string): string[] {
  let value: unknown = claims;
  for (const part of Object.hasOwn(claims, name) ? [name] : name.split(".")) {
    if (typeof value !== "object" || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return [];
    value = (value as Record<string, unknown>)[part];
  }
  const scalar = (v: unknown) => (typeof v === "string" ? [v] : typeof v === "number" || typeof v === "boolean" ? [String(v)] : []);
  return Array.isArray(value) ? value.flatMap(scalar) : scalar(value);
}

/**
 * The form of a path that DENY and AUDIT rules match: lower-cased, every segment's `;`
 * parameters cut off (`/admin;jsessionid=1` → `/admin`), and the empty segments that leaves
 * dropped (`/;x/admin` → `/admin`), a trailing `/` kept. This is what a case-insensitive
 * app, or one that strips path parameters as Tomcat does, makes of the path.
 */
export function loosePath(path: string): string {
  const lower = path.toLowerCase();
  if (!lower.includes(";")) return lower;
  const segments = lower.split("/").map((segment) => {
    const cut = segment.indexOf(";");
    return cut < 0 ? segment : segment.slice(0, cut);
  });
  const kept = segments.filter((segment) => segment !== "");
  if (kept.length === 0) return "/";
  const trailing = segments.at(-1) === "" ? "/" : "";
  return `${lower.startsWith("/") ? "/" : ""}${kept.join("/")}${trailing}`;
}

/** A path pattern in the loose form, its `*` kept where it was. */
function loosePattern(pattern: string): string {
  if (pattern === "*") return pattern;
  if (pattern.endsWith("*")) return `${loosePath(pattern.slice(0, -1))}*`;
  if (pattern.startsWith("*")) return `*${pattern.slice(1).toLowerCase()}`;
  return loosePath(pattern);
}

/**
 * Istio's path patterns: exact, a prefix ending in `*`, a suffix starting with `*`, or `*`.
 */
export function pathMatches(pattern: string, path: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("*")) return path.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith("*")) return path.endsWith(pattern.slice(1));
  return path === pattern;
}

/** A compiled SPIFFE ID glob. */
export interface SpiffeGlob {
  /** Whether the whole of `id` fits the glob. */
  test(id: string): boolean;
}

// Compiled globs, per isolate; bounded because policies come from users.
const globs = new Map<string, SpiffeGlob>();
const MAX_CACHED_GLOBS = 1024;

/**
 * A SPIFFE ID glob, compiled: `*` matches within one path segment, `**` any run of segments,
 * everything else literally. `*` or `**` alone match every identity. Matching runs on RE2's
 * automaton (`../regex`), in time linear in the ID however many wildcards the glob has; a
 * glob's program grows with its length alone, which the schema bounds, so no size limit
 * applies here.
 */
export function spiffeGlob(glob: string): SpiffeGlob {
  let compiled = globs.get(glob);
  if (!compiled) {
    const source = glob
      .split(/(\*\*|\*)/)
      .map((part) => (part === "**" ? ".*" : part === "*" ? "[^/]*" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("");
    compiled = { test: wholeMatch(source) };
    if (globs.size >= MAX_CACHED_GLOBS) globs.clear();
    globs.set(glob, compiled);
  }
  return compiled;
}
