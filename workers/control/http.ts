/**
 * Reading requests at the control API's edge: bodies with a size cap and a nesting cap,
 * zod validation into `bad-request` with every issue, version preconditions (`If-Match`,
 * `If-None-Match`) and the `ETag` of a version. Everything here fails with a `MeshError`.
 */
import type { z } from "zod";
import { validate } from "../../src/core/config/index.ts";
import { MeshError } from "../../src/core/errors.ts";
import type { Expectation } from "./store/index.ts";
import { DEFAULT_DRAIN_IDLE_MS, DEFAULT_DRAIN_TIME_MS, DEFAULT_MAX_DRAIN_BYTES, MAX_ISSUES } from "./limits.ts";

/** The `ETag` of a store version: a strong tag holding the number, e.g. `"42"`. */
export function etag(version: number): string {
  return `"${version}"`;
}

/** Validates `input` with `schema`, or throws `bad-request` listing every issue (capped). */
export function parse<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const result = validate(schema, input);
  if (result.ok) return result.value;
  const issues = result.issues.slice(0, MAX_ISSUES);
  const more = result.issues.length > issues.length ? ` (first ${issues.length} of ${result.issues.length} shown)` : "";
  throw new MeshError("bad-request", `${what} is not valid${more}`, { issues });
}

/** Options of `readJson`. */
export interface ReadJsonOptions {
  maxBytes: number;
  maxDepth: number;
}

/**
 * The request's body as JSON: 413 `payload-too-large` past `maxBytes` (by `content-length`
 * or while streaming), 400 `bad-request` for an empty body, bad UTF-8, bad JSON or nesting
 * deeper than `maxDepth`. The parser's message is not echoed: it quotes the body, which may
 * hold a secret. An oversized body is drained (see `drainBody`) before the error is thrown.
 */
export async function readJson(request: Request, options: ReadJsonOptions): Promise<unknown> {
  if (declaredLength(request) > options.maxBytes) {
    await drainBody(request);
    throw new MeshError("payload-too-large", `the body is larger than ${options.maxBytes} bytes`);
  }
  const bytes = await readCapped(request, options.maxBytes);
  if (bytes.length === 0) throw new MeshError("bad-request", "the request needs a JSON body");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new MeshError("bad-request", "the body is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MeshError("bad-request", "the body is not valid JSON");
  }
  if (depthOf(value, options.maxDepth) > options.maxDepth) throw new MeshError("bad-request", `the body nests deeper than ${options.maxDepth} levels`);
  return value;
}

/** The request's `content-length` as a number, or -1 when absent or not a plain number. */
export function declaredLength(request: Request): number {
  const declared = request.headers.get("content-length");
  return declared !== null && /^\d{1,15}$/.test(declared) ? Number(declared) : -1;
}

/** Bounds of `drainBody`. */
export interface DrainBounds {
  maxBytes: number;
  idleMs: number;
  timeMs: number;
}

const DRAIN: DrainBounds = { maxBytes: DEFAULT_MAX_DRAIN_BYTES, idleMs: DEFAULT_DRAIN_IDLE_MS, timeMs: DEFAULT_DRAIN_TIME_MS };

/**
 * Reads and drops what is left of a request body nobody will read, so the client has finished
 * sending by the time the answer goes out and reads it, instead of a broken pipe (nginx's
 * lingering close). Bounded: a body declared larger than `maxBytes` is not read at all, and
 * reading stops past `maxBytes`, after `idleMs` without data, or after `timeMs` in all; the
 * stream is then cancelled. Never throws. A body already read is left alone.
 */
export async function drainBody(request: Request, bounds: DrainBounds = DRAIN): Promise<void> {
  if (!request.body || request.bodyUsed) return;
  const reader = request.body.getReader();
  if (declaredLength(request) > bounds.maxBytes) {
    await reader.cancel().catch(() => {});
    return;
  }
  await discard(reader, 0, bounds);
}

async function discard(reader: ReadableStreamDefaultReader<Uint8Array>, already: number, bounds: DrainBounds = DRAIN): Promise<void> {
  let total = already;
  const until = Date.now() + bounds.timeMs;
  try {
    for (;;) {
      const wait = Math.min(bounds.idleMs, until - Date.now());
      if (wait <= 0) break;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), wait)));
      const next = await Promise.race([reader.read(), late]);
      clearTimeout(timer);
      if (next === "late") break;
      if (next.done) return;
      total += next.value.byteLength;
      if (total > bounds.maxBytes) break;
    }
  } catch {
    return;
  }
  await reader.cancel().catch(() => {});
}

