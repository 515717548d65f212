import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { connect, createServer as createNetServer } from "node:net";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../workers/local.ts";
import { Http1Error } from "./errors.ts";
import { DEFAULT_MAX_HEADER_COUNT } from "./fields.ts";
import { Pool } from "./pool.ts";
import type { DispatchHandler, DispatchOptions, PoolOptions } from "./pool.ts";

/** What a request came to, and every callback in order (to check the exactly-once rules). */
interface Result {
  status: number;
  headers: string[];
  body: Buffer;
  trailers: string[];
  calls: string[];
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Polls `condition` every 10 ms for up to 10 s: tests wait for states, never for fixed times. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A `node:http` server on an ephemeral loopback port, with the sockets it accepted. */
async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void, setup?: (server: Server) => void): Promise<{ origin: string; server: Server; sockets: Socket[] }> {
  const server = createHttpServer(handler);
  setup?.(server);
  const sockets: Socket[] = [];
  server.on("connection", (socket) => sockets.push(socket));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as { port: number };
  return { origin: `http://127.0.0.1:${port}`, server, sockets };
}

/** A raw `net` server that hands each accepted socket to `onSocket`. */
async function rawServer(onSocket: (socket: Socket, index: number) => void): Promise<{ origin: string; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createNetServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => {});
    onSocket(socket, sockets.length - 1);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as { port: number };
  return { origin: `http://127.0.0.1:${port}`, sockets };
}

function pool(origin: string, options?: PoolOptions): Pool {
  const p = new Pool(origin, options);
  cleanups.push(() => p.destroy());
  return p;
}

/** Dispatches and collects the outcome; `hooks` may stand in for the handler's callbacks. */
function send(p: Pool, options: DispatchOptions, hooks: Partial<DispatchHandler> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const result: Result = { status: 0, headers: [], body: Buffer.alloc(0), trailers: [], calls: [] };
    const chunks: Buffer[] = [];
    p.dispatch(options, {
      onConnect(abort) {
        result.calls.push("connect");
        hooks.onConnect?.(abort);
      },
      onHeaders(status, headers, resume) {
        result.calls.push("headers");
        result.status = status;
        result.headers = headers;
        return hooks.onHeaders?.(status, headers, resume) ?? true;
      },
      onData(chunk) {
        result.calls.push("data");
        chunks.push(Buffer.from(chunk));
        return hooks.onData?.(chunk) ?? true;
      },
      onComplete(trailers) {
        result.calls.push("complete");
        result.trailers = trailers;
        result.body = Buffer.concat(chunks);
        resolve(result);
      },
      onError(error) {
        result.calls.push("error");
        (error as Error & { calls?: string[] }).calls = result.calls;
        reject(error);
      },
    });
  });
}

const get = (path = "/"): DispatchOptions => ({ method: "GET", path, headers: [] });

