import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_HEADER_SIZE } from "./fields.ts";
import { parseWithLlhttp, parseWithOurs, response, show } from "./fuzz.ts";
import type { Outcome } from "./fuzz.ts";

const bytes = (text: string) => [Buffer.from(text, "latin1")];
const both = (text: string, method = "GET"): [Outcome, Outcome] => [parseWithOurs(bytes(text), method), parseWithLlhttp(bytes(text), method)];

describe("the response parser against llhttp", () => {
  it("parses thousands of generated responses, valid and not, split and cut at random, as llhttp does", () => {
    // fast-check prints the seed and the shrunk counterexample when this fails; set
    // FC_SEED to replay one.
    const seed = process.env.FC_SEED === undefined ? Date.now() : Number(process.env.FC_SEED);
    const kinds = { complete: 0, cut: 0, refused: 0 };
    fc.assert(
      fc.property(response(), (c) => {
        const ours = parseWithOurs(c.segments, c.method);
        const theirs = parseWithLlhttp(c.segments, c.method);
        kinds[theirs.kind]++;
        if (JSON.stringify(ours) !== JSON.stringify(theirs)) throw new Error(`${show(c)}\n  llhttp: ${JSON.stringify(theirs)}\n  ours:   ${JSON.stringify(ours)}`);
      }),
      { numRuns: 6_000, seed },
    );
    // The generator must reach every outcome often, or the comparison proves little.
    expect(kinds.complete).toBeGreaterThan(1_000);
    expect(kinds.cut).toBeGreaterThan(100);
    expect(kinds.refused).toBeGreaterThan(1_000);
  });

  it("gives the same result for a response cut at every byte and split at every byte", () => {
    const messages = [
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
      "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil the close",
      "\r\nHTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
    ];
    for (const text of messages) {
      const all = Buffer.from(text, "latin1");
      for (let i = 0; i <= all.length; i++) {
        const cut = [all.subarray(0, i)];
        expect(parseWithOurs(cut, "GET"), `cut at ${i}: ${JSON.stringify(text)}`).toEqual(parseWithLlhttp(cut, "GET"));
        const split = [all.subarray(0, i), all.subarray(i)];
        const ours = parseWithOurs(split, "GET");
        expect(ours, `split at ${i}`).toEqual(parseWithLlhttp(split, "GET"));
        expect(ours.kind).toBe("complete");
      }
    }
  });
});

