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
import type { MeshRequest } from "../core/fetch.ts";
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
  return nameIn(host, 0, host.length, names);
}

/**
 * The destination service a request names: its URL's host under the naming rule `names`
 * (by default bare names only), or undefined. A string scan of the URL the `Request` already
 * holds parsed and serialized (scheme://host[:port]/...): no `new URL` and no copy of the
 * host per call, as this runs on every outbound request.
 */
export function serviceOf(request: MeshRequest, names: ServiceNames = BARE_NAMES): string | undefined {
  const url = request.url;
  const start = url.indexOf("//") + 2;
  let end = start;
  for (; end < url.length; end++) {
    const c = url.charCodeAt(end);
    if (c === 47 /* / */ || c === 58 /* : */ || c === 63 /* ? */ || c === 35 /* # */) break;
  }
  return nameIn(url, start, end, names);
}

/** The service `text[start, end)` (a host) names, read in place: only the result and a namespace are sliced out. */
function nameIn(text: string, start: number, end: number, names: ServiceNames): string | undefined {
  // An absolute name (`orders.`) is the same name: drop one trailing dot.
  if (end > start && text.charCodeAt(end - 1) === 46 /* . */) end--;
  let first = text.indexOf(".", start);
  if (first === -1 || first > end) first = end;
  // `[::1]` (an IPv6 literal) fails here on its `[`; so does an empty or all-digit label.
  if (!isName(text, start, first)) return undefined;
  const svc = text.slice(start, first);
  if (first === end) return svc;
  let second = text.indexOf(".", first + 1);
  if (second === -1 || second > end) second = end;
  const ns = text.slice(first + 1, second);
  if (!names.namespaces.has(ns)) return undefined;
  // The URL parser serializes any host whose last label is numeric as IPv4, so `svc.<digits>`
  // is an address, never `svc.ns`.
  if (second === end) return isDigits(text, first + 1, second) ? undefined : svc;
  const rest = second + 1;
  const length = end - rest;
  if (length === 3 && text.startsWith("svc", rest)) return svc;
  if (length === names.svcDomain.length && text.startsWith(names.svcDomain, rest)) return svc;
  return undefined;
}

/**
 * True when `text[start, end)` can be a service's name: a DNS label's characters (what the
 * config's `NameSchema` allows, in lower case), at most 63, and not all digits (an IPv4
 * address's last label).
 */
function isName(text: string, start: number, end: number): boolean {
  if (end <= start || end - start > 63) return false;
  let digits = true;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    const digit = c >= 48 && c <= 57;
    if (!digit && !(c >= 97 && c <= 122) && c !== 45 /* - */) return false;
    if (!digit) digits = false;
  }
  return !digits;
}

/** True when `text[start, end)` is all digits. */
function isDigits(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return end > start;
}
