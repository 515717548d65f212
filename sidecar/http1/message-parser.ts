/**
 * What HTTP/1.1 requests and responses share on the wire after their start line: the header
 * section, and the body framed by `Content-Length`, chunked coding (extensions, trailers) or
 * the connection's end (RFC 9112 sections 5-7), parsed incrementally over `Buffer`s as they
 * arrive. Body bytes are handed on as slices of the input, never copied. The rules are
 * llhttp's in its default strict mode, which Node's `http` uses; `docs/sidecar.md`
 * ("Transport") lists where this differs.
 */
import { CR, DQUOTE, EQUALS, FIELD_VALUE, HEX, LF, QDTEXT, SEMICOLON, TOKEN, BACKSLASH } from "./chars.ts";
import { DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_HEADER_SIZE, F_CHUNKED, F_CONTENT_LENGTH, F_TRANSFER_ENCODING, FieldState, LineReader, MAX_LENGTH, parseField } from "./fields.ts";

/**
 * Most bytes in one chunk-size line (size, extensions, CRLF): 16 KiB, Node's limit on chunk
 * extensions (`kMaxChunkExtensionsSize` in `src/node_http_parser.cc`).
 */
export const DEFAULT_MAX_CHUNK_LINE = 16 * 1024;

/** Limits of a message parser. */
export interface ParserLimits {
  /** Most bytes in a header section, and again in a trailer section. Default `DEFAULT_MAX_HEADER_SIZE`. */
  maxHeaderSize?: number;
  /** Most fields in a header section, and again in a trailer section. Default `DEFAULT_MAX_HEADER_COUNT`. */
  maxHeaderCount?: number;
}

/** Where a parser is in a message. */
export const S_START = 0;
const S_HEAD = 1;
const S_FIELDS = 2;
const S_BODY_LENGTH = 3;
const S_BODY_EOF = 4;
const S_CHUNK_SIZE = 5;
const S_CHUNK_DIGITS = 6;
const S_CHUNK_EXT = 7;
const S_CHUNK_EXT_NAME = 8;
const S_CHUNK_EXT_VALUE = 9;
const S_CHUNK_EXT_QUOTED = 10;
const S_CHUNK_EXT_PAIR = 11;
const S_CHUNK_EXT_QUOTED_END = 12;
const S_CHUNK_SIZE_LF = 13;
const S_CHUNK_DATA = 14;
const S_CHUNK_DATA_CR = 15;
const S_CHUNK_DATA_LF = 16;
const S_TRAILERS = 17;
/** The message is complete. */
export const S_DONE = 18;
/** The input was refused; `error` says why. */
export const S_ERROR = 19;

/** How a message's body is delimited, decided once its header section is in. */
export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
export const BODY_EOF = 3;

/**
 * The machinery of one direction of a connection: a start line (the subclass's), fields,
 * body, trailers; then `S_DONE` until `restart()`. `execute` never throws on bad input: it
 * returns -1 and sets `error`.
 */
export abstract class MessageParser {
  state = S_START;
  /** Why the input was refused. */
  error = "";
  /** The header section's facts; then, once the body starts, the trailer section's fields go to `trailers`. */
  readonly head = new FieldState();
  protected readonly trailers = new FieldState();
  protected readonly lines = new LineReader();
  protected readonly maxHeaderSize: number;
  protected readonly maxHeaderCount: number;
  /** Whether this side reads requests (some field rules differ). */
  protected readonly requests: boolean = false;
  /** Body bytes still expected: of the `Content-Length`, or of the current chunk. */
  private remaining = 0;
  private chunkLine = 0;
  /** Bytes other than CR and LF before a message start are refused (after a `Connection: close` message). */
  protected closed = false;
  /**
   * Set (by a body callback) to stop `execute` right after the slice just handed on; it then
   * returns the offset reached, and the caller passes the rest again once it clears this.
   */
  paused = false;

  constructor(limits: ParserLimits = {}) {
    this.maxHeaderSize = limits.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    this.maxHeaderCount = limits.maxHeaderCount ?? DEFAULT_MAX_HEADER_COUNT;
  }

  /** Reads the start line `buf[s..e)`; returns why it is refused, or undefined. */
  protected abstract startLine(buf: Uint8Array, s: number, e: number): string | undefined;
  /** Whether `partial`, the first bytes of a start line, can still begin a valid one (default: yes). */
  protected startLinePrefix(_partial: Buffer): boolean {
    return true;
  }
  /** Called once the header section is in; returns how the body is delimited, or a refusal as a string. */
  protected abstract headersDone(): number | string;
  /** A slice of the body. */
  protected abstract body(chunk: Buffer): void;
  /** The message ended; `trailers` is flat, empty without a trailer section. */
  protected abstract complete(trailers: string[]): void;

