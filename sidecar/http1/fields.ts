/**
 * Header sections of HTTP/1.1 messages (RFC 9112 section 5), read one line at a time: the
 * lines themselves, each field checked byte by byte, and the framing facts llhttp draws from
 * `Content-Length`, `Transfer-Encoding` and `Connection` in its default (strict) mode.
 */
import { COLON, COMMA, CR, FIELD_VALUE, HT, LF, LIST_ELEMENT, SP, TOKEN } from "./chars.ts";

/**
 * Most bytes in a header section (start line, fields, line ends): 16 KiB, Node's default
 * `--max-http-header-size` (`maxHeaderSize`). Node counts only the names, values and the
 * status text or target against it; this counts every byte, so it is slightly stricter.
 */
export const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;

/** Most fields in a header section: 100, Envoy's `max_headers_count` default. */
export const DEFAULT_MAX_HEADER_COUNT = 100;

/** A `Transfer-Encoding` field with a non-empty value was seen. */
export const F_TRANSFER_ENCODING = 1;
/** The last `Transfer-Encoding` value ends with `chunked`. */
export const F_CHUNKED = 2;
/** A `Content-Length` field was seen (its value is `contentLength`). */
export const F_CONTENT_LENGTH = 4;
/** `Connection: close` (or `Proxy-Connection`). */
export const F_CONNECTION_CLOSE = 8;
/** `Connection: keep-alive` (or `Proxy-Connection`). */
export const F_CONNECTION_KEEP_ALIVE = 16;
/** `Connection: upgrade` (or `Proxy-Connection`). */
export const F_CONNECTION_UPGRADE = 32;
/** An `Upgrade` field. */
export const F_UPGRADE = 64;
/** The trailer section named a framing field: the connection is not reused. */
export const F_TRAILER_FRAMING = 128;

/** The largest `Content-Length` or chunk size taken: lengths are kept in doubles. */
export const MAX_LENGTH = Number.MAX_SAFE_INTEGER;

/** What a header section has told so far; reset per message. */
export class FieldState {
  /** Names and values, flat, as latin1 strings: names as sent, values without surrounding whitespace. */
  fields: string[] = [];
  flags = 0;
  contentLength = 0;
  /** Bytes of the section so far, against the size limit. */
  size = 0;

  reset(): void {
    this.fields = [];
    this.flags = 0;
    this.contentLength = 0;
    this.size = 0;
  }
}

/** Lower-cases an ASCII letter byte. */
const lower = (c: number) => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

