/**
 * Test support for the differential tests of the HTTP/1.1 parsers (imported by tests only):
 * generators of raw messages, valid and not, built from the grammar with its edge bytes,
 * and llhttp (Node's own parser binding, as `node:http` drives it) as the oracle.
 */
import { createRequire } from "node:module";
import fc from "fast-check";
import { S_DONE } from "./message-parser.ts";
import { RequestParser } from "./request-parser.ts";
import { ResponseParser } from "./response-parser.ts";

/** What parsing one response came to: the fields compared between the two parsers. */
export type Outcome =
  | { kind: "complete"; status: number; fields: string[]; body: string; trailers: string[] }
  | { kind: "cut"; status: number; fields: string[] }
  | { kind: "refused" };

// Node's binding of llhttp, the parser `http.request` runs; `_http_common` is how `node:http` reaches it.
const { HTTPParser } = createRequire(import.meta.url)("_http_common") as {
  HTTPParser: (new () => LlhttpParser) & Record<string, number>;
};

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(chunk: Buffer): number | Error;
  finish(): Error | undefined;
  close(): void;
  [key: number]: unknown;
}

const isInformational = (status: number) => status >= 100 && status < 200 && status !== 101;

/**
 * Parses `segments` (the bytes of one connection, as they arrive) as the response to a
 * `method` request the way Node's `http` client does: llhttp in its default settings,
 * `1xx` (but 101) skipped, no body after `HEAD` or `304`, the connection's end passed on.
 * What follows the first final response is not looked at.
 */
export function parseWithLlhttp(segments: Buffer[], method: string): Outcome {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.RESPONSE!, {}, 0, 0);
  let pending: string[] = [];
  let final: { status: number; fields: string[] } | undefined;
  const body: Buffer[] = [];
  let trailers: string[] | undefined;
  parser[HTTPParser.kOnHeaders!] = (fields: string[]) => {
    pending.push(...fields);
  };
  parser[HTTPParser.kOnHeadersComplete!] = (_major: number, _minor: number, fields: string[] | undefined, _method: unknown, _url: unknown, status: number) => {
    const all = fields ?? pending;
    pending = [];
    if (isInformational(status)) return 1;
    if (final !== undefined) return 0;
    final = { status, fields: all };
    return method === "HEAD" || status === 304 ? 1 : 0;
  };
  parser[HTTPParser.kOnBody!] = (chunk: Buffer) => {
    if (final !== undefined && trailers === undefined) body.push(Buffer.from(chunk));
  };
  parser[HTTPParser.kOnMessageComplete!] = () => {
    if (final !== undefined && trailers === undefined) trailers = pending;
    pending = [];
  };
  const outcome = (): Outcome => {
    if (final === undefined) return { kind: "refused" };
    if (trailers === undefined) return { kind: "cut", status: final.status, fields: final.fields };
    return { kind: "complete", status: final.status, fields: final.fields, body: Buffer.concat(body).toString("latin1"), trailers };
  };
  try {
    for (const segment of segments) {
      const result = parser.execute(segment);
      if (trailers !== undefined) return outcome();
      if (result instanceof Error) return outcome();
    }
    const end = parser.finish();
    if (end instanceof Error && trailers === undefined) return outcome();
    return outcome();
  } finally {
    parser.close();
  }
}

/** Parses `segments` the same way with this module's `ResponseParser`. */
export function parseWithOurs(segments: Buffer[], method: string): Outcome {
  let head: { status: number; fields: string[] } | undefined;
  const body: Buffer[] = [];
  let trailers: string[] | undefined;
  const parser = new ResponseParser({
    onHead: (status, fields) => (head = { status, fields }),
    onBody: (chunk) => body.push(Buffer.from(chunk)),
    onComplete: (t) => (trailers = t),
  });
  parser.expect(method);
  const outcome = (): Outcome => {
    if (head === undefined) return { kind: "refused" };
    if (trailers === undefined) return { kind: "cut", status: head.status, fields: head.fields };
    return { kind: "complete", status: head.status, fields: head.fields, body: Buffer.concat(body).toString("latin1"), trailers };
  };
  for (const segment of segments) {
    const result = parser.execute(segment);
    if (trailers !== undefined || result < 0) return outcome();
  }
  parser.finish();
  return outcome();
}

