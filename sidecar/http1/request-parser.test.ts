import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_HEADER_SIZE } from "./fields.ts";
import { parseRequestsWithLlhttp, parseRequestsWithOurs, requests, show } from "./fuzz.ts";
import type { RequestsOutcome } from "./fuzz.ts";

const bytes = (text: string) => [Buffer.from(text, "latin1")];

/**
 * The two outcomes in the terms they are compared: input that ends inside a line llhttp
 * already refused is "cut" here (a line is checked once whole), so both count as failed.
 */
const comparable = (o: RequestsOutcome, other: RequestsOutcome) => ({
  requests: o.requests,
  partial: o.end === "cut" && other.end === "cut" ? o.partial : null,
  failed: o.end !== "clean",
});

function same(text: string): RequestsOutcome {
  const ours = parseRequestsWithOurs(bytes(text));
  const theirs = parseRequestsWithLlhttp(bytes(text));
  expect(comparable(ours, theirs)).toEqual(comparable(theirs, ours));
  return ours;
}

describe("the request parser against llhttp", () => {
  it("parses thousands of generated, pipelined requests, valid and not, split and cut at random, as llhttp does", () => {
    const seed = process.env.FC_SEED === undefined ? Date.now() : Number(process.env.FC_SEED);
    const kinds = { clean: 0, failed: 0, pipelined: 0 };
    fc.assert(
      fc.property(requests(), (c) => {
        const ours = parseRequestsWithOurs(c.segments);
        const theirs = parseRequestsWithLlhttp(c.segments);
        kinds[theirs.end === "clean" ? "clean" : "failed"]++;
        if (theirs.requests.length > 1) kinds.pipelined++;
        if (JSON.stringify(comparable(ours, theirs)) !== JSON.stringify(comparable(theirs, ours))) throw new Error(`${show(c)}\n  llhttp: ${JSON.stringify(theirs)}\n  ours:   ${JSON.stringify(ours)}`);
      }),
      { numRuns: 6_000, seed },
    );
    expect(kinds.clean).toBeGreaterThan(600);
    expect(kinds.failed).toBeGreaterThan(1_000);
    expect(kinds.pipelined).toBeGreaterThan(200);
  });
});

describe("request smuggling defences, as llhttp", () => {
  const refused: [string, string][] = [
    ["CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"],
    ["TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"],
    ["duplicate Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"],
    ["differing Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"],
    ["a last transfer coding other than chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"],
    ["a transfer coding only", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc"],
    ["chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
    ["a Transfer-Encoding trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"],
    ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"],
    ["obs-fold hiding Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nX: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc"],
    ["bare LF ending the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n"],
    ["bare LF ending a field", "GET / HTTP/1.1\r\nHost: a\n\r\n"],
    ["bare CR", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"],
    ["whitespace before the colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"],
    ["a space in the target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"],
    ["a control byte in the target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"],
    ["an unknown method", "FOO / HTTP/1.1\r\nHost: a\r\n\r\n"],
    ["a request after one that closed the connection", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"],
  ];
  for (const [name, text] of refused) {
    it(`refuses ${name}`, () => {
      const ours = same(text);
      expect(ours.end).not.toBe("clean");
    });
  }

  it("reads pipelined requests one after another, with their bodies", () => {
    const ours = same("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\nGET http://a/c?d HTTP/1.1\r\nHost: a\r\n\r\n");
    expect(ours.requests.map((r) => [r.method, r.target, r.body, r.trailers])).toEqual([
      ["POST", "/a", "abc", []],
      ["POST", "/b", "de", ["T", "1"]],
      ["GET", "http://a/c?d", "", []],
    ]);
  });

  it("keeps HTTP/1.0 connections only with keep-alive, and HTTP/1.1 ones unless close", () => {
    expect(same("GET / HTTP/1.0\r\n\r\n").requests[0]!.keepAlive).toBe(false);
    expect(same("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").requests[0]!.keepAlive).toBe(true);
    expect(same("GET / HTTP/1.1\r\nHost: a\r\n\r\n").requests[0]!.keepAlive).toBe(true);
    expect(same("GET / HTTP/1.1\r\nHost: a\r\nConnection: x, Close\r\n\r\n").requests[0]!.keepAlive).toBe(false);
  });
});

describe("where the request parser is stricter than llhttp, on purpose", () => {
  it("refuses HTTP/0.9 requests (no version), CONNECT, PRI and RTSP", () => {
    for (const text of ["GET /\r\n\r\n", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "OPTIONS * RTSP/1.0\r\n\r\n", "DESCRIBE / RTSP/1.0\r\n\r\n"]) {
      expect(parseRequestsWithOurs(bytes(text)).end, text).toBe("refused");
    }
  });

  it("refuses a request with an invalid transfer coding before reporting its head", () => {
    const text = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n";
    expect(parseRequestsWithOurs(bytes(text))).toEqual({ requests: [], partial: null, end: "refused" });
  });
});

describe("request limits", () => {
  it(`refuses more than ${DEFAULT_MAX_HEADER_COUNT} fields and a header section over ${DEFAULT_MAX_HEADER_SIZE} bytes`, () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `x-${i}: v\r\n`).join("");
    expect(parseRequestsWithOurs(bytes(`GET / HTTP/1.1\r\n${fields(DEFAULT_MAX_HEADER_COUNT)}\r\n`)).end).toBe("clean");
    expect(parseRequestsWithOurs(bytes(`GET / HTTP/1.1\r\n${fields(DEFAULT_MAX_HEADER_COUNT + 1)}\r\n`)).end).toBe("refused");
    expect(parseRequestsWithOurs(bytes(`GET / HTTP/1.1\r\nx: ${"v".repeat(DEFAULT_MAX_HEADER_SIZE)}\r\n\r\n`)).end).toBe("refused");
  });
});
