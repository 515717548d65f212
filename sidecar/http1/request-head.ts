/**
 * The head of an outgoing HTTP/1.1 request, checked and written as one latin1 string: the
 * caller's fields pass through as given (names as sent), except the framing fields, which
 * the client sets from the body it actually sends.
 */

/** `tchar`+: a method or a field name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A byte a field value may not hold: CR, LF, NUL and the other controls but HTAB (Node's `checkInvalidHeaderChar`). */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** A byte a request target may not hold: controls, SP, and beyond latin1 (Node's `INVALID_PATH_REGEX`). */
const INVALID_TARGET = /[^\x21-\xff]/;

/** Methods that carry a body by definition, so an empty one is sent as `content-length: 0` (as undici does). */
const EXPECTS_BODY = new Set(["POST", "PUT", "PATCH"]);

/** What the caller's fields said about framing and the connection. */
export interface HeadFacts {
  /** The caller's `content-length`, or -1. */
  declaredLength: number;
  /** The caller asked for `connection: close`. */
  close: boolean;
}

/**
 * Writes the head of a request. `length` is the body's length when known (0 for none),
 * or -1 for a body of unknown length, sent chunked unless the caller declared a
 * `content-length` (then held to it). Returns the head, or why the request cannot be sent
 * (a field or target that would let one request be read as two).
 */
export function requestHead(method: string, path: string, fields: readonly string[], host: string, length: number, facts: HeadFacts): string | { invalid: string } {
  if (!TOKEN.test(method)) return { invalid: "invalid method" };
  if (path.length === 0 || INVALID_TARGET.test(path)) return { invalid: "invalid request target" };
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let hasHost = false;
  facts.declaredLength = -1;
  facts.close = false;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (!TOKEN.test(name)) return { invalid: "invalid field name" };
    if (INVALID_VALUE.test(value)) return { invalid: `invalid character in the value of ${name}` };
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === "host") hasHost = true;
        break;
      case 10:
        if (name.toLowerCase() === "connection") {
          if (/(^|,)\s*close\s*(,|$)/i.test(value)) facts.close = true;
          continue;
        }
        if (name.toLowerCase() === "keep-alive") continue;
        break;
      case 14:
        if (name.toLowerCase() === "content-length") {
          if (!/^\d{1,15}$/.test(value) || facts.declaredLength >= 0) return { invalid: "invalid content-length" };
          facts.declaredLength = Number(value);
          continue;
        }
        break;
      case 17:
        if (name.toLowerCase() === "transfer-encoding") continue;
        break;
    }
    head += `${name}: ${value}\r\n`;
  }
  if (!hasHost) head += `host: ${host}\r\n`;
  if (facts.close) head += "connection: close\r\n";
  if (length >= 0) {
    if (facts.declaredLength >= 0 && facts.declaredLength !== length) return { invalid: "content-length does not match the body" };
    if (length > 0 || EXPECTS_BODY.has(method) || facts.declaredLength === 0) head += `content-length: ${length}\r\n`;
  } else if (facts.declaredLength >= 0) head += `content-length: ${facts.declaredLength}\r\n`;
  else head += "transfer-encoding: chunked\r\n";
  return `${head}\r\n`;
}
