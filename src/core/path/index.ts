/**
 * Request paths in one normal form, so that routes and policies judge the path the app will
 * see: RFC 3986 normalization (percent-encoded unreserved characters decoded, the hex of the
 * other escapes upper-cased, dot segments removed) plus merged slashes (Envoy's
 * `merge_slashes`), and a refusal for what cannot be normalized safely.
 */
import { MeshError } from "../errors.ts";
import { own, type MeshRequest } from "../fetch.ts";

/** A path in normal form, or why the path is refused. */
export type PathResult = { ok: true; path: string } | { ok: false; reason: string };

/**
 * Normalizes a request path (the URL's path, without its query), in this order:
 *
 * 1. percent-escapes are checked and rewritten: `%XX` of an unreserved character
 *    (RFC 3986: `A-Z a-z 0-9 - . _ ~`) becomes the character, the hex of every other escape
 *    is upper-cased (`%3b` → `%3B`); nothing is decoded twice (`%252F` stays `%252F`);
 * 2. empty segments are dropped, so runs of `/` become one (`//admin` → `/admin`), a
 *    trailing `/` kept;
 * 3. dot segments are removed as RFC 3986 section 5.2.4 does, the encoded ones too
 *    (`/a/%2e%2e/b` → `/b`), never above the root (`/../a` → `/a`).
 *
 * Refused, with the reason: an encoded `/` or `\` (`%2F`, `%5C`: the app may decode it into
 * a separator the policy never saw; Envoy's `path_with_escaped_slashes_action:
 * REJECT_REQUEST`), a raw `\` (some servers take it for `/`), a control character raw or
 * encoded (`%00`…`%1F`, `%7F`), a `%` not followed by two hex digits, a dot segment carrying
 * `;` parameters (`/..;/admin`, which Tomcat-style servers resolve as `..`), and a path not
 * starting with `/`. Letter case is kept: paths are case-sensitive (RFC 3986).
 *
 * Most paths need none of this; one scan finds that out and returns the path as given.
 */
export function normalizePath(path: string): PathResult {
  if (path.charCodeAt(0) !== SLASH) return { ok: false, reason: "does not start with '/'" };
  if (isNormal(path)) return { ok: true, path };
  let decoded = "";
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === BACKSLASH) return { ok: false, reason: "has a '\\', which some servers take for '/'" };
    if (c < 0x20 || c === 0x7f) return { ok: false, reason: "has a control character" };
    if (c !== PERCENT) {
      decoded += path[i];
      continue;
    }
    const high = hexValue(path.charCodeAt(i + 1));
    const low = hexValue(path.charCodeAt(i + 2));
    if (high < 0 || low < 0) return { ok: false, reason: "has a '%' that is not followed by two hex digits" };
    const byte = high * 16 + low;
    if (byte === SLASH || byte === BACKSLASH) return { ok: false, reason: `has an encoded '${byte === SLASH ? "/" : "\\"}' (%${byte === SLASH ? "2F" : "5C"}), which the mesh refuses rather than guess what the app makes of it` };
    if (byte < 0x20 || byte === 0x7f) return { ok: false, reason: "has an encoded control character" };
    decoded += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[high]}${HEX[low]}`;
    i += 2;
  }
  const segments: string[] = [];
  const parts = decoded.split("/");
  // parts[0] is the empty string before the leading "/".
  let trailingSlash = false;
  for (let i = 1; i < parts.length; i++) {
    const segment = parts[i]!;
    const last = i === parts.length - 1;
    if (segment === "" || segment === ".") {
      trailingSlash = last;
      continue;
    }
    if (segment === "..") {
      segments.pop();
      trailingSlash = last;
      continue;
    }
    if (/^\.\.?;/.test(segment)) return { ok: false, reason: "has a dot segment with ';' parameters ('..;'), which some servers resolve as '..'" };
    segments.push(segment);
    trailingSlash = false;
  }
  if (segments.length === 0) return { ok: true, path: "/" };
  return { ok: true, path: `/${segments.join("/")}${trailingSlash ? "/" : ""}` };
}

/**
 * `request`, or a copy addressed to the same URL with its path normalized (`normalizePath`),
 * when normalizing changed it; the query is kept as it is. The copy keeps the method,
 * headers, body, signal and the mesh's metadata, and is the stack's own (`own`). A path
 * that is refused throws `MeshError("bad-request")` (400), whose message gives the reason
 * but not the path (a path may carry a secret).
 *
 * The proxy calls this first on both sides, so authorization, route matching and the app
 * all see the same path.
 */
export function normalizeRequest(request: MeshRequest): MeshRequest {
  const url = request.url;
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return request;
  let end = url.length;
  for (let i = start; i < end; i++) {
    const c = url.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) end = i;
  }
  const path = url.slice(start, end);
  const normalized = normalizePath(path);
  if (!normalized.ok) throw new MeshError("bad-request", `the request path ${normalized.reason}`);
  if (normalized.path === path) return request;
  // The stack's own request (a light copy of a caller's), now addressed to the normal path.
  const owned = own(request);
  owned.url = `${url.slice(0, start)}${normalized.path}${url.slice(end)}`;
  return owned;
}

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const PERCENT = 0x25;
const DOT = 0x2e;
const SEMICOLON = 0x3b;
const HEX = "0123456789ABCDEF";

/**
 * Whether `path` is already in normal form, judged in one pass: no `%`, `\`, `;` or control
 * character, no `//`, and no segment starting with `.` (which covers `/.` and `/..`).
 * False sends the path through the full normalization, which decides.
 */
function isNormal(path: string): boolean {
  let previous = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT || c === BACKSLASH || c === SEMICOLON || c < 0x20 || c === 0x7f) return false;
    if (previous === SLASH && (c === SLASH || c === DOT)) return false;
    previous = c;
  }
  return true;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** RFC 3986 section 2.3: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39) || byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e
  );
}
