import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MeshError } from "../src/core/errors.ts";
import { bodyStream, type Fetch, type MeshRequest } from "../src/core/fetch.ts";
import { flatHeaders } from "../src/core/headers.ts";
import { createBridge, type Target } from "./bridge.ts";

const seen: MeshRequest[] = [];
let answer: Fetch = async () => new Response("ok");
const servers: Server[] = [];

const faults: unknown[] = [];

async function listen(target: Target, maxInFlight = 100): Promise<{ host: string; port: number }> {
  const bridge = createBridge({ target, fetch: (request) => (seen.push(request), answer(request)), maxInFlight, draining: () => false, onFault: (error) => faults.push(error) });
  const server = createServer(bridge.handle);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { host: "127.0.0.1", port: (server.address() as AddressInfo).port };
}

/** Sends raw HTTP/1.1 text and returns the raw answer (the connection is closed by the request). */
function raw(at: { host: string; port: number }, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(at.port, at.host, () => socket.write(text));
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("end", () => resolve(data));
    socket.on("error", reject);
  });
}

let proxy: { host: string; port: number };
let origin: { host: string; port: number };
beforeAll(async () => {
  proxy = await listen("proxy");
  origin = await listen("origin");
});
afterAll(() => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))));

describe("the Node ↔ Fetch bridge", () => {
  it("takes absolute-form and origin-form targets on the outbound side", async () => {
    seen.length = 0;
    await raw(proxy, "GET http://orders.shop.svc/a?b=1 HTTP/1.1\r\nHost: orders.shop.svc\r\nConnection: close\r\n\r\n");
    await raw(proxy, "GET /c HTTP/1.1\r\nHost: orders:80\r\nConnection: close\r\n\r\n");
    expect(seen.map((r) => r.url)).toEqual(["http://orders.shop.svc/a?b=1", "http://orders/c"]);
  });

  it("refuses https through the proxy and requests without a host, as mesh errors", async () => {
    const https = await raw(proxy, "GET https://orders/x HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n");
    expect(https).toMatch(/^HTTP\/1\.1 400/);
    expect(https).toContain("weft-error: bad-request");
    const absoluteInbound = await raw(origin, "GET http://orders/x HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n");
    expect(absoluteInbound).toMatch(/^HTTP\/1\.1 400/);
  });

  it("drops hop-by-hop headers, and those the Connection header names, in both directions", async () => {
    seen.length = 0;
    answer = async () => new Response("ok", { headers: { "keep-alive": "timeout=99", "x-kept": "yes", "proxy-connection": "x" } });
    const reply = await raw(proxy, "GET /h HTTP/1.1\r\nHost: orders\r\nConnection: close, x-secret\r\nX-Secret: 1\r\nProxy-Authorization: Basic Zm9v\r\nX-App: 2\r\nTE: trailers\r\n\r\n");
    const headers = flatHeaders(seen[0]!.headers).filter((_, i) => i % 2 === 0);
    expect(headers).toContain("x-app");
    for (const name of ["connection", "x-secret", "proxy-authorization", "te"]) expect(headers).not.toContain(name);
    expect(reply).toContain("x-kept: yes");
    expect(reply).not.toMatch(/keep-alive: timeout=99/i);
    expect(reply).not.toMatch(/proxy-connection/i);
  });

  it("streams a request body to the stack and answers errors with the mesh's JSON", async () => {
    answer = async (request) => {
      const text = await new Response(bodyStream(request.body)).text();
      throw new MeshError("forbidden", `saw ${text.length} bytes`);
    };
    const reply = await raw(proxy, "POST /p HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    expect(reply).toMatch(/^HTTP\/1\.1 403/);
    expect(reply).toContain('"code":"forbidden"');
    expect(reply).toContain("saw 5 bytes");
  });

  it("discards the rest of a body the stack cancelled, however late it comes", async () => {
    answer = async (request) => {
      if (request.url.endsWith("/second")) return new Response("second");
      // A layer that took the body as a stream (retry's replay) and gave it up.
      await bodyStream(request.body)!.cancel();
      return new Response("early");
    };
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(proxy.port, proxy.host, () => socket.write("POST /early HTTP/1.1\r\nHost: orders\r\nContent-Length: 10\r\n\r\nhello"));
      let data = "";
      socket.setEncoding("latin1");
      socket.on("data", (chunk: string) => {
        data += chunk;
        // The answer is in: now the rest of the body, then the next request on the same connection.
        if (data.includes("early") && !data.includes("second")) socket.write("worldGET /second HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n");
        if (data.includes("second")) socket.end();
      });
      socket.on("error", reject);
      socket.on("end", () => resolve(data));
    });
    expect(reply.match(/HTTP\/1\.1 200/g)?.length).toBe(2);
    expect(faults).toEqual([]);
  });

  it("resets only the connection whose exchange threw, and reports it", async () => {
    answer = async () => {
      const response = new Response("x");
      Object.defineProperty(response, "headers", {
        get() {
          throw new Error("a bug on the response path");
        },
      });
      return response;
    };
    const reset = await raw(proxy, "GET /bug HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n").catch((error: NodeJS.ErrnoException) => error.code ?? "error");
    expect(reset).not.toMatch(/^HTTP/);
    expect(faults.map((f) => (f as Error).message)).toEqual(["a bug on the response path"]);
    faults.length = 0;
    answer = async () => new Response("fine");
    expect(await raw(proxy, "GET /next HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n")).toContain("fine");
  });

  it("refuses what is over the in-flight limit with overloaded and retry-after", async () => {
    const tight = await listen("proxy", 1);
    let release!: () => void;
    answer = () => new Promise((resolve) => (release = () => resolve(new Response("late"))));
    const first = raw(tight, "GET /1 HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n");
    while (!release) await new Promise((r) => setTimeout(r, 5));
    const second = await raw(tight, "GET /2 HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n");
    expect(second).toMatch(/^HTTP\/1\.1 503/);
    expect(second).toContain("weft-error: overloaded");
    expect(second).toContain("retry-after: 1");
    release();
    expect(await first).toContain("late");
  });
});