  /** Makes ready for the next message on the same connection. */
  restart(): void {
    this.state = S_START;
    this.head.reset();
    this.trailers.reset();
    this.lines.reset();
  }

  protected fail(reason: string): number {
    this.state = S_ERROR;
    this.error = reason;
    return -1;
  }

  /**
   * Parses `chunk`. Returns the offset where the message ended (the rest belongs to what
   * follows) once `state` is `S_DONE`, where it stopped when `paused` was set, the chunk's
   * length when all of it was taken, or -1 when the input is refused. Callbacks run
   * synchronously from here.
   */
  execute(chunk: Buffer): number {
    const len = chunk.length;
    let i = 0;
    while (i < len) {
      switch (this.state) {
        case S_START: {
          let c = chunk[i]!;
          while (c === CR || c === LF) {
            if (++i === len) return len;
            c = chunk[i]!;
          }
          if (this.closed) return this.fail("data after a message that closed the connection");
          this.state = S_HEAD;
          break;
        }
        case S_HEAD:
        case S_FIELDS:
        case S_TRAILERS: {
          const trailer = this.state === S_TRAILERS;
          const fields = trailer ? this.trailers : this.head;
          const next = this.lines.next(chunk, i, fields, this.maxHeaderSize);
          if (next === -1) {
            // A start line still coming in: refuse it now if its first bytes already break it.
            if (this.state === S_HEAD && this.lines.held !== null && !this.startLinePrefix(this.lines.held)) return this.fail("invalid start line");
            return len;
          }
          if (next === -2) return this.fail(fields.size > this.maxHeaderSize ? "header section too large" : "bare LF (a line must end in CRLF)");
          i = next;
          const { buf, start, end } = this.lines;
          if (this.state === S_HEAD) {
            const refused = this.startLine(buf, start, end);
            if (refused !== undefined) return this.fail(refused);
            this.state = S_FIELDS;
          } else if (start < end) {
            if (fields.fields.length >= this.maxHeaderCount * 2) return this.fail("too many header fields");
            const refused = parseField(buf, start, end, fields, trailer, this.requests);
            if (refused !== undefined) return this.fail(refused);
          } else if (trailer) {
            this.state = S_DONE;
            this.complete(this.trailers.fields);
            return i;
          } else {
            const framing = this.headersDone();
            if (typeof framing === "string") return this.fail(framing);
            if (this.state !== S_FIELDS) break; // the subclass restarted for another message (a 1xx response)
            if (framing === BODY_NONE) {
              this.state = S_DONE;
              this.complete(NO_TRAILERS);
              return i;
            }
            if (framing === BODY_LENGTH) {
              this.remaining = this.head.contentLength;
              this.state = S_BODY_LENGTH;
            } else if (framing === BODY_CHUNKED) {
              this.state = S_CHUNK_SIZE;
              this.chunkLine = 0;
            } else this.state = S_BODY_EOF;
            if (this.paused) return i;
          }
          break;
        }
        case S_BODY_LENGTH: {
          const take = Math.min(this.remaining, len - i);
          this.remaining -= take;
          this.body(chunk.subarray(i, i + take));
          i += take;
          if (this.remaining === 0) {
            this.state = S_DONE;
            this.complete(NO_TRAILERS);
            return i;
          }
          if (this.paused) return i;
          break;
        }
        case S_BODY_EOF:
          this.body(i === 0 ? chunk : chunk.subarray(i));
          return len;
        case S_CHUNK_DATA: {
          const take = Math.min(this.remaining, len - i);
          this.remaining -= take;
          this.body(chunk.subarray(i, i + take));
          i += take;
          if (this.remaining === 0) this.state = S_CHUNK_DATA_CR;
          if (this.paused) return i;
          break;
        }
        case S_CHUNK_DATA_CR:
          if (chunk[i++] !== CR) return this.fail("chunk data not followed by CRLF");
          this.state = S_CHUNK_DATA_LF;
          break;
        case S_CHUNK_DATA_LF:
          if (chunk[i++] !== LF) return this.fail("chunk data not followed by CRLF");
          this.state = S_CHUNK_SIZE;
          this.chunkLine = 0;
          break;
        default: {
          if (this.state >= S_DONE) return this.state === S_DONE ? i : -1;
          const refused = this.chunkHeader(chunk, i);
          if (refused < 0) return -1;
          i = refused;
        }
      }
    }
    return len;
  }