describe("the HTTP/1.1 pool", () => {
  it("reuses one kept-alive connection for requests in turn, and sends the caller's fields as given", async () => {
    const seen: string[][] = [];
    const { origin, sockets } = await httpServer((req, res) => {
      seen.push(req.rawHeaders);
      res.end(`hello ${req.url}`);
    });
    const p = pool(origin);
    for (let i = 0; i < 5; i++) {
      const result = await send(p, { method: "GET", path: `/${i}?q=1`, headers: ["X-Trace", `t${i}`] });
      expect(result.status).toBe(200);
      expect(result.body.toString()).toBe(`hello /${i}?q=1`);
      expect(result.calls).toEqual(["connect", "headers", "data", "complete"]);
    }
    expect(sockets).toHaveLength(1);
    expect(seen[0]).toEqual(["X-Trace", "t0", "host", origin.slice("http://".length)]);
    expect(p.stats).toMatchObject({ connections: 1, idle: 1 });
  });

  it("keeps the caller's Host and sends bodies with their length, or chunked when streamed", async () => {
    const seen: { headers: string[]; body: string }[] = [];
    const { origin } = await httpServer(async (req, res) => {
      const parts: Buffer[] = [];
      for await (const part of req) parts.push(part as Buffer);
      seen.push({ headers: req.rawHeaders, body: Buffer.concat(parts).toString() });
      res.end();
    });
    const p = pool(origin);
    await send(p, { method: "POST", path: "/", headers: ["Host", "orders"], body: "héllo" });
    await send(p, { method: "POST", path: "/", headers: [], body: Readable.from([Buffer.from("a"), Buffer.from("bc")]) });
    await send(p, { method: "PUT", path: "/", headers: ["content-length", "3"], body: Readable.from([Buffer.from("x"), Buffer.from("yz")]) });
    await send(p, { method: "POST", path: "/", headers: [], body: null });
    expect(seen[0]).toEqual({ headers: ["Host", "orders", "content-length", "6"], body: "héllo" });
    expect(seen[1]!.headers).toContain("chunked");
    expect(seen[1]!.body).toBe("abc");
    expect(seen[2]!.headers).toEqual(expect.arrayContaining(["content-length", "3"]));
    expect(seen[2]!.headers).not.toContain("chunked");
    expect(seen[2]!.body).toBe("xyz");
    expect(seen[3]!.headers).toEqual(expect.arrayContaining(["content-length", "0"]));
  });

  it("refuses a request whose fields or target would split it, and sends nothing", async () => {
    const { origin, sockets } = await rawServer(() => {});
    const p = pool(origin);
    for (const options of [
      { method: "GET", path: "/", headers: ["x", "a\r\nInjected: 1"] },
      { method: "GET", path: "/", headers: ["x y", "a"] },
      { method: "GET", path: "/ HTTP/1.1\r\nX: y", headers: [] },
      { method: "GET /", path: "/", headers: [] },
      { method: "POST", path: "/", headers: ["content-length", "5"], body: "abc" },
    ]) {
      const error = await send(p, options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Http1Error);
      expect((error as Http1Error).code).toBe("invalid-request");
      expect((error as Http1Error).message).not.toContain("Injected");
    }
    expect(sockets).toHaveLength(0);
    expect(p.stats.connections).toBe(0);
  });

  it("opens a new connection after the server closes an idle one", async () => {
    const { origin, sockets, server } = await httpServer((_req, res) => res.end("ok"));
    const p = pool(origin);
    await send(p, get());
    // The server drops its idle connections; the pool notices and forgets the socket.
    server.closeIdleConnections();
    await until(() => p.stats.connections === 0, "the pool to drop the closed connection");
    expect((await send(p, get())).body.toString()).toBe("ok");
    expect(sockets).toHaveLength(2);
  });

  it("closes its own idle connections after the idle timeout", async () => {
    const { origin, sockets } = await httpServer((_req, res) => res.end("ok"));
    const p = pool(origin, { idleTimeoutMs: 50 });
    await send(p, get());
    await until(() => p.stats.connections === 0 && sockets[0]!.destroyed, "the idle connection to close");
  });

  it("does not reuse a connection after Connection: close, nor after an HTTP/1.0 response without keep-alive", async () => {
    let n = 0;
    const { origin, sockets } = await rawServer((socket) => {
      socket.once("data", () => {
        n++;
        socket.write(n === 1 ? "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na" : "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb");
      });
    });
    const p = pool(origin);
    expect((await send(p, get())).body.toString()).toBe("a");
    expect((await send(p, get())).body.toString()).toBe("b");
    await until(() => p.stats.connections === 0, "both connections to close");
    expect(sockets).toHaveLength(2);
  });

  it("sends an idempotent request once more when a kept-alive connection closes before any response byte, and not a POST", async () => {
    // The server answers the first request on each connection, then closes the connection
    // on the next one without answering: the race with a server closing an idle connection.
    const { origin, sockets } = await rawServer((socket) => {
      let requests = 0;
      socket.on("data", () => {
        if (++requests === 1) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        else socket.destroy();
      });
    });
    const p = pool(origin);
    await send(p, get());
    const retried = await send(p, get());
    expect(retried.body.toString()).toBe("ok");
    expect(sockets).toHaveLength(2);

    const error = await send(p, { method: "POST", path: "/", headers: [], body: "x" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Http1Error);
    expect((error as Http1Error).code).toBe("connection-reset");
    expect((error as Http1Error).beforeResponse).toBe(true);
    expect(sockets).toHaveLength(2);
  });

  it("pauses the socket while a slow consumer holds the body, and resumes when asked", async () => {
    const total = 32 * 1024 * 1024;
    let blocked = false;
    let sent = 0;
    const { origin } = await httpServer((_req, res) => {
      res.writeHead(200, { "content-length": total });
      const piece = Buffer.alloc(64 * 1024, 7);
      const pump = () => {
        while (sent < total) {
          sent += piece.length;
          if (!res.write(piece)) {
            blocked = true;
            res.once("drain", () => {
              blocked = false;
              pump();
            });
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const p = pool(origin);
    let received = 0;
    let resume: (() => void) | undefined;
    let paused = false;
    const done = send(
      p,
      get(),
      {
        onHeaders: (_s, _h, r) => {
          resume = r;
          return true;
        },
        onData: (chunk) => {
          received += chunk.length;
          if (!paused) {
            paused = true;
            return false;
          }
          return true;
        },
      },
    );
    // Once the client paused, the server fills the socket and stays blocked.
    await until(() => paused && blocked && sent < total, "the server to be blocked by the paused client");
    // While paused the client took one read and nothing more.
    expect(received).toBeLessThanOrEqual(1024 * 1024);
    resume!();
    const result = await done;
    expect(received).toBe(total);
    expect(result.calls.at(-1)).toBe("complete");
  });

  it("reads the next response on a connection whose last body chunk came with a pause nobody lifts", async () => {
    // A consumer whose buffer filled on the body's last chunk asks for a pause; the body then
    // ends and no resume ever comes. The pause was that response's: the kept-alive
    // connection must carry the next request (it hung before, paused and idle).
    const { origin, sockets } = await httpServer((req, res) => res.end(`body of ${req.url}`));
    const p = pool(origin);
    const first = await send(p, get("/1"), { onData: () => false });
    expect(first.body.toString()).toBe("body of /1");
    expect(first.calls.at(-1)).toBe("complete");
    const second = await send(p, get("/2"));
    expect(second.body.toString()).toBe("body of /2");
    expect(sockets).toHaveLength(1);
  });

  it("reads the next response on a connection whose response ended in the bytes held while paused", async () => {
    // Each response in one write: the pause on its data leaves the closing chunk unread,
    // and the resume then ends the response from those held bytes.
    const { origin, sockets } = await rawServer((socket) => {
      let n = 0;
      socket.on("data", () => socket.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nr${++n}!\r\n0\r\n\r\n`));
    });
    const p = pool(origin);
    let resume: (() => void) | undefined;
    const first = send(p, get("/1"), {
      onHeaders: (_s, _h, r) => {
        resume = r;
        return true;
      },
      onData: () => {
        setTimeout(() => resume!(), 10);
        return false;
      },
    });
    expect((await first).body.toString()).toBe("r1!");
    const second = await send(p, get("/2"));
    expect(second.body.toString()).toBe("r2!");
    expect(sockets).toHaveLength(1);
  });

  it("streams a large upload without holding it whole", async () => {
    const total = 64 * 1024 * 1024;
    let produced = 0;
    let serverReceived = 0;
    let serverRequest: IncomingMessage | undefined;
    const { origin } = await httpServer((req, res) => {
      serverRequest = req;
      req.pause();
      req.on("data", (chunk: Buffer) => (serverReceived += chunk.length));
      req.on("end", () => res.end(String(serverReceived)));
    });
    async function* body() {
      const piece = Buffer.alloc(64 * 1024, 1);
      while (produced < total) {
        produced += piece.length;
        yield piece;
      }
    }
    const p = pool(origin);
    const done = send(p, { method: "POST", path: "/upload", headers: [], body: body() });
    await until(() => serverRequest !== undefined, "the request to arrive");
    // The server reads nothing: once socket buffers fill, the body is no longer pulled.
    let last = -1;
    let steady = 0;
    await until(() => {
      steady = produced === last ? steady + 1 : 0;
      last = produced;
      return steady >= 20;
    }, "the upload to stall");
    expect(produced).toBeLessThan(total / 2);
    serverRequest!.resume();
    const result = await done;
    expect(result.body.toString()).toBe(String(total));
  });

  it("drops the connection when aborted mid-headers, and reports the abort once", async () => {
    const { origin, sockets } = await rawServer((socket) => socket.once("data", () => socket.write("HTTP/1.1 200 OK\r\nX-Partial: 1\r\n")));
    const p = pool(origin);
    let abort: ((reason?: Error) => void) | undefined;
    const done = send(p, get(), { onConnect: (a) => (abort = a) });
    await until(() => sockets.length === 1 && sockets[0]!.bytesRead > 0, "the request to reach the server");
    await until(() => sockets[0]!.bytesWritten > 0, "the partial head to be written");
    const reason = new Error("deadline");
    abort!(reason);
    abort!(new Error("again"));
    const error = await done.catch((e: unknown) => e);
    expect(error).toBe(reason);
    expect((error as { calls: string[] }).calls).toEqual(["connect", "error"]);
    await until(() => sockets[0]!.destroyed || sockets[0]!.readableEnded, "the server side to see the close");
    expect(p.stats.connections).toBe(0);
  });

  it("ignores an abort after the response ended, and an abort inside onConnect ends the request before it is sent", async () => {
    const { origin, sockets } = await httpServer((_req, res) => res.end("ok"));
    const p = pool(origin);
    let abort: ((reason?: Error) => void) | undefined;
    const result = await send(p, get(), { onConnect: (a) => (abort = a) });
    abort!(new Error("late"));
    expect(result.calls).toEqual(["connect", "headers", "data", "complete"]);
    expect(p.stats).toMatchObject({ connections: 1, idle: 1 });

    const early = (await send(p, get(), { onConnect: (a) => a(new Error("before")) }).catch((e: unknown) => e)) as Error & { calls: string[] };
    expect(early.message).toBe("before");
    expect(early.calls).toEqual(["connect", "error"]);
    expect(sockets).toHaveLength(1);
    expect(p.stats).toMatchObject({ connections: 1, idle: 1, queued: 0 });
  });

  it("drops the connection when aborted mid-body, and the next request gets a new one", async () => {
    const { origin, sockets } = await rawServer((socket) =>
      socket.once("data", () => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")),
    );
    const p = pool(origin);
    let abort: ((reason?: Error) => void) | undefined;
    const error = await send(p, get(), {
      onConnect: (a) => (abort = a),
      onData: () => {
        abort!();
        return true;
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Http1Error);
    expect((error as Http1Error).code).toBe("aborted");
    expect((error as { calls: string[] }).calls).toEqual(["connect", "headers", "data", "error"]);
    await until(() => p.stats.connections === 0, "the aborted connection to close");
    const second = send(p, get()).catch((e: unknown) => e);
    await until(() => sockets.length === 2, "a second connection");
    sockets[1]!.destroy();
    await second;
  });

  it("reports a response cut short by the close after its head, and an invalid response", async () => {
    const { origin } = await rawServer((socket, i) =>
      socket.once("data", () => {
        if (i === 0) socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        else socket.end("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
      }),
    );
    const p = pool(origin);
    const cut = (await send(p, get()).catch((e: unknown) => e)) as Http1Error;
    expect(cut.code).toBe("response-cut");
    expect(cut.beforeResponse).toBe(false);
    const smuggled = (await send(p, get()).catch((e: unknown) => e)) as Http1Error;
    expect(smuggled.code).toBe("invalid-response");
    expect(smuggled.beforeResponse).toBe(true);
  });

  it(`refuses a response with more than ${DEFAULT_MAX_HEADER_COUNT} fields`, async () => {
    const fields = Array.from({ length: DEFAULT_MAX_HEADER_COUNT + 1 }, (_, i) => `x-${i}: v\r\n`).join("");
    const { origin } = await rawServer((socket) => socket.once("data", () => socket.end(`HTTP/1.1 200 OK\r\n${fields}Content-Length: 0\r\n\r\n`)));
    const error = (await send(pool(origin), get()).catch((e: unknown) => e)) as Http1Error;
    expect(error.code).toBe("invalid-response");
    expect(error.message).toContain("too many header fields");
  });

  it("reads a body delimited by the close, and trailers of a chunked body", async () => {
    const { origin } = await rawServer((socket, i) =>
      socket.once("data", () => {
        if (i === 0) socket.end("HTTP/1.1 200 OK\r\n\r\nuntil the end");
        else socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nGrpc-Status: 0\r\n\r\n");
      }),
    );
    const p = pool(origin);
    expect((await send(p, get())).body.toString()).toBe("until the end");
    const chunked = await send(p, get());
    expect(chunked.body.toString()).toBe("abc");
    expect(chunked.trailers).toEqual(["Grpc-Status", "0"]);
  });

  it("tells a refused connection from a timed-out one", async () => {
    const port = await freePort("127.0.0.1");
    const refused = (await send(pool(`http://127.0.0.1:${port}`), get()).catch((e: unknown) => e)) as Http1Error;
    expect(refused.code).toBe("connect-refused");
    expect(refused.beforeResponse).toBe(true);

    // A listener whose process is stopped accepts nothing: once its backlog is full, the
    // kernel drops further SYNs, and a connect hangs until the client gives up.
    const child = spawn(process.execPath, ["-e", "require('net').createServer().listen({ port: 0, host: '127.0.0.2', backlog: 1 }, function () { console.log(this.address().port) })"], { stdio: ["ignore", "pipe", "inherit"] });
    cleanups.push(() => child.kill("SIGKILL"));
    const [line] = (await once(child.stdout!, "data")) as [Buffer];
    const stoppedPort = Number(line.toString().trim());
    child.kill("SIGSTOP");
    const fillers: Socket[] = [];
    cleanups.push(() => fillers.forEach((s) => s.destroy()));
    for (let i = 0; i < 8; i++) {
      const s = connect({ host: "127.0.0.2", port: stoppedPort });
      s.on("error", () => {});
      fillers.push(s);
    }
    const timedOut = (await send(pool(`http://127.0.0.2:${stoppedPort}`, { connectTimeoutMs: 300 }), get()).catch((e: unknown) => e)) as Http1Error;
    expect(timedOut.code).toBe("connect-timeout");
    expect(timedOut.beforeResponse).toBe(true);
  });

  it("queues requests beyond the connection limit and serves them in order", async () => {
    const order: string[] = [];
    const { origin, sockets } = await httpServer((req, res) => {
      order.push(req.url!);
      res.end(req.url);
    });
    const p = pool(origin, { connections: 1 });
    const results = await Promise.all(["/a", "/b", "/c"].map((path) => send(p, get(path))));
    expect(results.map((r) => r.body.toString())).toEqual(["/a", "/b", "/c"]);
    expect(order).toEqual(["/a", "/b", "/c"]);
    expect(sockets).toHaveLength(1);
  });

  it("lets requests in flight finish on close, refuses new ones, and fails them all on destroy", async () => {
    let hold: ServerResponse | undefined;
    const { origin } = await httpServer((req, res) => {
      if (req.url === "/hold") hold = res;
      else res.end("ok");
    });
    const p = pool(origin);
    const inFlight = send(p, get("/hold"));
    await until(() => hold !== undefined, "the request to arrive");
    const closed = p.close();
    const refused = (await send(p, get()).catch((e: unknown) => e)) as Http1Error;
    expect(refused.code).toBe("closed");
    hold!.end("late");
    expect((await inFlight).body.toString()).toBe("late");
    await closed;
    expect(p.stats.connections).toBe(0);

    const q = pool(origin);
    hold = undefined;
    const cut = send(q, get("/hold")).catch((e: unknown) => e);
    await until(() => hold !== undefined, "the second request to arrive");
    await q.destroy();
    expect(((await cut) as Http1Error).code).toBe("closed");
  });

  it("does not reuse a connection the server answered before the request body was written whole", async () => {
    const { origin, sockets } = await rawServer((socket) => socket.once("data", () => socket.write("HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")));
    const p = pool(origin);
    const never = new Readable({ read() {} });
    never.push("start");
    const result = await send(p, { method: "POST", path: "/", headers: [], body: never });
    expect(result.status).toBe(413);
    await until(() => p.stats.connections === 0, "the connection to be dropped");
    expect(sockets).toHaveLength(1);
  });
});
