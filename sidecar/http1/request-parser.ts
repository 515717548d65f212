/**
 * An HTTP/1.1 request parser for a server: request line (origin-form and absolute-form
 * targets with llhttp's URL grammar), fields, and the body framed by `Content-Length` or
 * chunked coding (RFC 9112 section 6.3: a request without either has none), with llhttp's
 * strict-mode refusals and its request-only rules (a transfer coding other than `chunked`
 * last is refused).
 */
import { AUTHORITY_CHAR, SP, URL_CHAR } from "./chars.ts";
import { F_CHUNKED, F_CONNECTION_CLOSE, F_CONNECTION_KEEP_ALIVE, F_CONNECTION_UPGRADE, F_CONTENT_LENGTH, F_TRANSFER_ENCODING, F_UPGRADE, latin1 } from "./fields.ts";
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, MessageParser } from "./message-parser.ts";
import type { ParserLimits } from "./message-parser.ts";

/** What a request parser reports; each runs synchronously inside `execute` or `finish`. */
export interface RequestSink {
  /** A request's head (its version is the parser's `major` and `minor`). `target` as sent (origin or absolute form); `fields` flat, names as sent. */
  onRequest(method: string, target: string, fields: string[]): void;
  /** A slice of the body (a view of the input). */
  onBody(chunk: Buffer): void;
  /** The request ended; `trailers` flat, empty without a trailer section. */
  onComplete(trailers: string[]): void;
}

/**
 * The methods taken: llhttp's for HTTP/1.x, which Node lists as `http.METHODS`, but
 * `CONNECT` (this server tunnels nothing) and `PRI` (HTTP/2's preface).
 */
export const METHODS = new Set([
  "ACL", "BIND", "CHECKOUT", "COPY", "DELETE", "GET", "HEAD", "LINK", "LOCK", "M-SEARCH", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MOVE",
  "NOTIFY", "OPTIONS", "PATCH", "POST", "PROPFIND", "PROPPATCH", "PURGE", "PUT", "QUERY", "REBIND", "REPORT", "SEARCH", "SOURCE", "SUBSCRIBE",
  "TRACE", "UNBIND", "UNLINK", "UNLOCK", "UNSUBSCRIBE",
]);

const LONGEST_METHOD = Math.max(...[...METHODS].map((m) => m.length));

const isAlpha = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const digit = (c: number) => c - 0x30;

/**
 * Where a request target ends (at the SP before the version), or -1 when it breaks llhttp's
 * URL grammar: `/` or `*` then path, query, fragment; or `scheme://authority` then the same.
 */
function targetEnd(buf: Uint8Array, i: number, e: number): number {
  let c = buf[i]!;
  if (isAlpha(c)) {
    do c = buf[++i]!;
    while (i < e && isAlpha(c));
    if (i + 2 >= e || c !== 0x3a || buf[i + 1] !== 0x2f || buf[i + 2] !== 0x2f) return -1;
    i += 3;
    for (; i < e; i++) {
      c = buf[i]!;
      if (AUTHORITY_CHAR[c] === 1) continue;
      // llhttp refuses `@@` only: an `@` right after another.
      if (c === 0x40 && buf[i - 1] !== 0x40) continue;
      if (c === 0x2f) break;
      if (c === 0x3f) break;
      return c === SP ? i : -1;
    }
    if (i === e) return -1;
  } else if (c !== 0x2f && c !== 0x2a) return -1;
  // Path, `?query`, `#fragment`: llhttp takes `?` and `#` anywhere after the first of them.
  for (i++; i < e; i++) {
    c = buf[i]!;
    if (URL_CHAR[c] === 1 || c === 0x3f || c === 0x23) continue;
    return c === SP ? i : -1;
  }
  return -1; // no version follows: an HTTP/0.9 request, not taken
}

/**
 * Parses the requests of one connection in turn: `execute` the bytes as they come; once
 * `state` is `S_DONE`, `restart()` before the next. After a request that ends the
 * connection (`Connection: close`, or HTTP/1.0 without keep-alive), bytes other than CR and
 * LF are refused, as llhttp does.
 */