async function readCapped(request: Request, maxBytes: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await discard(reader, total);
      throw new MeshError("payload-too-large", `the body is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** How deep `value` nests (a scalar is 0), walking iteratively and stopping once past `limit`. */
export function depthOf(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== "object") continue;
    const level = depth + 1;
    if (level > deepest) deepest = level;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (child !== null && typeof child === "object") stack.push([child, level]);
    }
  }
  return deepest;
}

/**
 * One entity-tag (RFC 9110 section 8.8.3): `"opaque"` or `W/"opaque"`, the opaque part of
 * visible ASCII but `"` (etagc; obs-text is left out: our tags are digits), surrounded by
 * optional whitespace.
 */
const ENTITY_TAG = /^[ \t]*(W\/)?"([\x21\x23-\x7e]*)"[ \t]*$/;

/** A store version as our `ETag`s write it: digits without a leading zero. */
const VERSION = /^(?:0|[1-9]\d{0,14})$/;

/** One parsed entity-tag: whether it is weak, and the version it names (undefined: none of ours). */
export type ParsedTag = { ok: true; weak: boolean; version: number | undefined } | { ok: false };

/** Parses one entity-tag; a malformed one (an unbalanced quote, no quotes, a bare `W/`) is `ok: false`. */
export function parseEntityTag(text: string): ParsedTag {
  const match = ENTITY_TAG.exec(text);
  if (!match) return { ok: false };
  const opaque = match[2]!;
  return { ok: true, weak: match[1] !== undefined, version: VERSION.test(opaque) ? Number(opaque) : undefined };
}

const IF_MATCH_SYNTAX = 'If-Match must be one entity tag such as "7" (quotes included), or *';

/**
 * The precondition of a write: `If-Match: "7"` (the version must be 7), `If-Match: *` (it
 * must exist), `If-None-Match: *` (it must not), else the body's `version` (0 meaning "must
 * not exist"), else none. A header and a body version that disagree are a `bad-request`.
 *
 * If-Match follows RFC 9110 section 13.1.1: a malformed value (`"2` with an unbalanced
 * quote, a bare `2`) is 400 `bad-request`; a well-formed tag compares strongly, so a weak
 * tag (`W/"2"`) or one that names no version (`"abc"`) can never match: 412
 * `precondition-failed`. A list of tags is refused (400): a write names one version.
 */
export function expectationOf(headers: Headers, bodyVersion: number | undefined): Expectation {
  const ifMatch = headers.get("if-match");
  const ifNoneMatch = headers.get("if-none-match");
  let fromHeader: Expectation;
  if (ifMatch !== null && ifNoneMatch !== null) throw new MeshError("bad-request", "send If-Match or If-None-Match, not both");
  if (ifMatch !== null) {
    if (ifMatch.trim() === "*") fromHeader = "present";
    else {
      const tag = parseEntityTag(ifMatch);
      if (!tag.ok) throw new MeshError("bad-request", IF_MATCH_SYNTAX, { issues: [{ path: ["if-match"], message: "not one entity tag" }] });
      if (tag.weak) throw new MeshError("precondition-failed", "If-Match compares strongly (RFC 9110 section 13.1.1): a weak tag never matches; send the ETag as given");
      if (tag.version === undefined) throw new MeshError("precondition-failed", "If-Match names no version of this store");
      fromHeader = { version: tag.version };
    }
  } else if (ifNoneMatch !== null) {
    if (ifNoneMatch.trim() !== "*") throw new MeshError("bad-request", "a write takes If-None-Match: * only");
    fromHeader = "absent";
  }
  const fromBody: Expectation = bodyVersion === undefined ? undefined : bodyVersion === 0 ? "absent" : { version: bodyVersion };
  if (fromHeader !== undefined && fromBody !== undefined && JSON.stringify(fromHeader) !== JSON.stringify(fromBody)) {
    throw new MeshError("bad-request", "If-Match and the body's version disagree");
  }
  return fromHeader ?? fromBody;
}

/**
 * The versions a reader holds, from `If-None-Match` (`"7"`, a list, or `*` meaning "whatever
 * is current"): null when absent. Comparison is weak (RFC 9110 section 13.1.2), so `W/"7"`
 * holds version 7; a tag that is malformed or names no version matches nothing.
 */
export function versionsOf(header: string | null): number[] | "any" | null {
  if (header === null) return null;
  if (header.trim() === "*") return "any";
  const versions: number[] = [];
  for (const part of header.split(",").slice(0, 32)) {
    const tag = parseEntityTag(part);
    if (tag.ok && tag.version !== undefined) versions.push(tag.version);
  }
  return versions;
}

/** A JSON response with `cache-control: no-store` (control-plane answers are never cached). */
export function json(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}
