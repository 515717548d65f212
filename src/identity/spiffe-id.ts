/**
 * SPIFFE IDs (spiffe/spiffe `standards/SPIFFE-ID.md`): parsing with every rule of the
 * standard, and the two shapes Weft gives its workloads (SPEC.md section 4).
 */

/** The longest SPIFFE ID accepted, in bytes: the standard says implementations MUST support 2048. */
export const MAX_SPIFFE_ID_BYTES = 2048;

/** The longest trust domain name, in bytes (SPIFFE-ID.md: 255). */
export const MAX_TRUST_DOMAIN_BYTES = 255;

/** A parsed SPIFFE ID: its trust domain and its path (with the leading `/`, or empty). */
export interface SpiffeId {
  trustDomain: string;
  path: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[a-zA-Z0-9._-]+$/;
const PREFIX = "spiffe://";

/**
 * Parses `id` as a SPIFFE ID, or returns undefined when it breaks any rule of the standard:
 * scheme `spiffe`, a non-empty lower-case trust domain of `[a-z0-9._-]` (so no userinfo,
 * port, or percent-encoding), path segments of `[a-zA-Z0-9._-]` with no empty, `.` or `..`
 * segment and no trailing `/`, no query or fragment, at most 2048 bytes.
 */
export function parseSpiffeId(id: unknown): SpiffeId | undefined {
  if (typeof id !== "string" || !id.startsWith(PREFIX)) return undefined;
  // The allowed characters are all ASCII, so the length in characters is the length in bytes.
  if (id.length > MAX_SPIFFE_ID_BYTES) return undefined;
  const rest = id.slice(PREFIX.length);
  const slash = rest.indexOf("/");
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? "" : rest.slice(slash);
  if (!isTrustDomain(trustDomain)) return undefined;
  if (path !== "") {
    const segments = path.slice(1).split("/");
    for (const segment of segments) {
      if (segment === "." || segment === ".." || !SEGMENT.test(segment)) return undefined;
    }
  }
  return { trustDomain, path };
}

/** True when `name` is a valid trust domain name (lower-case `[a-z0-9._-]`, 1 to 255 bytes). */
export function isTrustDomain(name: string): boolean {
  return name.length > 0 && name.length <= MAX_TRUST_DOMAIN_BYTES && TRUST_DOMAIN.test(name);
}

/**
 * The SPIFFE ID of a Kubernetes workload: `spiffe://<td>/ns/<namespace>/sa/<service-account>`
 * (SPEC.md section 4, the shape Istio uses). Throws a `TypeError` when a part is not valid.
 */
export function serviceAccountId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return checked(`${PREFIX}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`);
}

/** The SPIFFE ID of a router worker: `spiffe://<td>/worker/<service>` (SPEC.md section 4). */
export function workerId(trustDomain: string, service: string): string {
  return checked(`${PREFIX}${trustDomain}/worker/${service}`);
}

function checked(id: string): string {
  if (!parseSpiffeId(id)) throw new TypeError(`not a valid SPIFFE ID: ${JSON.stringify(id)}`);
  return id;
}