// ---- generators -------------------------------------------------------------------------

const pick = <T>(...values: T[]) => fc.constantFrom(...values);
/** Mostly `usual`, sometimes one of `odd`. */
const mostly = <T>(usual: T, ...odd: T[]) => fc.oneof({ weight: 40, arbitrary: fc.constant(usual) }, { weight: 1, arbitrary: fc.constantFrom(...odd) });

/** A line end: CRLF, or what strict parsing refuses. */
export const lineEnd = () => mostly("\r\n", "\n", "\r", "\r\r\n", "\n\r");

const EDGE = ["\t", " ", "\x00", "\x01", "\x0b", "\x1f", "\x7f", "\x80", "\xff", "\xe9", '"', ",", ":", ";", "=", "\\", "(", "@"];
const lowTokenChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";

/** Text from the token alphabet, with an edge byte now and then (`edgeWeight` in 130). */
const text = (min: number, max: number, edgeWeight = 1) =>
  fc
    .array(fc.oneof({ weight: 120, arbitrary: fc.constantFrom(...lowTokenChars) }, { weight: 10, arbitrary: fc.constant(" ") }, { weight: edgeWeight, arbitrary: fc.constantFrom(...EDGE) }), { minLength: min, maxLength: max })
    .map((cs) => cs.join(""));

const randomCase = (word: string) => fc.array(fc.boolean(), { minLength: word.length, maxLength: word.length }).map((up) => [...word].map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join(""));

const fieldName = () =>
  fc.oneof(
    { weight: 20, arbitrary: fc.constantFrom("content-type", "x-trace", "server", "date", "vary", "set-cookie", "etag").chain(randomCase) },
    { weight: 3, arbitrary: fc.constantFrom("content-length", "transfer-encoding", "connection", "proxy-connection", "upgrade").chain(randomCase) },
    { weight: 6, arbitrary: text(1, 12, 2) },
    { weight: 1, arbitrary: pick("", " x", "x ", "x\t", "a b") },
  );

const contentLengthValue = (n: number) =>
  fc.oneof(
    { weight: 30, arbitrary: fc.constant(String(n)) },
    { weight: 3, arbitrary: pick(`0${n}`, ` ${n}`, `${n} `, `${n}\t`, `\t${n}`) },
    { weight: 2, arbitrary: pick(`${n},${n}`, `+${n}`, `-${n}`, `${n} 1`, "", "0x10", "1e3", "99999999999999999999", `${n}a`) },
  );

const transferEncodingValue = () =>
  fc.oneof(
    { weight: 24, arbitrary: fc.constant("chunked") },
    {
      weight: 4,
      arbitrary: fc
        .array(fc.constantFrom("chunked", "gzip", "identity", "CHUNKED", "Chunked", "deflate", "chunked ", " chunked", "chunkedx", "chunk", "x", ""), { minLength: 1, maxLength: 3 })
        .chain((parts) => fc.constantFrom(", ", ",", " ,", " , ", ",\t").map((sep) => parts.join(sep))),
    },
    { weight: 2, arbitrary: pick("chunked\t", "chunked  ", "chunked\x00", "chunked;q=1", '"chunked"', "chunked,", ",chunked") },
  );

const connectionValue = () => fc.oneof({ weight: 6, arbitrary: pick("close", "keep-alive", "Keep-Alive", "CLOSE") }, { weight: 2, arbitrary: pick("upgrade", "foo, close", "close, keep-alive", "closed", " close ", "te") });

/** A generated field: its name, value and what separates them, with its own line end. */
export interface FieldSpec {
  name: string;
  value: string;
  separator: string;
  end: string;
  fold: string;
}