export class RequestParser extends MessageParser {
  protected override readonly requests = true;
  method = "";
  target = "";
  major = 1;
  minor = 1;
  private readonly sink: RequestSink;

  constructor(sink: RequestSink, limits?: ParserLimits) {
    super(limits);
    this.sink = sink;
  }

  /**
   * Whether the connection stays open after this request, from its header section, as
   * llhttp's `llhttp_should_keep_alive` tells Node's server; never after an `Upgrade`
   * request, which this server answers as a plain request.
   */
  get keepAlive(): boolean {
    return this.keeps(this.head.flags);
  }

  private keeps(flags: number): boolean {
    if ((flags & (F_UPGRADE | F_CONNECTION_UPGRADE)) === (F_UPGRADE | F_CONNECTION_UPGRADE)) return false;
    return this.major > 0 && this.minor > 0 ? (flags & F_CONNECTION_CLOSE) === 0 : (flags & F_CONNECTION_KEEP_ALIVE) !== 0;
  }

  /** Whether the request asked for `100-continue` (looked up once the head is in). */
  expectsContinue(): boolean {
    const fields = this.head.fields;
    for (let i = 0; i < fields.length; i += 2) if (fields[i]!.length === 6 && fields[i]!.toLowerCase() === "expect") return fields[i + 1]!.toLowerCase() === "100-continue";
    return false;
  }

  protected startLine(buf: Uint8Array, s: number, e: number): string | undefined {
    let i = s;
    while (i < e && buf[i] !== SP) i++;
    const method = latin1(buf, s, i);
    if (!METHODS.has(method)) return "unknown method";
    while (i < e && buf[i] === SP) i++;
    if (i === e) return "no request target";
    const end = targetEnd(buf, i, e);
    if (end < 0) return "invalid request target";
    const target = latin1(buf, i, end);
    i = end;
    while (i < e && buf[i] === SP) i++;
    // "HTTP/" DIGIT "." DIGIT, then the line's end
    if (e - i !== 8 || buf[i] !== 0x48 || buf[i + 1] !== 0x54 || buf[i + 2] !== 0x54 || buf[i + 3] !== 0x50 || buf[i + 4] !== 0x2f || buf[i + 6] !== 0x2e) return "invalid HTTP version";
    const major = digit(buf[i + 5]!);
    const minor = digit(buf[i + 7]!);
    if (!((major === 1 && (minor === 0 || minor === 1)) || (major === 0 && minor === 9) || (major === 2 && minor === 0))) return "invalid HTTP version";
    this.method = method;
    this.target = target;
    this.major = major;
    this.minor = minor;
    return undefined;
  }

  /** A method still arriving must be upper-case letters and `-`, at most as long as the longest known, as llhttp checks it byte by byte. */
  protected override startLinePrefix(partial: Buffer): boolean {
    const space = partial.indexOf(SP);
    const end = space < 0 ? partial.length : space;
    if (end > LONGEST_METHOD || end === 0) return space < 0 && end <= LONGEST_METHOD;
    for (let k = 0; k < end; k++) {
      const c = partial[k]!;
      if (!((c >= 0x41 && c <= 0x5a) || c === 0x2d)) return false;
    }
    return space < 0 || METHODS.has(latin1(partial, 0, end));
  }

  protected headersDone(): number | string {
    const flags = this.head.flags;
    let framing = BODY_NONE;
    if (flags & F_CHUNKED) framing = BODY_CHUNKED;
    else if (flags & F_TRANSFER_ENCODING) return "a request's last transfer coding must be chunked";
    else if (flags & F_CONTENT_LENGTH && this.head.contentLength > 0) framing = BODY_LENGTH;
    this.sink.onRequest(this.method, this.target, this.head.fields);
    return framing;
  }

  protected body(chunk: Buffer): void {
    this.sink.onBody(chunk);
  }

  protected complete(trailers: string[]): void {
    // A `Connection: close` in the trailers ends the connection too: llhttp refuses what follows.
    this.closed = !this.keeps(this.head.flags | this.trailers.flags);
    this.sink.onComplete(trailers);
  }
}
