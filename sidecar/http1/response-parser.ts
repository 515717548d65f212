/**
 * An HTTP/1.1 response parser for a client: status line, fields, and the body framed as
 * RFC 9112 section 6.3 says for the request it answers (no body after `HEAD`, `204`, `304`;
 * interim `1xx` responses skipped), with llhttp's strict-mode refusals.
 */
import { CR, HEX, SP } from "./chars.ts";
import { F_CONNECTION_CLOSE, F_CONNECTION_KEEP_ALIVE, F_TRAILER_FRAMING } from "./fields.ts";
import { BODY_EOF, BODY_NONE, MessageParser } from "./message-parser.ts";
import type { ParserLimits } from "./message-parser.ts";

/** What a response parser reports; each runs synchronously inside `execute` or `finish`. */
export interface ResponseSink {
  /** The final response's head: its status and its fields (flat, names as sent). */
  onHead(status: number, fields: string[]): void;
  /** A slice of the body (a view of the input, valid until the callback returns unless kept). */
  onBody(chunk: Buffer): void;
  /** The response ended; `trailers` is flat, empty without trailers. */
  onComplete(trailers: string[]): void;
}

const digit = (c: number) => c - 0x30;

/**
 * Parses the responses of one connection, one request at a time: `expect(method)` before
 * each, then `execute` the bytes as they come and `finish` at the connection's end. A `101`
 * is refused: this client never asks to switch protocols.
 */
export class ResponseParser extends MessageParser {
  /** The final response's status, once its head is in. */
  status = 0;
  private major = 1;
  private minor = 1;
  private headRequest = false;
  /** Whether the body is delimited by the connection's end. */
  private untilClose = false;

  private readonly sink: ResponseSink;

  constructor(sink: ResponseSink, limits?: ParserLimits) {
    super(limits);
    this.sink = sink;
  }

  /** Makes ready for the response to a request with `method`. */
  expect(method: string): void {
    this.restart();
    this.status = 0;
    this.untilClose = false;
    this.headRequest = method === "HEAD";
  }

  /**
   * Whether the connection may carry another request once this response is complete, as
   * llhttp's `llhttp_should_keep_alive`: HTTP/1.1 without `Connection: close`, or HTTP/1.0
   * with `Connection: keep-alive`; never after a body delimited by the close, nor after a
   * trailer section that names framing fields.
   */
  get keepAlive(): boolean {
    const flags = this.head.flags | this.trailers.flags;
    if (this.untilClose || flags & F_TRAILER_FRAMING) return false;
    return this.major > 0 && this.minor > 0 ? (flags & F_CONNECTION_CLOSE) === 0 : (flags & F_CONNECTION_KEEP_ALIVE) !== 0;
  }

  protected startLine(buf: Uint8Array, s: number, e: number): string | undefined {
    // "HTTP/" DIGIT "." DIGIT SP 3DIGIT [ SP reason ]
    if (e - s < 12 || buf[s] !== 0x48 || buf[s + 1] !== 0x54 || buf[s + 2] !== 0x54 || buf[s + 3] !== 0x50 || buf[s + 4] !== 0x2f) return "invalid status line";
    const major = digit(buf[s + 5]!);
    const minor = digit(buf[s + 7]!);
    if (buf[s + 6] !== 0x2e || major < 0 || major > 9 || minor < 0 || minor > 9) return "invalid HTTP version";
    // llhttp takes 0.9, 1.0, 1.1 and 2.0 in a status line.
    if (!((major === 1 && minor <= 1) || (major === 0 && minor === 9) || (major === 2 && minor === 0))) return "invalid HTTP version";
    if (buf[s + 8] !== SP) return "invalid status line";
    let status = 0;
    for (let k = s + 9; k < s + 12; k++) {
      const d = HEX[buf[k]!]!;
      if (d < 0 || d > 9) return "invalid status code";
      status = status * 10 + d;
    }
    if (e > s + 12) {
      if (buf[s + 12] !== SP) return "invalid status code";
      for (let k = s + 13; k < e; k++) if (buf[k] === CR) return "CR inside the status line";
    }
    this.major = major;
    this.minor = minor;
    this.status = status;
    return undefined;
  }

  protected headersDone(): number | string {
    const status = this.status;
    if (status === 101) return "101 Switching Protocols was not asked for";
    if (status >= 100 && status < 200) {
      // An interim response: skipped, and the final one follows on the same connection,
      // unless this one closed it (llhttp then refuses what follows).
      const closing = !this.keepAlive;
      this.restart();
      this.closed = closing;
      return BODY_NONE;
    }
    this.sink.onHead(status, this.head.fields);
    if (this.headRequest || status === 204 || status === 304) return BODY_NONE;
    const framing = this.framingOf();
    if (framing >= 0) {
      this.untilClose = framing === BODY_EOF;
      return framing;
    }
    this.untilClose = true;
    return BODY_EOF;
  }

  protected body(chunk: Buffer): void {
    this.sink.onBody(chunk);
  }

  protected complete(trailers: string[]): void {
    this.sink.onComplete(trailers);
  }
}