const valueFor = (name: string, bodyLength: number) => {
  const lower = name.toLowerCase();
  if (lower === "content-length") return contentLengthValue(bodyLength);
  if (lower === "transfer-encoding") return transferEncodingValue();
  if (lower === "connection" || lower === "proxy-connection") return connectionValue();
  return text(0, 24, 3);
};

/** One field line (`name: value` CRLF), sometimes malformed. */
export const field = (bodyLength: number): fc.Arbitrary<FieldSpec> =>
  fieldName().chain((name) =>
    fc.record({
      name: fc.constant(name),
      value: valueFor(name, bodyLength),
      separator: mostly(": ", ":", ":\t", " :", ":  ", ": \t"),
      end: lineEnd(),
      fold: mostly("", "\r\n continued", "\r\n\tcontinued"),
    }),
  );

export const fieldLine = (f: FieldSpec) => `${f.name}${f.separator}${f.value}${f.fold}${f.end}`;

/** Framing fields the body's shape asks for, placed among the random ones. */
const framingFields = (framing: "length" | "chunked" | "close", bodyLength: number): fc.Arbitrary<FieldSpec[]> => {
  const make = (name: string, value: fc.Arbitrary<string>) =>
    fc.record({ name: randomCase(name), value, separator: mostly(": ", ":"), end: lineEnd(), fold: mostly("", "\r\n x") }) as fc.Arbitrary<FieldSpec>;
  if (framing === "length") return fc.tuple(make("content-length", contentLengthValue(bodyLength))).map((a) => a);
  if (framing === "chunked") return fc.tuple(make("transfer-encoding", transferEncodingValue())).map((a) => a);
  return fc.constant([]);
};

const hex = (n: number) => fc.constantFrom(n.toString(16), n.toString(16).toUpperCase(), `0${n.toString(16)}`, `00${n.toString(16)}`);

const chunkExtension = () =>
  fc.oneof(
    { weight: 20, arbitrary: fc.constant("") },
    { weight: 3, arbitrary: pick(";a", ";a=b", ';a="b c"', ";a=b;c", ';q="\\""', ";a=", ";;a", ";=b") },
    { weight: 2, arbitrary: pick("; a", ";a =b", ";", ";a=b c", ';a="b', ";a\x00", ' ;a', "\t", " ", ';a="\x7f"', ';a="\\\x00"', ";a\n") },
  );

const bodyBytes = (max: number) => text(0, max, 20);

/** A chunked body: chunks, the last chunk, trailers, the final CRLF; sometimes malformed. */
const chunkedBody = (trailerLimit: number): fc.Arbitrary<string> =>
  fc
    .record({
      chunks: fc.array(
        bodyBytes(40).chain((data) =>
          fc.record({
            size: data.length === 0 ? fc.constant("1") : fc.oneof({ weight: 40, arbitrary: hex(data.length) }, { weight: 1, arbitrary: pick(`${data.length.toString(16)} `, "g", "", `-${data.length}`, (data.length + 1).toString(16)) }),
            ext: chunkExtension(),
            end: lineEnd(),
            data: fc.constant(data.length === 0 ? "x" : data),
            after: mostly("\r\n", "\n", "", "\r", "x\r\n"),
          }),
        ),
        { maxLength: 4 },
      ),
      last: mostly("0", "00", "000"),
      lastExt: chunkExtension(),
      lastEnd: lineEnd(),
      trailers: fc.array(field(0), { maxLength: trailerLimit }),
      final: mostly("\r\n", "\n", "", "\r"),
    })
    .map((b) => b.chunks.map((c) => `${c.size}${c.ext}${c.end}${c.data}${c.after}`).join("") + `${b.last}${b.lastExt}${b.lastEnd}` + b.trailers.map(fieldLine).join("") + b.final);