describe("request smuggling and desync defences, as llhttp", () => {
  const refused: [string, string][] = [
    ["CL.TE: Content-Length then Transfer-Encoding", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
    ["TE.CL: Transfer-Encoding then Content-Length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"],
    ["duplicate Content-Length, same value", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"],
    ["duplicate Content-Length, different values", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"],
    ["a Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc"],
    ["a signed Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc"],
    ["an empty Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"],
    ["an empty Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\nabc"],
    ["obs-fold in a field", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"],
    ["obs-fold with a tab", "HTTP/1.1 200 OK\r\nX: a\r\n\tb\r\nContent-Length: 0\r\n\r\n"],
    ["whitespace before the first field", "HTTP/1.1 200 OK\r\n X: a\r\nContent-Length: 0\r\n\r\n"],
    ["bare LF after the status line", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"],
    ["bare LF after a field", "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"],
    ["bare LF ending the header section", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"],
    ["bare CR in a field value", "HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n"],
    ["bare CR in the status line", "HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n"],
    ["bare LF after a chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n"],
    ["bare LF after chunk data", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n"],
    ["whitespace after a chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n"],
    ["whitespace before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc"],
    ["a NUL in a field value", "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n"],
    ["a DEL in a field value", "HTTP/1.1 200 OK\r\nX: a\x7fb\r\nContent-Length: 0\r\n\r\n"],
    ["a non-token field name", "HTTP/1.1 200 OK\r\nX(y): a\r\nContent-Length: 0\r\n\r\n"],
    ["an empty field name", "HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 0\r\n\r\n"],
    ["Content-Length in the trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n"],
    ["an unknown HTTP version", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n"],
    ["a four-digit status", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"],
    ["a response after a 1xx that closed the connection", "HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
  ];
  for (const [name, text] of refused) {
    it(`refuses ${name}`, () => {
      const [ours, theirs] = both(text);
      expect(theirs.kind).not.toBe("complete");
      expect(ours).toEqual(theirs);
    });
  }

  it("reads a body until the close when the last transfer coding is not chunked, as llhttp does for responses", () => {
    const [ours, theirs] = both("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    expect(ours).toEqual(theirs);
    expect(ours).toMatchObject({ kind: "complete", body: "3\r\nabc\r\n0\r\n\r\n" });
  });

  it("takes chunked as the last coding across fields and in any case", () => {
    const [ours, theirs] = both("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    expect(ours).toEqual(theirs);
    expect(ours).toMatchObject({ kind: "complete", body: "abc" });
  });

  it("has no body after HEAD, 204 and 304 whatever the framing fields say", () => {
    for (const [text, method] of [
      ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD"],
      ["HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "GET"],
      ["HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET"],
    ] as const) {
      const [ours, theirs] = both(text, method);
      expect(ours).toEqual(theirs);
      expect(ours).toMatchObject({ kind: "complete", body: "" });
    }
  });

  it("skips interim responses and reads the final one", () => {
    const [ours, theirs] = both("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    expect(ours).toEqual(theirs);
    expect(ours).toMatchObject({ kind: "complete", status: 200, body: "ok" });
  });

  it("refuses a body cut short by the close", () => {
    const [ours, theirs] = both("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    expect(ours).toEqual(theirs);
    expect(ours.kind).toBe("cut");
  });
});

describe("where the parser is stricter than llhttp, on purpose", () => {
  it("refuses 101, which this client never asks for", () => {
    expect(parseWithOurs(bytes("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n"), "GET").kind).toBe("refused");
    expect(parseWithOurs(bytes("HTTP/1.1 101 Switching Protocols\r\n\r\n"), "GET").kind).toBe("refused");
  });

  it("refuses RTSP and ICE status lines", () => {
    expect(parseWithOurs(bytes("RTSP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), "GET").kind).toBe("refused");
    expect(parseWithOurs(bytes("ICE/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), "GET").kind).toBe("refused");
  });
});

describe("limits", () => {
  const withFields = (count: number, valueLength = 1) => `HTTP/1.1 200 OK\r\n${Array.from({ length: count }, (_, i) => `x-${i}: ${"v".repeat(valueLength)}\r\n`).join("")}Content-Length: 0\r\n\r\n`;

  it(`takes ${DEFAULT_MAX_HEADER_COUNT} fields and refuses one more`, () => {
    expect(parseWithOurs(bytes(withFields(DEFAULT_MAX_HEADER_COUNT - 1)), "GET").kind).toBe("complete");
    expect(parseWithOurs(bytes(withFields(DEFAULT_MAX_HEADER_COUNT)), "GET").kind).toBe("refused");
  });

  it(`refuses a header section over ${DEFAULT_MAX_HEADER_SIZE} bytes, whole or in pieces, as llhttp does`, () => {
    const big = `HTTP/1.1 200 OK\r\nx: ${"v".repeat(DEFAULT_MAX_HEADER_SIZE)}\r\nContent-Length: 0\r\n\r\n`;
    const all = Buffer.from(big, "latin1");
    const pieces = Array.from({ length: Math.ceil(all.length / 1000) }, (_, i) => all.subarray(i * 1000, (i + 1) * 1000));
    expect(parseWithLlhttp([all], "GET").kind).toBe("refused");
    expect(parseWithOurs([all], "GET").kind).toBe("refused");
    expect(parseWithOurs(pieces, "GET").kind).toBe("refused");
    // One line that never ends is refused too, once it passes the limit.
    expect(parseWithOurs([Buffer.from(`HTTP/1.1 200 OK\r\nx: ${"v".repeat(DEFAULT_MAX_HEADER_SIZE)}`)], "GET").kind).toBe("refused");
    const fits = withFields(20, 500);
    expect(parseWithOurs(bytes(fits), "GET")).toEqual(parseWithLlhttp(bytes(fits), "GET"));
    expect(parseWithOurs(bytes(fits), "GET").kind).toBe("complete");
  });

  it("applies the same limits to a trailer section", () => {
    const trailers = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${Array.from({ length: DEFAULT_MAX_HEADER_COUNT + 1 }, (_, i) => `t-${i}: v\r\n`).join("")}\r\n`;
    expect(parseWithOurs(bytes(trailers), "GET").kind).toBe("cut");
  });
});
