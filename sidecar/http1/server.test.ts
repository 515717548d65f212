import { once } from "node:events";
import { createServer as createNodeServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { connect, createServer as createNetServer } from "node:net";
import type { Socket } from "node:net";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_MAX_HEADER_SIZE } from "./fields.ts";
import { parseRequestsWithLlhttp, parseRequestsWithOurs, requests, show } from "./fuzz.ts";
import { ResponseParser } from "./response-parser.ts";
import { createServer } from "./server.ts";
import type { Http1Server, LightRequest, ResponseWriter, ServerOptions } from "./server.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Polls `condition` every 10 ms for up to 10 s. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** What a request looked like to a handler, sent back in a response field (so HEAD shows it too). */
interface Echo {
  method: string;
  target: string;
  headers: string[];
  body: string;
  trailers: string[];
}

const echoField = (echo: Echo) => Buffer.from(JSON.stringify(echo), "latin1").toString("base64");

async function ours(options: ServerOptions = {}, handler?: (req: LightRequest, res: ResponseWriter) => void): Promise<{ server: Http1Server; port: number }> {
  const server = createServer(
    handler ??
      ((req, res) => {
        const chunks: Buffer[] = [];
        req.body.on("data", (chunk) => chunks.push(Buffer.from(chunk)));
        req.body.on("end", () => {
          const echo = { method: req.method, target: req.target, headers: req.headers, body: Buffer.concat(chunks).toString("latin1"), trailers: req.body.trailers };
          res.writeHead(200, ["x-echo", echoField(echo), "content-length", "2"]);
          res.end("ok");
        });
      }),
    options,
  );
  await server.listen(0, "127.0.0.1");
  cleanups.push(() => server.destroy());
  return { server, port: server.address().port };
}

async function nodes(): Promise<number> {
  // The answer's length is declared: without it node:http closes after answering an HTTP/1.0
  // keep-alive request (it cannot frame the body otherwise), which is no parser difference.
  const server = createNodeServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const echo = { method: req.method!, target: req.url!, headers: req.rawHeaders, body: Buffer.concat(chunks).toString("latin1"), trailers: req.rawTrailers };
      res.writeHead(200, ["x-echo", echoField(echo), "content-length", "2"]);
      res.end("ok");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as { port: number }).port;
}