const statusLine = (status: fc.Arbitrary<string>) =>
  fc.record({
    version: mostly("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.0", "http/1.1", "HTTP/11", "HTTP/1.1 ", "HTTP /1.1"),
    sp: mostly(" ", "  ", "\t"),
    status,
    reason: fc.oneof({ weight: 20, arbitrary: pick(" OK", " Not Found", "", " ") }, { weight: 4, arbitrary: text(0, 10, 30).map((r) => ` ${r}`) }, { weight: 1, arbitrary: pick("\tOK", "OK", " O\rK") }),
    end: lineEnd(),
  }).map((l) => `${l.version}${l.sp}${l.status}${l.reason}${l.end}`);

const finalStatus = () =>
  fc.oneof(
    { weight: 30, arbitrary: pick("200", "201", "404", "500", "302") },
    { weight: 4, arbitrary: pick("204", "304") },
    { weight: 1, arbitrary: pick("000", "099", "999", "2000", "20", "2x0", " 200") },
  );

const interim = () =>
  fc
    .record({
      line: statusLine(pick("100", "102", "103", "199")),
      fields: fc.array(field(0), { maxLength: 2 }),
      end: mostly("\r\n", "\n"),
    })
    .map((r) => r.line + r.fields.map(fieldLine).join("") + r.end);

/** One generated connection's bytes, the request method, and how they are cut into segments. */
export interface Case {
  method: string;
  bytes: Buffer;
  segments: Buffer[];
}

/**
 * Raw responses: leading blank lines, interim `1xx` responses, a status line, fields (the
 * framing ones and random others, in random order), and a body by `Content-Length` (with
 * too few or too many bytes at times), chunked (extensions, trailers) or by the close;
 * then the connection cut at a random point now and then, and the bytes split at random.
 */
export const response = (): fc.Arbitrary<Case> =>
  fc
    .record({
      method: mostly("GET", "HEAD"),
      lead: mostly("", "\r\n", "\n", "\r\n\r\n"),
      interims: fc.oneof({ weight: 8, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: fc.array(interim(), { minLength: 1, maxLength: 2 }) }),
      line: statusLine(finalStatus()),
      framing: fc.constantFrom("length", "chunked", "close") as fc.Arbitrary<"length" | "chunked" | "close">,
      body: bodyBytes(60),
      extra: mostly("", "xx", "\r\n"),
    })
    .chain((r) =>
      fc
        .record({
          framingFields: framingFields(r.framing, r.body.length),
          others: fc.array(field(r.body.length), { maxLength: 6 }),
          chunked: chunkedBody(2),
          headEnd: mostly("\r\n", "\n", "\r", " \r\n"),
          order: fc.nat(),
        })
        .map((h) => {
          const fields = [...h.others];
          for (const f of h.framingFields) fields.splice(h.order % (fields.length + 1), 0, f);
          const payload = r.framing === "chunked" ? h.chunked : r.body + (r.framing === "length" ? r.extra : "");
          return { method: r.method, text: r.lead + r.interims.join("") + r.line + fields.map(fieldLine).join("") + h.headEnd + payload };
        }),
    )
    .chain(({ method, text }) => {
      const bytes = Buffer.from(text, "latin1");
      return cutAndSplit(bytes).map((cut) => ({ method, ...cut }));
    });

/** A case as text a person can read back (for failure reports). */
export const show = (c: Case) => `${c.method} ${JSON.stringify(c.bytes.toString("latin1"))} in ${c.segments.length} segments (${c.segments.map((s) => s.length).join("+")})`;

// ---- requests ---------------------------------------------------------------------------

/** What parsing the requests of one connection came to. */
export interface RequestsOutcome {
  /** The complete requests, in order. */
  requests: { method: string; target: string; version: string; fields: string[]; body: string; trailers: string[]; keepAlive: boolean }[];
  /**
   * The head of a request whose body was cut by the end of the input, if any. (Not kept
   * for refused input: llhttp reports some heads before refusing them, such as one whose
   * last transfer coding is not chunked; this parser refuses those before reporting.)
   */
  partial: { method: string; target: string; fields: string[] } | null;
  /** How the bytes ended: all taken, refused, or cut inside a request. */
  end: "clean" | "refused" | "cut";
}

