/**
 * `CONNECT` on a real `node:http` server wired as the sidecar wires its outbound listener
 * (bridge, tunnels), driven over raw sockets so every byte of the answers is checked.
 */
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Fetch, MeshRequest } from "../src/core/fetch.ts";
import { serviceNames, serviceOfHost } from "../src/proxy/index.ts";
import { createBridge } from "./bridge.ts";
import { createTunnels, refuseConnect, type Tunnels } from "./tunnel.ts";

const SERVICES = new Set(["orders", "payments"]);
const NAMES = serviceNames({ namespaces: ["shop"] });
const seen: MeshRequest[] = [];
let loaded = true;
let draining = false;
let tunnels: Tunnels;
let outbound: Server;
let inbound: Server;
let port: number;
let inboundPort: number;

beforeAll(async () => {
  const fetch: Fetch = async (request) => {
    seen.push(request);
    return new Response(`answer for ${request.url}`);
  };
  const bridge = createBridge({ target: "proxy", fetch, maxInFlight: 100, draining: () => false });
  tunnels = createTunnels({
    loaded: () => loaded,
    serviceFor: (host) => {
      const name = serviceOfHost(host, NAMES);
      return name !== undefined && SERVICES.has(name) ? name : undefined;
    },
    draining: () => draining,
    log: () => {},
  });
  outbound = createServer({ keepAliveTimeout: 65_000 }, tunnels.guard(bridge.handle));
  tunnels.attach(outbound);
  inbound = createServer(bridge.handle);
  inbound.on("connect", refuseConnect);
  port = await listen(outbound);
  inboundPort = await listen(inbound);
});

afterAll(async () => {
  for (const server of [outbound, inbound]) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

/** A raw client connection: what it has received, and whether the server closed it. */
interface Conn {
  socket: Socket;
  text(): string;
  closed(): boolean;
  /** Waits (at most 10 s) until the received text matches `pattern`, or the connection closes. */
  until(pattern: RegExp): Promise<string>;
  /** Waits (at most 10 s) until the server has closed the connection. */
  ended(): Promise<string>;
}

function open(to = port): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = connect(to, "127.0.0.1");
    let data = "";
    let closed = false;
    const waiters = new Set<() => void>();
    const wake = () => waiters.forEach((w) => w());
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => ((data += chunk), wake()));
    socket.on("close", () => ((closed = true), wake()));
    socket.on("error", () => {});
    const wait = (done: () => boolean) =>
      new Promise<string>((ok, fail) => {
        const timer = setTimeout(() => (waiters.delete(check), fail(new Error(`timed out; got so far: ${JSON.stringify(data)}`))), 10_000);
        const check = () => {
          if (!done()) return;
          clearTimeout(timer);
          waiters.delete(check);
          ok(data);
        };
        waiters.add(check);
        check();
      });
    socket.once("connect", () =>
      resolve({ socket, text: () => data, closed: () => closed, until: (pattern) => wait(() => pattern.test(data) || closed), ended: () => wait(() => closed) }),
    );
    socket.once("error", reject);
  });
}

const ESTABLISHED = "HTTP/1.1 200 Connection Established\r\n\r\n";

/** The status, headers and JSON body of a refusal, with the connection closed after it. */
async function refusal(target: string, to = port): Promise<{ status: number; head: string; body: { error: { code: string; message: string } } }> {
  const conn = await open(to);
  conn.socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  const text = await conn.ended();
  const [head, body] = text.split("\r\n\r\n") as [string, string];
  return { status: Number(head.slice(9, 12)), head, body: JSON.parse(body) };
}