/** A raw client: writes `segments` and reads responses (skipping `1xx`) until `count` came or the server closed. */
function exchange(port: number, segments: Buffer[], count: number, method = (_i: number) => "GET"): Promise<{ statuses: number[]; fields: string[][]; closed: boolean; raw: string }> {
  return new Promise((resolve, reject) => {
    const statuses: number[] = [];
    const fields: string[][] = [];
    let raw = "";
    const socket = connect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer after ${statuses.length} responses: ${JSON.stringify(raw.slice(0, 300))}`));
    }, Number(process.env.EXCHANGE_MS ?? 10_000));
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ statuses, fields, closed, raw });
    };
    const parser: ResponseParser = new ResponseParser({
      onHead: (status, f) => {
        statuses.push(status);
        fields.push(f);
      },
      onBody: () => {},
      onComplete: () => {
        parser.expect(method(statuses.length));
        if (statuses.length === count) finish(false);
      },
    });
    parser.expect(method(0));
    socket.on("data", (chunk) => {
      raw += chunk.toString("latin1");
      let rest = chunk;
      while (rest.length > 0 && statuses.length < count + 1) {
        const at = parser.execute(rest);
        if (at < 0 || at >= rest.length) break;
        rest = rest.subarray(at);
      }
    });
    socket.on("close", () => finish(true));
    socket.on("error", () => {});
    socket.on("connect", async () => {
      for (const segment of segments) {
        socket.write(segment);
        await new Promise((r) => setImmediate(r));
      }
    });
  });
}

const echoes = (fields: string[][]) =>
  fields.map((f) => {
    const at = f.findIndex((name, i) => i % 2 === 0 && name.toLowerCase() === "x-echo");
    return at < 0 ? null : (JSON.parse(Buffer.from(f[at + 1]!, "base64").toString("latin1")) as Echo);
  });

describe("the HTTP/1.1 server against Node's http server", () => {
  it("answers generated request streams as node:http does: the same requests seen, the same refusals", async () => {
    const port = await ours();
    const nodePort = await nodes();
    const seed = process.env.FC_SEED === undefined ? Date.now() : Number(process.env.FC_SEED);
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(requests(), async (c) => {
        // Input cut inside a request leaves both servers waiting for the rest: not compared here.
        // So is input this parser still reads as unfinished (a line it checks once whole).
        const oracle = parseRequestsWithLlhttp(c.segments);
        if (oracle.end === "cut" || parseRequestsWithOurs(c.segments).end === "cut") return;
        compared++;
        const methods = (i: number) => oracle.requests[i]?.method ?? "GET";
        const expected = oracle.requests.length + (oracle.end === "refused" ? 1 : 0);
        if (expected === 0) return;
        const a = await exchange(nodePort, c.segments, expected, methods).catch((e: Error) => Promise.reject(new Error(`node:http: ${e.message} for ${show(c)}`)));
        const b = await exchange(port.port, c.segments, expected, methods).catch((e: Error) => Promise.reject(new Error(`ours: ${e.message} for ${show(c)}`)));
        const view = (r: typeof a) => ({ statuses: r.statuses.map((s) => (s === 431 ? 400 : s)), echoes: echoes(r.fields) });
        const [x, y] = [view(a), view(b)];
        // Refused input: node:http answers the refusal as soon as it parses the bad bytes,
        // dropping requests before them that it had not answered yet; this server answers
        // those first. So node's answers must be a prefix of ours, and ours end refusing,
        // or (when the bad bytes follow a request that closed the connection) with that
        // request answered and the connection closed, the rest unread.
        const seen = x.echoes.filter((e) => e !== null);
        const closedFirst = oracle.requests.at(-1)?.keepAlive === false && y.statuses.length === oracle.requests.length && b.closed;
        // After a request that closes the connection, node:http answers the bytes that follow
        // with a 400 only when they arrive before its response went out; otherwise it answers
        // that request and closes, as this server always does. Either is node's answer.
        const agree =
          oracle.end === "clean"
            ? JSON.stringify(x) === JSON.stringify(y)
            : (x.statuses.at(-1)! >= 400 &&
                (y.statuses.at(-1) === x.statuses.at(-1) || closedFirst) &&
                JSON.stringify(seen) === JSON.stringify(y.echoes.slice(0, seen.length))) ||
              (closedFirst && a.closed && JSON.stringify(x) === JSON.stringify(y));
        if (!agree) throw new Error(`${show(c)}\n  node:http: ${JSON.stringify(x)}\n  ours:      ${JSON.stringify(y)}`);
      }),
      { numRuns: Number(process.env.RUNS ?? 250), seed, endOnFailure: process.env.RUNS !== undefined },
    );
    expect(compared).toBeGreaterThan(150);
  });
});

describe("the HTTP/1.1 server", () => {
  it("answers pipelined requests in order on one connection", async () => {
    const { port } = await ours();
    const text = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcPOST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nT: v\r\n\r\n";
    const result = await exchange(port, [Buffer.from(text)], 3);
    expect(result.statuses).toEqual([200, 200, 200]);
    expect(echoes(result.fields).map((e) => [e!.target, e!.body, e!.trailers])).toEqual([
      ["/1", "", []],
      ["/2", "abc", []],
      ["/3", "z", ["T", "v"]],
    ]);
    expect(result.closed).toBe(false);
  });

  it("closes after an HTTP/1.0 request unless it asks for keep-alive, and after Connection: close", async () => {
    const { port } = await ours();
    const plain = await exchange(port, [Buffer.from("GET / HTTP/1.0\r\n\r\n")], 2);
    expect(plain.statuses).toEqual([200]);
    expect(plain.closed).toBe(true);
    const kept = await exchange(port, [Buffer.from("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")], 2);
    expect(kept.statuses).toEqual([200, 200]);
    expect(kept.raw.toLowerCase()).toContain("connection: keep-alive");
    expect(kept.closed).toBe(false);
    const closing = await exchange(port, [Buffer.from("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")], 2);
    expect(closing.statuses).toEqual([200]);
    expect(closing.closed).toBe(true);
  });

  it("answers 100 Continue before the body of a request that expects it", async () => {
    const { port } = await ours();
    const socket = connect({ host: "127.0.0.1", port });
    cleanups.push(() => socket.destroy());
    let received = "";
    socket.on("data", (chunk) => (received += chunk.toString("latin1")));
    socket.write("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    await until(() => received.includes("\r\n\r\n"), "the interim response");
    expect(received).toBe("HTTP/1.1 100 Continue\r\n\r\n");
    socket.write("hi");
    await until(() => received.includes("ok"), "the final response");
    expect(received).toContain("HTTP/1.1 200 OK");
  });

  it("refuses smuggling attempts with 400, weft-error and a JSON body, then closes", async () => {
    const { port } = await ours();
    for (const text of [
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
      "GET / HTTP/1.1\nHost: a\r\n\r\n",
    ]) {
      const result = await exchange(port, [Buffer.from(text)], 2);
      expect(result.statuses, text).toEqual([400]);
      expect(result.closed).toBe(true);
      expect(result.raw).toContain("weft-error: bad-request");
      const body = JSON.parse(result.raw.slice(result.raw.indexOf("\r\n\r\n") + 4)) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("bad-request");
    }
  });

  it(`answers 431 to a header section over ${DEFAULT_MAX_HEADER_SIZE} bytes, and 400 to a request without Host`, async () => {
    const { port } = await ours();
    const big = await exchange(port, [Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nx: ${"v".repeat(DEFAULT_MAX_HEADER_SIZE)}\r\n\r\n`)], 2);
    expect(big.statuses).toEqual([431]);
    expect(big.closed).toBe(true);
    const hostless = await exchange(port, [Buffer.from("GET / HTTP/1.1\r\n\r\n")], 2);
    expect(hostless.statuses).toEqual([400]);
  });

  it("keeps reading after a refusal so the client gets the whole answer (lingering close)", async () => {
    const { server, port } = await ours({ lingerMs: 300 });
    const socket = connect({ host: "127.0.0.1", port });
    cleanups.push(() => socket.destroy());
    let received = "";
    let failed: Error | undefined;
    socket.on("error", (error) => (failed = error));
    await once(socket, "connect");
    // A bad request followed by more bytes the server will not parse. The client reads
    // nothing until the server has closed: had the server closed with those bytes unread,
    // its reset would have made the client's kernel drop the answer.
    socket.pause();
    socket.write(`GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n${"x".repeat(256 * 1024)}`);
    await until(() => server.connections === 0, "the server to close the connection");
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    socket.resume();
    await until(() => socket.destroyed || socket.readableEnded || failed !== undefined, "the client to see the close");
    expect(failed).toBeUndefined();
    expect(received).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(received).toContain('"code":"bad-request"');
  });

  it("closes, without an answer, a connection whose request head does not come within the headers timeout", async () => {
    const { port } = await ours({ headersTimeoutMs: 100 });
    const result = await exchange(port, [Buffer.from("GET / HTTP/1.1\r\nHost: a\r\n")], 2);
    expect(result.statuses).toEqual([]);
    expect(result.raw).toBe("");
    expect(result.closed).toBe(true);
  });

  it("closes a kept-alive connection left idle past the keep-alive timeout", async () => {
    const { port } = await ours({ keepAliveTimeoutMs: 100 });
    const socket = connect({ host: "127.0.0.1", port });
    cleanups.push(() => socket.destroy());
    let closed = false;
    let received = "";
    socket.on("data", (chunk) => (received += chunk.toString("latin1")));
    socket.on("close", () => (closed = true));
    socket.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    await until(() => received.includes("ok"), "the response");
    await until(() => closed, "the idle connection to close");
  });

  it("gives a new connection the keep-alive timeout, not the headers timeout, to send its first byte", async () => {
    // A pool holds a connection it opened for a request that was then cancelled as it holds
    // any idle one; closing it at the headers timeout raced the pool's next request on it.
    const { port } = await ours({ headersTimeoutMs: 100, keepAliveTimeoutMs: 60_000 });
    const silent = connect({ host: "127.0.0.1", port });
    cleanups.push(() => silent.destroy());
    let closed = false;
    silent.on("close", () => (closed = true));
    await once(silent, "connect");
    // Five headers timeouts of silence, then a request.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(closed, "the silent connection was closed at the headers timeout").toBe(false);
    let received = "";
    silent.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    silent.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    await until(() => received.includes("ok"), "the response");
    // Once a request has begun, its head is held to the headers timeout.
    silent.write("GET / HTTP/1.1\r\nHost: a\r\n");
    await until(() => closed, "the connection with half a head to close");
  });

  it("closes a new connection that sends nothing once the keep-alive timeout passes", async () => {
    const { port } = await ours({ headersTimeoutMs: 60_000, keepAliveTimeoutMs: 100 });
    const result = await exchange(port, [], 1);
    expect(result.raw).toBe("");
    expect(result.closed).toBe(true);
  });

  it("says connection: close on a response sent before the request body is in, and keeps alive one sent after", async () => {
    const { port } = await ours({}, (req, res) => {
      if (req.target === "/early") {
        // Answered at once, as a policy refusal or a spent deadline is: the body is not read.
        res.writeHead(403, ["content-length", "2"]);
        return void res.end("no");
      }
      req.body.on("data", () => {});
      req.body.on("end", () => {
        res.writeHead(200, ["content-length", "2"]);
        res.end("ok");
      });
    });
    // The body is declared but only part of it is sent: the server cannot reuse the connection.
    const early = await exchange(port, [Buffer.from("POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")], 1);
    expect(early.statuses).toEqual([403]);
    expect(early.raw).toMatch(/\r\nconnection: close\r\n/i);
    const read = await exchange(port, [Buffer.from("POST /read HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"), Buffer.from("GET /read HTTP/1.1\r\nHost: a\r\n\r\n")], 2);
    expect(read.statuses).toEqual([200, 200]);
    expect(read.raw).not.toMatch(/connection: close/i);
  });

  it("stops reading a request body the handler paused, and reads it whole once resumed", async () => {
    const total = 32 * 1024 * 1024;
    let got = 0;
    let body: LightRequest["body"] | undefined;
    const { port } = await ours({}, (req, res) => {
      body = req.body;
      req.body.on("data", (chunk) => (got += chunk.length));
      req.body.on("end", () => res.end(String(got)));
      req.body.pause();
    });
    const socket = connect({ host: "127.0.0.1", port });
    cleanups.push(() => socket.destroy());
    let received = "";
    socket.on("data", (chunk) => (received += chunk.toString("latin1")));
    await once(socket, "connect");
    socket.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${total}\r\n\r\n`);
    const piece = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    while (sent < total && socket.write(piece)) sent += piece.length;
    sent += piece.length;
    // The socket filled up: the paused server is not reading the body into memory.
    await until(() => body !== undefined, "the request");
    expect(sent).toBeLessThan(total);
    expect(got).toBe(0);
    body!.resume();
    while (sent < total) {
      if (!socket.write(piece)) await once(socket, "drain");
      sent += piece.length;
    }
    await until(() => received.includes(`\r\n\r\n${total}`), "the answer with the byte count");
  });

  it("lets a request in flight finish on close, and closes idle connections at once", async () => {
    let hold: ResponseWriter | undefined;
    const { server, port } = await ours({}, (req, res) => {
      if (req.target === "/hold") hold = res;
      else res.end("ok");
    });
    const idle = connect({ host: "127.0.0.1", port });
    cleanups.push(() => idle.destroy());
    let idleClosed = false;
    idle.on("close", () => (idleClosed = true));
    idle.on("data", () => {});
    idle.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const busy = exchange(port, [Buffer.from("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")], 1);
    await until(() => hold !== undefined && server.connections === 2, "both connections");
    await until(() => idle.bytesRead > 0, "the idle connection's answer");
    const closed = server.close();
    await until(() => idleClosed, "the idle connection to close");
    hold!.end("late");
    expect((await busy).statuses).toEqual([200]);
    await closed;
    expect(server.connections).toBe(0);
  });
});

/** A raw connection: what it wrote, everything it read, and when it closed. */
function rawClient(port: number): { socket: Socket; text: () => string; closed: Promise<void> } {
  const socket = connect({ host: "127.0.0.1", port });
  let text = "";
  socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
  socket.on("error", () => {});
  cleanups.push(() => socket.destroy());
  return { socket, text: () => text, closed: once(socket, "close").then(() => {}) };
}

describe("the HTTP/1.1 server as the sidecar's listener", () => {
  it("answers a header section over the limit with 431 header-too-large, also when no line ends inside the first chunk", async () => {
    const { port } = await ours();
    const client = rawClient(port);
    client.socket.write(`GET / HTTP/1.1\r\nHost: a\r\nx-big: ${"h".repeat(DEFAULT_MAX_HEADER_SIZE + 1_000)}`);
    await until(() => client.text().length > 0, "the answer");
    expect(client.text()).toMatch(/^HTTP\/1\.1 431 /);
    expect(client.text()).toContain("weft-error: header-too-large");
    expect(JSON.parse(client.text().slice(client.text().indexOf("\r\n\r\n") + 4)).error.code).toBe("header-too-large");
  });

  it("answers 400 to a client that ends its side inside a request body, and tells the handler its response will not be written", async () => {
    const settled: boolean[] = [];
    const { port } = await ours({}, (req, res) => {
      res.onClose((finished) => settled.push(finished));
      req.body.on("data", () => {});
    });
    const client = rawClient(port);
    client.socket.write("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789");
    await new Promise((resolve) => setTimeout(resolve, 30));
    client.socket.end();
    await client.closed;
    expect(client.text()).toMatch(/^HTTP\/1\.1 400 /);
    expect(client.text()).toContain("weft-error: bad-request");
    await until(() => settled.length === 1, "the response to settle");
    expect(settled).toEqual([false]);
  });

  it("sends what a response writes in one tick in one socket write: a streamed body's last chunk and its end together", async () => {
    let writes = 0;
    const { port } = await ours({}, (req, res) => {
      // Count the writes that reach the socket's handle (what a kill can cut between).
      const socket = req.socket as Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
      const write = socket._write.bind(socket);
      const writev = socket._writev.bind(socket);
      socket._write = (...a) => (writes++, write(...a));
      socket._writev = (...a) => (writes++, writev(...a));
      res.writeHead(200, ["content-type", "text/plain"]);
      res.write("last chunk");
      res.end();
    });
    const client = rawClient(port);
    client.socket.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    await until(() => client.text().endsWith("0\r\n\r\n"), "the whole chunked response");
    expect(client.text()).toContain("transfer-encoding: chunked");
    expect(client.text()).toContain("a\r\nlast chunk\r\n0\r\n\r\n");
    expect(writes).toBe(1);
  });

  it("takes a client that ends its side after a whole request as gone, as Node's server does: the connection closes, the response settles as not written", async () => {
    const settled: boolean[] = [];
    let writer: ResponseWriter | undefined;
    const { port } = await ours({}, (_req, res) => {
      writer = res;
      res.onClose((finished) => settled.push(finished));
    });
    const client = rawClient(port);
    client.socket.end("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    await client.closed;
    await until(() => settled.length === 1, "the response to settle");
    expect(settled).toEqual([false]);
    expect(client.text()).toBe("");
    // Writing to it afterwards does nothing, and throws nothing.
    writer!.end("late");
    expect(writer!.closed).toBe(true);
  });

  it("hands a connection that opens with CONNECT to `connect` with the bytes read, even split mid-method; refuses it without", async () => {
    const handed: { head: string; socket: Socket }[] = [];
    const { server, port } = await ours({
      connect: (socket, head) => {
        handed.push({ head: head.toString("latin1"), socket });
        socket.end("HTTP/1.1 200 Connection Established\r\n\r\n");
      },
    });
    const client = rawClient(port);
    client.socket.write("CONN");
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.socket.write("ECT orders:80 HTTP/1.1\r\nHost: orders:80\r\n\r\n");
    await client.closed;
    expect(handed.map((h) => h.head)).toEqual(["CONNECT orders:80 HTTP/1.1\r\nHost: orders:80\r\n\r\n"]);
    expect(client.text()).toBe("HTTP/1.1 200 Connection Established\r\n\r\n");
    // The server let go of it: it counts no connection.
    expect(server.connections).toBe(0);

    const { port: plainPort } = await ours();
    const refused = await exchange(plainPort, [Buffer.from("CONNECT orders:80 HTTP/1.1\r\nHost: orders:80\r\n\r\n")], 1);
    expect(refused.statuses).toEqual([400]);
  });

  it("serves connections accepted elsewhere (a front), and closes those over maxConnections, telling onDrop", async () => {
    let drops = 0;
    const { server, port } = await ours({ maxConnections: 1, onDrop: () => drops++ });
    const first = rawClient(port);
    first.socket.write("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    await until(() => first.text().includes("ok"), "the first answer");
    const second = rawClient(port);
    await second.closed;
    expect(second.text()).toBe("");
    expect(drops).toBe(1);

    // A connection another listener accepted, handed over as the inbound front does.
    const front = createNetServer((socket) => server.accept(socket));
    front.listen(0, "127.0.0.1");
    await once(front, "listening");
    cleanups.push(() => new Promise((resolve) => front.close(resolve)));
    const viaFront = await exchange((front.address() as { port: number }).port, [Buffer.from("GET /front HTTP/1.1\r\nHost: a\r\n\r\n")], 1);
    expect(viaFront.statuses).toEqual([200]);
    expect(echoes(viaFront.fields)[0]?.target).toBe("/front");
  });

  it("settles a response as not written when its client goes away before the end", async () => {
    const settled: boolean[] = [];
    let writer: ResponseWriter | undefined;
    const { port } = await ours({}, (_req, res) => {
      writer = res;
      res.onClose((finished) => settled.push(finished));
      res.writeHead(200, []);
      res.write("part");
    });
    const client = rawClient(port);
    client.socket.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    await until(() => client.text().includes("part"), "the first part");
    client.socket.destroy();
    await until(() => settled.length === 1, "the response to settle");
    expect(settled).toEqual([false]);
    expect(writer!.closed).toBe(true);
  });
});
