/**
 * Byte classes of HTTP/1.1 framing as lookup tables, the same sets llhttp matches against
 * (`src/llhttp/constants.ts` in nodejs/llhttp), so a parser tests one byte with one load.
 */

/** A table of 256 flags: 1 where the byte is in the set. */
function table(...ranges: (number | [number, number])[]): Uint8Array {
  const t = new Uint8Array(256);
  for (const r of ranges) {
    if (typeof r === "number") t[r] = 1;
    else for (let c = r[0]; c <= r[1]; c++) t[c] = 1;
  }
  return t;
}

const chars = (s: string) => [...s].map((c) => c.charCodeAt(0));

/** `tchar` (RFC 9110 section 5.6.2): the bytes of a header name, a method, a chunk extension name. */
export const TOKEN = table(...chars("!#$%&'*+-.^_`|~"), [0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]);

/** HTAB, SP, VCHAR and obs-text (RFC 9110 section 5.5): the bytes a header value may hold. */
export const FIELD_VALUE = table(0x09, [0x20, 0x7e], [0x80, 0xff]);

/** A header value's bytes but the comma: the inside of a list element (llhttp's `CONNECTION_TOKEN_CHARS`). */
export const LIST_ELEMENT = table(0x09, [0x20, 0x2b], [0x2d, 0x7e], [0x80, 0xff]);

/** `qdtext` (RFC 9110 section 5.6.4): the bytes of a quoted string but `"` and `\`. */
export const QDTEXT = table(0x09, 0x20, 0x21, [0x23, 0x5b], [0x5d, 0x7e], [0x80, 0xff]);

/** llhttp's `URL_CHAR`: the bytes of a request target's path, query and fragment besides `?` and `#`. */
export const URL_CHAR = table(...chars('!"$%&\'()*+,-./:;<=>@[\\]^_`{|}~'), [0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]);

/** llhttp's `USERINFO_CHARS` with `[` and `]`: the bytes of an absolute target's authority besides `@`. */
export const AUTHORITY_CHAR = table(...chars("-_.!~*'()%;:&=+$,[]"), [0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]);

/** The value of each hexadecimal digit, or -1. */
export const HEX = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let c = 0; c < 10; c++) t[0x30 + c] = c;
  for (let c = 0; c < 6; c++) t[0x41 + c] = t[0x61 + c] = 10 + c;
  return t;
})();

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HT = 0x09;
export const COLON = 0x3a;
export const COMMA = 0x2c;
export const SEMICOLON = 0x3b;
export const EQUALS = 0x3d;
export const DQUOTE = 0x22;
export const BACKSLASH = 0x5c;
