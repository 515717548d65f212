/**
 * Hop-by-hop headers (RFC 9110 section 7.6.1): they describe one connection, so a proxy
 * drops them in both directions and the next hop's own framing replaces them.
 */

/**
 * The names a proxy never forwards: the RFC's list, the de-facto `proxy-connection` and
 * `keep-alive`, `proxy-authorization` (meant for this proxy), and `expect`, which Node's
 * server has already answered with `100 Continue` and undici refuses to send.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "expect",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * True when header `name` (lower-case) must not be forwarded. `connection` may name more:
 * `extra` holds those names, lower-case, when the message had a `connection` header.
 */
export function isHopByHop(name: string, extra?: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(name) || (extra !== undefined && extra.has(name));
}

/** The header names a `connection` value lists (`close, x-foo` → {close, x-foo}), lower-case. */
export function connectionTokens(value: string | undefined | null): ReadonlySet<string> | undefined {
  if (!value) return undefined;
  const names = value
    .split(",")
    .map((token) => token.trim().toLowerCase())
    .filter((token) => token !== "" && token !== "close" && token !== "keep-alive");
  return names.length ? new Set(names) : undefined;
}
