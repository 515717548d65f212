/**
 * Reading the authorities an app sends the sidecar: a `Host` header (RFC 9112 section 3.2:
 * `uri-host [":" port]`) and a `CONNECT` target (RFC 9110 section 9.3.6: authority-form,
 * `host:port`). Both are checked character by character against RFC 3986's grammar before
 * they go anywhere near a URL, so `Host: orders/x` is refused rather than turned into a path.
 */

/**
 * True when `value` is a valid `Host` value: an RFC 3986 host (an IP literal in brackets, or
 * a reg-name / IPv4 of unreserved, sub-delims and percent-encoded octets; no userinfo) and an
 * optional `:port` of digits. A `/`, `?`, `#`, `@`, space or any other character fails.
 */
export function isHostValue(value: string): boolean {
  const end = hostEnd(value);
  if (end <= 0) return false;
  if (end === value.length) return true;
  if (value.charCodeAt(end) !== 58 /* : */) return false;
  for (let i = end + 1; i < value.length; i++) if (!isDigit(value.charCodeAt(i))) return false;
  return true;
}

/** A `CONNECT` target, read: the host as the URL parser serializes it, and the port. */
export type ConnectTarget = { ok: true; hostname: string; port: number } | { ok: false; error: string };

/**
 * Reads a `CONNECT` request target. It must be authority-form with a port (`orders:80`,
 * `[fd00::1]:8080`); the host comes back normalized by the URL parser (lower case, IDNA,
 * IPv4 in dotted decimal) so the naming rule reads it as it reads any request's URL.
 */
export function parseConnectTarget(target: string): ConnectTarget {
  const malformed = { ok: false, error: "a CONNECT target is host:port (RFC 9110 section 9.3.6), e.g. CONNECT orders:80" } as const;
  const end = hostEnd(target);
  if (end <= 0 || target.charCodeAt(end) !== 58 /* : */ || end + 1 === target.length || !isHostValue(target)) return malformed;
  const digits = target.slice(end + 1);
  const port = digits.length <= 5 ? Number(digits) : NaN;
  if (!(port >= 1 && port <= 65535)) return { ok: false, error: "a CONNECT target's port is between 1 and 65535" };
  const url = URL.parse(`http://${target.slice(0, end)}/`);
  if (url === null) return malformed;
  return { ok: true, hostname: url.hostname, port };
}

/** The hostname `value` (a valid `Host` value) names, as the URL parser serializes it; undefined when it names none. */
export function hostnameOf(value: string): string | undefined {
  if (!isHostValue(value)) return undefined;
  return URL.parse(`http://${value.slice(0, hostEnd(value))}/`)?.hostname;
}

/**
 * Where the host part of `value` ends (the index of `:` or the end), or -1 when it holds a
 * character RFC 3986 does not allow in a host. An IP literal is `[` hex digits, `:` and `.` `]`.
 */
function hostEnd(value: string): number {
  if (value.charCodeAt(0) === 91 /* [ */) {
    const close = value.indexOf("]");
    if (close < 3) return -1;
    for (let i = 1; i < close; i++) {
      const c = value.charCodeAt(i);
      if (!isHex(c) && c !== 58 /* : */ && c !== 46 /* . */) return -1;
    }
    return close + 1 === value.length || value.charCodeAt(close + 1) === 58 ? close + 1 : -1;
  }
  let i = 0;
  for (; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 58 /* : */) break;
    if (c === 37 /* % */) {
      if (!isHex(value.charCodeAt(i + 1)) || !isHex(value.charCodeAt(i + 2))) return -1;
      i += 2;
      continue;
    }
    if (!REG_NAME[c]) return -1;
  }
  return i;
}

/** RFC 3986 reg-name characters, less `%` (checked with its two hex digits): unreserved and sub-delims. */
const REG_NAME: readonly boolean[] = (() => {
  const table: boolean[] = [];
  for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=") table[c.charCodeAt(0)] = true;
  return table;
})();

const isDigit = (c: number) => c >= 48 && c <= 57;
const isHex = (c: number) => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