/** The method names by llhttp's numbering (`METHODS` in its `src/llhttp/constants.ts`), as `node:http` maps them. */
const allMethods: Record<number, string> = {
  ...["DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR", "LINK", "UNLINK", "SOURCE", "PRI"],
  46: "QUERY",
};

/** Parses `segments` as the requests of one connection with llhttp, as Node's `http` server does. */
export function parseRequestsWithLlhttp(segments: Buffer[]): RequestsOutcome {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST!, {}, 0, 0);
  let pending: string[] = [];
  let url = "";
  const out: RequestsOutcome = { requests: [], partial: null, end: "clean" };
  let current: (RequestsOutcome["requests"][number] & { chunks: Buffer[] }) | undefined;
  parser[HTTPParser.kOnHeaders!] = (fields: string[], u: string) => {
    pending.push(...fields);
    url += u;
  };
  parser[HTTPParser.kOnHeadersComplete!] = (major: number, minor: number, fields: string[] | undefined, method: number, u: string | undefined, _s: unknown, _m: unknown, _upgrade: boolean, keepAlive: boolean) => {
    current = { method: allMethods[method]!, target: u ?? url, version: `${major}.${minor}`, fields: fields ?? pending, body: "", trailers: [], keepAlive, chunks: [] };
    pending = [];
    url = "";
    return 0;
  };
  parser[HTTPParser.kOnBody!] = (chunk: Buffer) => current?.chunks.push(Buffer.from(chunk));
  parser[HTTPParser.kOnMessageComplete!] = () => {
    if (current === undefined) return;
    const { chunks, ...request } = current;
    out.requests.push({ ...request, body: Buffer.concat(chunks).toString("latin1"), trailers: pending });
    pending = [];
    url = "";
    current = undefined;
  };
  const partial = () => (current === undefined ? null : { method: current.method, target: current.target, fields: current.fields });
  try {
    for (const segment of segments) {
      if (parser.execute(segment) instanceof Error) return { ...out, end: "refused" };
    }
    if (parser.finish() instanceof Error) return { ...out, partial: partial(), end: "cut" };
    return out;
  } finally {
    parser.close();
  }
}

/** Parses `segments` the same way with this module's `RequestParser`, restarting after each request. */
export function parseRequestsWithOurs(segments: Buffer[]): RequestsOutcome {
  const out: RequestsOutcome = { requests: [], partial: null, end: "clean" };
  let current: { method: string; target: string; fields: string[]; chunks: Buffer[] } | undefined;
  const parser: RequestParser = new RequestParser({
    onRequest: (method, target, fields) => (current = { method, target, fields, chunks: [] }),
    onBody: (chunk) => current!.chunks.push(Buffer.from(chunk)),
    onComplete: (trailers) => {
      const { method, target, fields, chunks } = current!;
      out.requests.push({ method, target, version: `${parser.major}.${parser.minor}`, fields, body: Buffer.concat(chunks).toString("latin1"), trailers, keepAlive: parser.keepAlive });
      current = undefined;
    },
  });
  const partial = () => (current === undefined ? null : { method: current.method, target: current.target, fields: current.fields });
  for (const segment of segments) {
    let rest = segment;
    for (;;) {
      const at = parser.execute(rest);
      if (at < 0) return { ...out, end: "refused" };
      if (parser.state !== S_DONE) break;
      parser.restart();
      rest = rest.subarray(at);
      if (rest.length === 0) break;
    }
  }
  if (!parser.finish()) return { ...out, partial: partial(), end: "cut" };
  return out;
}

const target = () =>
  fc.oneof(
    { weight: 20, arbitrary: fc.tuple(fc.constantFrom("/", "/items/42", "/a/b.c", "/search", "*"), mostly("", "?q=1", "?a=b&c=d", "?x?y", "#frag", "?q#f")).map(([p, q]) => p + q) },
    { weight: 4, arbitrary: pick("http://orders/x", "http://orders:80/x?y=1", "http://user@orders/x", "http://[::1]:8080/", "http://orders", "HTTP://a.b/c", "http://orders?x") },
    { weight: 3, arbitrary: text(1, 12, 8).map((t) => `/${t}`) },
    { weight: 1, arbitrary: pick("", "x", "http:/x", "http://a@b@c/", "/a\tb", "/\x7f", "/\xe9", "/a\x00", "http//x", "1http://x/") },
  );