describe("CONNECT to a mesh service", () => {
  it("answers 200 and carries requests inside through the outbound stack, with the tunnel's service as their destination", async () => {
    seen.length = 0;
    const conn = await open();
    conn.socket.write("CONNECT orders:80 HTTP/1.1\r\nHost: orders:80\r\n\r\n");
    await conn.until(/Established\r\n\r\n/);
    expect(conn.text()).toBe(ESTABLISHED);
    conn.socket.write("GET /first HTTP/1.1\r\nHost: orders\r\n\r\n");
    await conn.until(/answer for http:\/\/orders\/first/);
    // The tunnel stays open: a second request on the same connection.
    conn.socket.write("GET /second?x=1 HTTP/1.1\r\nHost: orders.shop.svc.cluster.local\r\n\r\n");
    await conn.until(/answer for http:\/\/orders\.shop\.svc\.cluster\.local\/second\?x=1/);
    expect(seen.map((r) => r.url)).toEqual(["http://orders/first", "http://orders.shop.svc.cluster.local/second?x=1"]);
    expect(tunnels.open()).toBe(1);
    conn.socket.destroy();
  });

  it("reads a request sent right behind the CONNECT, before the 200", async () => {
    seen.length = 0;
    const conn = await open();
    conn.socket.write("CONNECT orders.shop.svc.cluster.local:8080 HTTP/1.1\r\nHost: x\r\n\r\nGET /eager HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n");
    const text = await conn.ended();
    expect(text.startsWith(ESTABLISHED)).toBe(true);
    expect(text).toContain("answer for http://orders/eager");
    expect(seen).toHaveLength(1);
  });

  it("refuses a request inside the tunnel that names another service, and keeps its own", async () => {
    seen.length = 0;
    const conn = await open();
    conn.socket.write("CONNECT orders:80 HTTP/1.1\r\n\r\n");
    await conn.until(/Established/);
    conn.socket.write("GET /steal HTTP/1.1\r\nHost: payments\r\n\r\n");
    const text = await conn.until(/"code":"bad-request"/);
    expect(text).toMatch(/HTTP\/1\.1 400 Bad Request\r\n/);
    expect(text).toContain("weft-error: bad-request");
    expect(text).toContain('may not name the service \\"payments\\"');
    // Absolute-form is read by its target, not its Host.
    conn.socket.write("GET http://payments.shop/steal HTTP/1.1\r\nHost: orders\r\n\r\n");
    await conn.until(/(weft-error: bad-request[\s\S]*){2}/);
    expect(seen).toHaveLength(0);
    conn.socket.write("GET /mine HTTP/1.1\r\nHost: orders\r\n\r\n");
    await conn.until(/answer for http:\/\/orders\/mine/);
    expect(seen.map((r) => r.url)).toEqual(["http://orders/mine"]);
    conn.socket.destroy();
  });

  it("refuses a CONNECT inside a tunnel", async () => {
    const conn = await open();
    conn.socket.write("CONNECT orders:80 HTTP/1.1\r\n\r\n");
    await conn.until(/Established/);
    conn.socket.write("CONNECT payments:80 HTTP/1.1\r\n\r\n");
    const text = await conn.ended();
    expect(text.slice(ESTABLISHED.length)).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*weft-error: bad-request/);
  });

  it("lets the server close an idle tunnel as it closes any idle connection (the drain)", async () => {
    const conn = await open();
    conn.socket.write("CONNECT orders:80 HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\nHost: orders\r\n\r\n");
    await conn.until(/answer for/);
    outbound.closeIdleConnections();
    await conn.ended();
    expect(conn.closed()).toBe(true);
  });
});

describe("any other CONNECT", () => {
  it.each([
    ["orders.example.com:80", 404, "unknown-service"],
    ["orders.evil.example:80", 404, "unknown-service"],
    ["inventory:80", 404, "unknown-service"],
    ["10.0.0.12:4143", 404, "unknown-service"],
    ["[::1]:80", 404, "unknown-service"],
    ["orders:443", 400, "bad-request"],
    ["orders.shop.svc.cluster.local:8443", 400, "bad-request"],
    ["orders", 400, "bad-request"],
    ["orders:", 400, "bad-request"],
    ["orders:0", 400, "bad-request"],
    ["orders:99999", 400, "bad-request"],
    ["orders:80x", 400, "bad-request"],
    ["orders/x:80", 400, "bad-request"],
    ["user@orders:80", 400, "bad-request"],
    [":80", 400, "bad-request"],
    ["http://orders:80", 400, "bad-request"],
  ])("CONNECT %s gets %i %s with a JSON body, then the connection closes", async (target, status, code) => {
    const before = seen.length;
    const answer = await refusal(target);
    expect(answer.status).toBe(status);
    expect(answer.head).toContain(`weft-error: ${code}`);
    expect(answer.head).toContain("content-type: application/json");
    expect(answer.head).toContain("connection: close");
    expect(answer.body.error.code).toBe(code);
    expect(seen.length).toBe(before);
  });

  it("is refused with 503 no-endpoints before the sidecar has its config", async () => {
    loaded = false;
    try {
      const answer = await refusal("orders:80");
      expect(answer.status).toBe(503);
      expect(answer.body.error.code).toBe("no-endpoints");
    } finally {
      loaded = true;
    }
  });

  it("is refused with 503 overloaded and retry-after while the sidecar drains", async () => {
    draining = true;
    try {
      const answer = await refusal("orders:80");
      expect(answer.status).toBe(503);
      expect(answer.head).toContain("retry-after: 1");
      expect(answer.body.error.code).toBe("overloaded");
    } finally {
      draining = false;
    }
  });

  it("is refused with 400 on the inbound listener, which tunnels nothing", async () => {
    const answer = await refusal("orders:80", inboundPort);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe("bad-request");
  });
});