/** Whether `buf[s..s+name.length)` is `name` (lower-case ASCII), case-insensitively. */
function named(buf: Uint8Array, s: number, e: number, name: string): boolean {
  if (e - s !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (lower(buf[s + i]!) !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * Whether a `Transfer-Encoding` value (`buf[s..e)`, leading whitespace skipped, trailing
 * kept) ends in `chunked`, decided as llhttp's `header_value_te_*` states do: the last
 * comma-separated element must be `chunked`, case-insensitive, followed by spaces only.
 * 1 when it does, 0 when not, -1 when a request's `chunked` is followed by another coding
 * (llhttp refuses that in requests: chunked must be the last coding, once).
 */
function endsChunked(buf: Uint8Array, s: number, e: number, request: boolean): number {
  let i = s;
  for (;;) {
    if (e - i >= 7 && lower(buf[i]!) === 0x63 && named(buf, i, i + 7, "chunked")) {
      let j = i + 7;
      while (j < e && buf[j] === SP) j++;
      if (j === e) return 1;
      if (request && buf[j] === COMMA) return -1;
      i = j;
    }
    while (i < e && LIST_ELEMENT[buf[i]!] === 1) i++;
    if (i === e || buf[i] !== COMMA) return 0;
    i++;
    while (i < e && (buf[i] === SP || buf[i] === HT)) i++;
  }
}

/** Applies the tokens of a `Connection` value to `state.flags`. */
function connectionTokens(buf: Uint8Array, s: number, e: number, state: FieldState): void {
  let i = s;
  while (i <= e) {
    let j = i;
    while (j < e && buf[j] !== COMMA) j++;
    let a = i;
    let b = j;
    while (a < b && (buf[a] === SP || buf[a] === HT)) a++;
    while (b > a && (buf[b - 1] === SP || buf[b - 1] === HT)) b--;
    if (named(buf, a, b, "close")) state.flags |= F_CONNECTION_CLOSE;
    else if (named(buf, a, b, "keep-alive")) state.flags |= F_CONNECTION_KEEP_ALIVE;
    else if (named(buf, a, b, "upgrade")) state.flags |= F_CONNECTION_UPGRADE;
    i = j + 1;
  }
}

/**
 * Reads one field line `buf[s..e)` (without its CRLF) into `state`. Returns undefined, or
 * why the line is refused: a name that is not a token or is followed by whitespace, a line
 * starting with whitespace (obs-fold included), a byte outside HTAB/SP/VCHAR/obs-text in the
 * value, a `Content-Length` that is not digits or comes twice, an empty
 * `Transfer-Encoding`, `Content-Length` with `Transfer-Encoding`; in a request, any coding
 * after `chunked`. In a trailer section, `Content-Length` is refused as llhttp does.
 */
export function parseField(buf: Uint8Array, s: number, e: number, state: FieldState, trailer: boolean, request = false): string | undefined {
  let i = s;
  while (i < e && TOKEN[buf[i]!] === 1) i++;
  if (i === s) return buf[s] === SP || buf[s] === HT ? "whitespace at the start of a field line (obs-fold)" : "invalid character in a field name";
  if (i === e || buf[i] !== COLON) return buf[i] === SP || buf[i] === HT ? "whitespace between a field name and the colon" : "invalid character in a field name";
  const nameEnd = i;
  i++;
  while (i < e && (buf[i] === SP || buf[i] === HT)) i++;
  const valueStart = i;
  for (let k = i; k < e; k++) if (FIELD_VALUE[buf[k]!] !== 1) return "invalid character in a field value";
  let valueEnd = e;
  while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HT)) valueEnd--;

  const nameLength = nameEnd - s;
  if (nameLength === 14 && named(buf, s, nameEnd, "content-length")) {
    if (state.flags & F_TRANSFER_ENCODING || trailer) return "Content-Length with Transfer-Encoding";
    if (state.flags & F_CONTENT_LENGTH) return "duplicate Content-Length";
    if (valueEnd === valueStart) return "empty Content-Length";
    let n = 0;
    for (let k = valueStart; k < valueEnd; k++) {
      const d = buf[k]! - 0x30;
      if (d < 0 || d > 9) return "invalid Content-Length";
      n = n * 10 + d;
      if (n > MAX_LENGTH) return "Content-Length too large";
    }
    state.contentLength = n;
    state.flags |= F_CONTENT_LENGTH;
  } else if (nameLength === 17 && named(buf, s, nameEnd, "transfer-encoding")) {
    if (state.flags & F_CONTENT_LENGTH) return "Transfer-Encoding with Content-Length";
    if (valueStart === e) return "empty Transfer-Encoding";
    // A request's body is chunked by the time its trailers come: any coding named there follows chunked.
    if (trailer && request) return "a transfer coding after chunked";
    if (trailer) state.flags |= F_TRAILER_FRAMING;
    else {
      if (request && state.flags & F_CHUNKED) return "a transfer coding after chunked";
      state.flags |= F_TRANSFER_ENCODING;
      const chunked = endsChunked(buf, valueStart, e, request);
      if (chunked < 0) return "a transfer coding after chunked";
      if (chunked === 1) state.flags |= F_CHUNKED;
      else state.flags &= ~F_CHUNKED;
    }
  } else if ((nameLength === 10 && named(buf, s, nameEnd, "connection")) || (nameLength === 16 && named(buf, s, nameEnd, "proxy-connection"))) {
    connectionTokens(buf, valueStart, valueEnd, state);
    if (trailer) state.flags |= F_TRAILER_FRAMING;
  } else if (nameLength === 7 && named(buf, s, nameEnd, "upgrade")) {
    state.flags |= F_UPGRADE;
  }
  state.fields.push(latin1(buf, s, nameEnd), latin1(buf, valueStart, valueEnd));
  return undefined;
}

/** `buf[s..e)` as a latin1 string, without copying the bytes first. */
export const latin1 = (buf: Uint8Array, s: number, e: number): string => (buf as Buffer).toString("latin1", s, e);

/**
 * Splits a header section into lines as they arrive, across chunks: each line must end in
 * CRLF (a bare LF is refused, as llhttp's strict mode does; a CR inside a line is left to
 * the line's own checks, which refuse it), and the section is bounded in bytes. One partial
 * line is kept between chunks, copied.
 */
export class LineReader {
  /** The bytes of the line last returned by `next`: `buf[start..end)`, without CRLF. */
  buf: Uint8Array = EMPTY;
  start = 0;
  end = 0;
  private pending: Buffer | null = null;

  reset(): void {
    this.pending = null;
  }

  /** Whether a partial line is held. */
  get partial(): boolean {
    return this.pending !== null;
  }

  /** The partial line held, if any (for early checks of a start line). */
  get held(): Buffer | null {
    return this.pending;
  }

  /**
   * The next line of `chunk` from `offset`: returns the offset after its LF and sets
   * `buf/start/end`; or -1 when the chunk ends inside a line (kept for the next call); or
   * -2 on a bare LF, or a section over `state.size` limit (`max`).
   */
  next(chunk: Buffer, offset: number, state: FieldState, max: number): number {
    const lf = chunk.indexOf(LF, offset);
    const pending = this.pending;
    if (lf < 0) {
      const length = (pending === null ? 0 : pending.length) + chunk.length - offset;
      if (state.size + length > max) {
        state.size += length;
        return -2;
      }
      this.pending = pending === null ? Buffer.from(chunk.subarray(offset)) : Buffer.concat([pending, chunk.subarray(offset)]);
      return -1;
    }
    let buf: Uint8Array = chunk;
    let start = offset;
    let end = lf;
    if (pending !== null) {
      buf = Buffer.concat([pending, chunk.subarray(offset, lf)]);
      start = 0;
      end = buf.length;
      this.pending = null;
    }
    state.size += end - start + 1;
    if (state.size > max) return -2;
    if (end === start || buf[end - 1] !== CR) return -2;
    end--;
    this.buf = buf;
    this.start = start;
    this.end = end;
    return lf + 1;
  }
}

const EMPTY = new Uint8Array(0);