const requestLine = () =>
  fc
    .record({
      method: fc.oneof({ weight: 30, arbitrary: pick("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH") }, { weight: 2, arbitrary: pick("M-SEARCH", "QUERY", "PURGE", "SOURCE", "PROPFIND") }, { weight: 1, arbitrary: pick("get", "GETX", "FOO", "", "G ET") }),
      sp: mostly(" ", "  ", "\t"),
      target: target(),
      sp2: mostly(" ", "  ", "\t"),
      version: mostly("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.0", "http/1.1", "HTTP/11", "HTTP/1.1 "),
      end: lineEnd(),
    })
    .map((l) => `${l.method}${l.sp}${l.target}${l.sp2}${l.version}${l.end}`);

/** A request's fields never ask to upgrade or to tunnel here: this server answers those as plain requests (see docs). */
const requestField = (bodyLength: number) => field(bodyLength).filter((f) => !/upgrade/i.test(f.name) && !/upgrade/i.test(f.value));

const oneRequest = (): fc.Arbitrary<string> =>
  fc
    .record({
      line: requestLine(),
      framing: fc.constantFrom("length", "chunked", "none") as fc.Arbitrary<"length" | "chunked" | "none">,
      body: bodyBytes(40),
    })
    .chain((r) =>
      fc
        .record({
          framingFields: framingFields(r.framing === "none" ? "close" : r.framing, r.body.length),
          others: fc.array(requestField(r.body.length), { maxLength: 5 }),
          host: mostly(["Host", "orders"], ["host", ""], ["HOST", "a, b"]),
          chunked: chunkedBody(2),
          headEnd: mostly("\r\n", "\n", "\r", " \r\n"),
          order: fc.nat(),
        })
        .map((h) => {
          const fields = [{ name: h.host[0]!, value: h.host[1]!, separator: ": ", end: "\r\n", fold: "" }, ...h.others];
          for (const f of h.framingFields) fields.splice(h.order % (fields.length + 1), 0, f);
          const payload = r.framing === "chunked" ? h.chunked : r.framing === "length" ? r.body : "";
          return r.line + fields.map(fieldLine).join("") + h.headEnd + payload;
        }),
    );

/** The bytes of one connection: one to three requests in a row (pipelined), cut and split at random. */
export const requests = (): fc.Arbitrary<Case> =>
  fc
    .record({ lead: mostly("", "\r\n"), list: fc.array(oneRequest(), { minLength: 1, maxLength: 3 }) })
    .chain(({ lead, list }) => {
      const bytes = Buffer.from(lead + list.join(""), "latin1");
      return cutAndSplit(bytes).map((cut) => ({ method: "", ...cut }));
    });

/**
 * `bytes` as a connection may deliver them: most often whole, sometimes cut short at a random
 * point (an early close), and split into up to seven TCP segments at random points.
 */
function cutAndSplit(bytes: Buffer): fc.Arbitrary<{ bytes: Buffer; segments: Buffer[] }> {
  return fc
    .record({
      cut: fc.oneof({ weight: 6, arbitrary: fc.constant(bytes.length) }, { weight: 1, arbitrary: fc.nat({ max: bytes.length }) }),
      splits: fc.array(fc.nat({ max: Math.max(bytes.length, 1) }), { maxLength: 6 }),
    })
    .map(({ cut, splits }) => {
      const kept = bytes.subarray(0, cut);
      const points = [...new Set(splits.filter((p) => p > 0 && p < kept.length))].sort((a, b) => a - b);
      const segments: Buffer[] = [];
      let from = 0;
      for (const p of [...points, kept.length]) {
        if (p > from) segments.push(kept.subarray(from, p));
        from = p;
      }
      return { bytes: kept, segments };
    });
}