  /** Parses a chunk-size line (size, extensions, CRLF) byte by byte from `i`; returns the next offset or -1. */
  private chunkHeader(chunk: Buffer, i: number): number {
    const len = chunk.length;
    const begin = i;
    let state = this.state;
    let size = this.remaining;
    for (; i < len; i++) {
      const c = chunk[i]!;
      switch (state) {
        case S_CHUNK_SIZE:
          if (HEX[c]! < 0) return this.fail("invalid character in chunk size");
          size = HEX[c]!;
          state = S_CHUNK_DIGITS;
          continue;
        case S_CHUNK_DIGITS:
          if (HEX[c]! >= 0) {
            size = size * 16 + HEX[c]!;
            if (size > MAX_LENGTH) return this.fail("chunk size too large");
            continue;
          }
          if (c === CR) state = S_CHUNK_SIZE_LF;
          else if (c === SEMICOLON) state = S_CHUNK_EXT;
          else return this.fail("invalid character in chunk size");
          continue;
        case S_CHUNK_EXT:
          // After `;` a name follows, possibly empty (llhttp takes `;;` and `;=v`), but not SP or CR.
          if (c === 0x20 || c === CR) return this.fail("invalid character in chunk extensions");
          state = S_CHUNK_EXT_NAME;
          if (TOKEN[c] === 1) continue;
          if (c === EQUALS) state = S_CHUNK_EXT_VALUE;
          else if (c === SEMICOLON) state = S_CHUNK_EXT;
          else return this.fail("invalid character in a chunk extension name");
          continue;
        case S_CHUNK_EXT_NAME:
          if (TOKEN[c] === 1) continue;
          if (c === EQUALS) state = S_CHUNK_EXT_VALUE;
          else if (c === SEMICOLON) state = S_CHUNK_EXT;
          else if (c === CR) state = S_CHUNK_SIZE_LF;
          else return this.fail("invalid character in a chunk extension name");
          continue;
        case S_CHUNK_EXT_VALUE:
          if (TOKEN[c] === 1) continue;
          if (c === DQUOTE) state = S_CHUNK_EXT_QUOTED;
          else if (c === SEMICOLON) state = S_CHUNK_EXT;
          else if (c === CR) state = S_CHUNK_SIZE_LF;
          else return this.fail("invalid character in a chunk extension value");
          continue;
        case S_CHUNK_EXT_QUOTED:
          if (QDTEXT[c] === 1) continue;
          if (c === DQUOTE) state = S_CHUNK_EXT_QUOTED_END;
          else if (c === BACKSLASH) state = S_CHUNK_EXT_PAIR;
          else return this.fail("invalid character in a chunk extension quoted value");
          continue;
        case S_CHUNK_EXT_PAIR:
          if (FIELD_VALUE[c] !== 1) return this.fail("invalid quoted-pair in a chunk extension");
          state = S_CHUNK_EXT_QUOTED;
          continue;
        case S_CHUNK_EXT_QUOTED_END:
          if (c === SEMICOLON) state = S_CHUNK_EXT;
          else if (c === CR) state = S_CHUNK_SIZE_LF;
          else return this.fail("invalid character after a chunk extension quoted value");
          continue;
        case S_CHUNK_SIZE_LF:
          if (c !== LF) return this.fail("chunk size not followed by CRLF");
          i++;
          if (size === 0) {
            this.state = S_TRAILERS;
          } else {
            this.remaining = size;
            this.state = S_CHUNK_DATA;
          }
          return i;
      }
    }
    this.chunkLine += i - begin;
    if (this.chunkLine > DEFAULT_MAX_CHUNK_LINE) return this.fail("chunk-size line too long");
    this.state = state;
    this.remaining = size;
    return i;
  }

  /**
   * The connection ended. Returns true when that completes the message (a body delimited by
   * the close) or nothing of a message had started; false, with `error` set, when a message
   * was cut short.
   */
  finish(): boolean {
    if (this.state === S_BODY_EOF) {
      this.state = S_DONE;
      this.complete(NO_TRAILERS);
      return true;
    }
    if (this.state === S_DONE || this.state === S_ERROR) return this.state === S_DONE;
    if (this.state === S_START && !this.lines.partial) return true;
    this.fail("the connection closed before the message was complete");
    return false;
  }

  /** Whether a header section's framing fields say chunked, by length, or neither. */
  protected framingOf(): number {
    const flags = this.head.flags;
    if (flags & F_CHUNKED) return BODY_CHUNKED;
    if (flags & F_TRANSFER_ENCODING) return BODY_EOF;
    if (flags & F_CONTENT_LENGTH) return this.head.contentLength === 0 ? BODY_NONE : BODY_LENGTH;
    return -1;
  }
}

const NO_TRAILERS: string[] = [];
