/**
 * Which host names name a service of the mesh. An app's call leaves the workload through the
 * outbound stack with the workload's identity attached, so only names that can only mean a
 * mesh service may be routed there: a name that could mean a host outside the mesh
 * (`orders.example.com`) must not reach the mesh's `orders` with this workload's token.
 */

/**
 * The Kubernetes cluster domain: `cluster.local`, the kubelet's `--cluster-domain` default
 * and the suffix CoreDNS serves Services under (`<svc>.<ns>.svc.cluster.local`).
 */
export const DEFAULT_CLUSTER_DOMAIN = "cluster.local";

/** Options of `serviceNames`. */
export interface NamingOptions {
  /**
   * The namespaces a qualified name may carry (`orders.<ns>`, `orders.<ns>.svc`,
   * `orders.<ns>.svc.<cluster domain>`). None (a router worker, which lives in no namespace):
   * only the bare `orders` names a service.
   */
  namespaces?: Iterable<string>;
  /** The cluster domain of the fully qualified form; `cluster.local` by default. */
  clusterDomain?: string;
}

/** A naming rule, compiled once: what `serviceOf` and `serviceOfHost` read hosts with. */
export interface ServiceNames {
  readonly namespaces: ReadonlySet<string>;
  /** `svc.<cluster domain>`: what may follow `<svc>.<ns>.` besides `svc` alone. */
  readonly svcDomain: string;
}

/**
 * Compiles the naming rule. Accepted, with `ns` one of `namespaces`: `svc`, `svc.ns`,
 * `svc.ns.svc`, `svc.ns.svc.<cluster domain>` (the names a pod's resolver turns into the
 * same Service through its search path), each with or without one trailing dot (an absolute
 * DNS name). Nothing else names a service: other dotted names, IP literals, empty labels.
 */
export function serviceNames(options: NamingOptions = {}): ServiceNames {
  const domain = (options.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN).toLowerCase().replace(/\.$/, "");
  const namespaces = new Set([...(options.namespaces ?? [])].map((ns) => ns.toLowerCase()).filter((ns) => ns !== ""));
  return { namespaces, svcDomain: `svc.${domain}` };
}

/** The rule with no namespace: only bare service names (`orders`). */
export const BARE_NAMES: ServiceNames = serviceNames();

/**
 * The service `host` names under `names`, or undefined when it names none. `host` is a URL's
 * host as the URL parser serializes it (lower case, no port, IPv4 in dotted decimal, IPv6 in
 * brackets); other input is read the same way, so anything else simply names no service.
 */
export function serviceOfHost(host: string, names: ServiceNames = BARE_NAMES): string | undefined {
  let end = host.length;
  // An absolute name (`orders.`) is the same name: drop one trailing dot.
  if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--;
  if (end === 0) return undefined;
  const first = host.indexOf(".");
  if (first === -1 || first >= end) {
    const name = end === host.length ? host : host.slice(0, end);
    // `[::1]` is an IPv6 literal; a bare number cannot survive the URL parser but may come raw.
    return isName(name) ? name : undefined;
  }
  // Dotted: the URL parser serializes any host whose last label is numeric as IPv4, so a
  // name ending in digits is an address, never `svc.ns`.
  const svc = host.slice(0, first);
  if (!isName(svc)) return undefined;
  const second = host.indexOf(".", first + 1);
  const nsEnd = second === -1 || second >= end ? end : second;
  const ns = host.slice(first + 1, nsEnd);
  if (!names.namespaces.has(ns)) return undefined;
  if (nsEnd === end) return isIPv4Tail(ns) ? undefined : svc;
  const rest = host.slice(nsEnd + 1, end);
  return rest === "svc" || rest === names.svcDomain ? svc : undefined;
}

/**
 * The destination service a request names: its URL's host under the naming rule `names`
 * (by default bare names only), or undefined. A string scan of the URL the `Request` already
 * holds parsed and serialized (scheme://host[:port]/...): no `new URL` per call, as this runs
 * on every outbound request.
 */
export function serviceOf(request: Request, names: ServiceNames = BARE_NAMES): string | undefined {
  const url = request.url;
  const start = url.indexOf("//") + 2;
  let end = start;
  for (; end < url.length; end++) {
    const c = url.charCodeAt(end);
    if (c === 47 /* / */ || c === 58 /* : */ || c === 63 /* ? */ || c === 35 /* # */ || c === 91 /* [ */) break;
  }
  // An IPv6 literal (`[`) names no service.
  if (url.charCodeAt(end) === 91) return undefined;
  return serviceOfHost(url.slice(start, end), names);
}

/**
 * True for a label that can be a service's name: a DNS label's characters (what the config's
 * `NameSchema` allows, in lower case) and not all digits (an IPv4 address's last label).
 */
function isName(label: string): boolean {
  if (label.length === 0 || label.length > 63) return false;
  let digits = true;
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    const digit = c >= 48 && c <= 57;
    if (!digit && !(c >= 97 && c <= 122) && c !== 45 /* - */) return false;
    if (!digit) digits = false;
  }
  return !digits;
}

/** True when `label` is all digits: then `svc.<label>` is an IPv4 address, not `svc.ns`. */
function isIPv4Tail(label: string): boolean {
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return label.length > 0;
}
