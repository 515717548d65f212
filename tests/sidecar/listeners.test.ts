/**
 * The sidecar's two traffic listeners (4140 outbound, 4143 inbound) against hostile and
 * broken clients, over raw sockets, with real sidecar processes and a real app: bodies that
 * arrive after the mesh has answered, slowloris connections, the connection cap, headers
 * with underscores or over the size limit, unparseable requests, pipelined HTTP/1.0.
 * Real processes on 127.0.0.9 and 127.0.0.10.
 */
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_INBOUND_IDLE_TIMEOUT_MS } from "../../sidecar/sidecar.ts";
import { admin, callVia, metricsOf, sample, startMesh, startPod, type Mesh, type Pod } from "./pods.ts";
import { addressOf, closed, exchange, open, type WireResult } from "./wire.ts";

let mesh: Mesh;
let pod: Pod;
let capped: Pod;

/** The header read timeout of `pod`: short, so slowloris connections are cut within the test. */
const HEADER_TIMEOUT_MS = 1_000;
/** The connection cap of each listener of `capped`. */
const CAP = 40;

beforeAll(async () => {
  mesh = await startMesh();
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "echo", defaultPolicy: "all-unauthenticated" },
      { kind: "Service", name: "capped", defaultPolicy: "all-unauthenticated" },
      { kind: "Route", name: "echo-upload", service: "echo", matches: [{ path: { type: "PathPrefix", value: "/upload" } }], backends: [{ service: "echo" }], timeouts: { request: "300ms" } },
      { kind: "Route", name: "echo-default", service: "echo", backends: [{ service: "echo" }] },
    ],
  });
  [pod, capped] = await Promise.all([
    startPod(mesh, { name: "echo-1", ip: "127.0.0.9", service: "echo", env: { WEFT_HEADER_TIMEOUT: `${HEADER_TIMEOUT_MS}ms` } }),
    // A long header timeout, so the connections held open to fill the cap stay open.
    startPod(mesh, { name: "capped-1", ip: "127.0.0.10", service: "capped", env: { WEFT_MAX_CONNECTIONS: String(CAP), WEFT_HEADER_TIMEOUT: "60s" } }),
  ]);
  mesh.pods.push(pod, capped);
  // Outbound calls to echo need the pod's own endpoint in its config.
  await until(async () => (await callVia(pod, "echo", "/warm")).status === 200);
}, 90_000);

afterAll(async () => {
  await mesh?.destroy();
});

async function until(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The sidecar process is still running and its admin listener answers `/live`. */
async function expectAlive(p: Pod): Promise<void> {
  const live = await fetch(`${p.sidecar.admin}/live`).then(
    (r) => r.status,
    () => 0,
  );
  expect(live, `the sidecar stopped answering /live; its log:\n${p.sidecar.log().slice(-2_000)}`).toBe(200);
  expect(p.sidecar.child.exitCode).toBeNull();
  expect(p.sidecar.log()).not.toContain("Controller is already closed");
  // The root causes are fixed: the per-connection guard never had to step in.
  expect(p.sidecar.log()).not.toContain("request-fault");
}

const inbound = () => addressOf(pod.sidecar.inbound);
const outbound = () => addressOf(pod.sidecar.outbound);
const listeners = () => [
  ["4140 (outbound)", outbound()],
  ["4143 (inbound)", inbound()],
] as const;

/** A mesh error on the wire: status, `weft-error` and the JSON body of SPEC.md section 2. */
function expectMeshError(result: WireResult, status: number, code: string): void {
  const response = result.responses[0];
  expect(response, `no response; got ${JSON.stringify(result.text.slice(0, 200))} (${result.error ?? "closed"})`).toBeDefined();
  expect(response!.status).toBe(status);
  expect(response!.headers["weft-error"]).toBe(code);
  expect(response!.headers["content-type"]).toContain("application/json");
  expect(JSON.parse(response!.body).error.code).toBe(code);
}

describe("a body that arrives after the mesh has answered", () => {
  it("on 4143, past the caller's budget: the 504 is sent, the late rest discarded, and the sidecar keeps serving", async () => {
    const result = await exchange(inbound(), [
      "POST /upload HTTP/1.1\r\nHost: echo\r\nweft-timeout-ms: 100\r\nContent-Length: 10\r\n\r\nhello",
      { responses: 1 },
      "world",
      { halfClose: true },
    ]);
    expectMeshError(result, 504, "deadline-exceeded");
    await expectAlive(pod);
    const after = await exchange(inbound(), ["GET /after HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n"]);
    expect(after.responses[0]?.status).toBe(200);
  });

  it("on 4140, past the route's timeout: the same", async () => {
    const result = await exchange(outbound(), ["POST /upload/slow HTTP/1.1\r\nHost: echo\r\nContent-Length: 10\r\n\r\nhello", { responses: 1 }, "world", { halfClose: true }]);
    expectMeshError(result, 504, "deadline-exceeded");
    await expectAlive(pod);
    expect((await callVia(pod, "echo", "/after")).status).toBe(200);
  });

  it("a client that ends its side mid-body gets 400, and the call it started on the app is released", async () => {
    for (const [name, address] of listeners()) {
      const result = await exchange(address, ["POST /upload/held HTTP/1.1\r\nHost: echo\r\nContent-Length: 100\r\n\r\n0123456789", { pauseMs: 50 }, { halfClose: true }], { limitMs: 10_000 });
      expectMeshError(result, 400, "bad-request");
      // The app was sent the start of the body; the mesh must not leave it waiting for the rest.
      await until(async () => pod.app.pending() === 0, 10_000).catch(() => {});
      expect(pod.app.pending(), `${name}: the app still holds the call`).toBe(0);
    }
    await expectAlive(pod);
  });

  it("clients that cut their uploads do not get a healthy endpoint ejected for everyone else", async () => {
    // Failure accrual ejects an endpoint after 7 consecutive failures; a client's own abort is not one.
    for (let i = 0; i < 12; i++) {
      await exchange(outbound(), [`POST /upload/cut-${i} HTTP/1.1\r\nHost: echo\r\nContent-Length: 100000\r\n\r\n`, "x".repeat(1_000), { pauseMs: 30 }], { destroyAfterSteps: true });
    }
    const after = await callVia(pod, "echo", "/after-cuts");
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    await until(async () => pod.app.pending() === 0, 10_000).catch(() => {});
    expect(pod.app.pending()).toBe(0);
  });

  it("a client that goes away mid-body costs only its own exchange", async () => {
    for (const [, address] of listeners()) {
      await exchange(address, ["POST /upload HTTP/1.1\r\nHost: echo\r\nContent-Length: 100000\r\n\r\n", "x".repeat(5_000), { pauseMs: 20 }], { destroyAfterSteps: true });
    }
    await expectAlive(pod);
    expect((await callVia(pod, "echo", "/after")).status).toBe(200);
  });
});

describe("header read time", () => {
  it("closes 160 slowloris connections after the header timeout, and silent ones after the idle timeout, while a normal client is still served", async () => {
    interface Held {
      socket: Socket;
      listener: "outbound" | "inbound";
      drips: boolean;
      closedAfter?: number;
    }
    const sockets: Held[] = [];
    for (const [name, address] of listeners()) {
      for (let i = 0; i < 100; i++) {
        const socket = await open(address);
        const opened = Date.now();
        // Four in five drip a header a byte at a time; the rest send nothing at all.
        const entry: Held = { socket, listener: name.includes("inbound") ? "inbound" : "outbound", drips: i % 5 !== 0 };
        socket.once("close", () => (entry.closedAfter = Date.now() - opened));
        sockets.push(entry);
        if (entry.drips) socket.write("GET /drip HTTP/1.1\r\nHost: echo\r\nX-Drip: ");
      }
    }
    const drip = setInterval(() => {
      for (const { socket } of sockets) if (!socket.destroyed && socket.bytesWritten > 0) socket.write("a");
    }, 200);
    const dripping = sockets.filter((s) => s.drips);
    const silentInbound = sockets.filter((s) => !s.drips && s.listener === "inbound");
    const silentOutbound = sockets.filter((s) => !s.drips && s.listener === "outbound");
    try {
      // Meanwhile a normal client gets its answers, on both listeners.
      for (let i = 0; i < 10; i++) {
        expect((await callVia(pod, "echo", `/normal-${i}`)).status).toBe(200);
        const direct = await exchange(inbound(), [`GET /normal-${i} HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n`]);
        expect(direct.responses[0]?.status).toBe(200);
      }
      // Generous: the timeout is 1 s; a loaded machine may take a while to close 160 sockets.
      await until(async () => dripping.every((s) => s.socket.destroyed), 20_000).catch(() => {});
      const open = dripping.filter((s) => !s.socket.destroyed).length;
      expect(open, `${open} slowloris connections still open after 20 s`).toBe(0);
      // None was cut before its time (the check runs at least every second).
      expect(Math.min(...dripping.map((s) => s.closedAfter!))).toBeGreaterThanOrEqual(HEADER_TIMEOUT_MS - 50);
      // A connection that has sent nothing is idle, as one between requests is: a client's
      // pool may hold it for a request to come. The inbound listener closes it after its idle
      // timeout; the outbound one, whose idle timeout is 65 s, still holds it.
      await until(async () => silentInbound.every((s) => s.socket.destroyed), 20_000).catch(() => {});
      expect(silentInbound.filter((s) => !s.socket.destroyed).length, "silent inbound connections still open after 20 s").toBe(0);
      expect(Math.min(...silentInbound.map((s) => s.closedAfter!))).toBeGreaterThanOrEqual(DEFAULT_INBOUND_IDLE_TIMEOUT_MS - 50);
      expect(silentOutbound.filter((s) => s.socket.destroyed).length, "silent outbound connections closed before the outbound idle timeout").toBe(0);
    } finally {
      clearInterval(drip);
      for (const { socket } of sockets) socket.destroy();
    }
    await expectAlive(pod);
  }, 60_000);
});

describe("TLS handshake time", () => {
  it("closes a TLS handshake that stops after its first bytes once the header timeout passes, and counts it", async () => {
    const failures = async () => sample(await metricsOf(pod.sidecar), "weft_tls_handshake_failures_total", { direction: "inbound", reason: "timeout" }) ?? 0;
    const before = await failures();
    const socket = await open(inbound());
    const opened = Date.now();
    let closedAfter: number | undefined;
    socket.once("close", () => (closedAfter = Date.now() - opened));
    // A handshake record's header that promises 80 bytes, and then nothing.
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x50, 0x01]));
    try {
      await until(async () => closedAfter !== undefined, 20_000);
    } finally {
      socket.destroy();
    }
    expect(closedAfter!).toBeGreaterThanOrEqual(HEADER_TIMEOUT_MS - 50);
    await until(async () => (await failures()) === before + 1, 5_000).catch(() => {});
    expect(await failures()).toBe(before + 1);
    await expectAlive(pod);
  });
});

describe("the connection cap", () => {
  it("closes connections over the cap on each listener, and serves again once some close", async () => {
    for (const [name, address] of [
      ["4143 (inbound)", addressOf(capped.sidecar.inbound)],
      ["4140 (outbound)", addressOf(capped.sidecar.outbound)],
    ] as const) {
      const held: Socket[] = [];
      // Each begins a request head, so the 60 s header timeout holds it, not the idle timeout.
      for (let i = 0; i < CAP; i++) {
        const socket = await open(address);
        socket.write("G");
        held.push(socket);
      }
      try {
        expect(held.every((s) => !s.destroyed)).toBe(true);
        // The kernel accepts the connection; the sidecar closes it unanswered.
        const over = await exchange(address, ["GET /over HTTP/1.1\r\nHost: capped\r\nConnection: close\r\n\r\n"], { limitMs: 10_000 });
        expect(over.responses, `${name}: a connection over the cap was answered`).toEqual([]);
        for (const socket of held.splice(0, 10)) socket.destroy();
        await until(async () => {
          const again = await exchange(address, ["GET /again HTTP/1.1\r\nHost: capped\r\nConnection: close\r\n\r\n"], { limitMs: 10_000 });
          return again.responses[0]?.status === 200;
        });
      } finally {
        for (const socket of held) socket.destroy();
        await Promise.all(held.map(closed));
      }
    }
    await expectAlive(capped);
  }, 60_000);
});

describe("header hygiene", () => {
  it("drops inbound headers with an underscore in the name, so none can pose as weft-client-id", async () => {
    const direct = await exchange(inbound(), [
      "GET /who HTTP/1.1\r\nHost: echo\r\nweft_client_id: spiffe://weft.test/ns/kube-system/sa/admin\r\nX_Forwarded_User: admin\r\nweft-client-id: spiffe://weft.test/ns/x/sa/fake\r\nx-kept: yes\r\nConnection: close\r\n\r\n",
    ]);
    expect(direct.responses[0]?.status).toBe(200);
    const echo = JSON.parse(direct.responses[0]!.body);
    expect(echo.clientId).toBeUndefined();
    expect(Object.keys(echo.headers).filter((name) => name.includes("_"))).toEqual([]);
    expect(echo.headers["x-kept"]).toBe("yes");

    // Through the outbound side too: the receiving pod's inbound drops them.
    const viaMesh = await callVia(pod, "echo", "/who", { headers: { weft_client_id: "spiffe://weft.test/ns/kube-system/sa/admin", "x-kept": "yes" } });
    expect(viaMesh.status).toBe(200);
    expect(Object.keys(viaMesh.body.headers).filter((name: string) => name.includes("_"))).toEqual([]);
    expect(viaMesh.body.headers["x-kept"]).toBe("yes");
  });

  it("answers a header block over the limit with the mesh's own 431, read by the client rather than reset", async () => {
    const token = `eyJ${"a".repeat(1_000_000)}`;
    for (const [name, address] of listeners()) {
      const huge = await exchange(address, [`GET /huge HTTP/1.1\r\nHost: echo\r\nweft-identity: ${token}\r\n\r\n`, { responses: 1 }, { halfClose: true }]);
      expect(huge.error, name).toBeUndefined();
      expectMeshError(huge, 431, "header-too-large");
      expect(huge.text).not.toContain("aaaaaaaa");
      const large = await exchange(address, [`GET /large HTTP/1.1\r\nHost: echo\r\nx-big: ${"b".repeat(20_000)}\r\n\r\n`, { responses: 1 }, { halfClose: true }]);
      expectMeshError(large, 431, "header-too-large");
    }
    await expectAlive(pod);
  });

  it("answers a request it cannot parse with 400 bad-request, on both listeners", async () => {
    for (const [name, address] of listeners()) {
      const garbled = await exchange(address, ["GET /x HTTP/1.1\r\nHost: echo\r\nthis is not a header\r\n\r\n", { responses: 1 }, { halfClose: true }]);
      expect(garbled.error, name).toBeUndefined();
      expectMeshError(garbled, 400, "bad-request");
      const noise = await exchange(address, ["\u0001\u0002 not http at all\r\n\r\n", { responses: 1 }, { halfClose: true }]);
      expectMeshError(noise, 400, "bad-request");
      // A chunked body that breaks its framing, once the request is already on its way.
      const chunks = await exchange(address, ["POST /upload HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", { responses: 1 }, { halfClose: true }]);
      expectMeshError(chunks, 400, "bad-request");
    }
    await expectAlive(pod);
  });
});

describe("pipelining", () => {
  it("answers the first of two pipelined HTTP/1.0 requests without keep-alive, then closes, and never forwards the second", async () => {
    for (const [name, address] of listeners()) {
      const calls = pod.app.calls();
      const result = await exchange(address, [`GET /one HTTP/1.0\r\nHost: echo\r\n\r\nGET /two HTTP/1.0\r\nHost: echo\r\n\r\n`], { limitMs: 10_000 });
      expect(result.error, name).toBeUndefined();
      expect(result.responses.map((r) => r.status), name).toEqual([200]);
      expect(JSON.parse(result.responses[0]!.body).path).toBe("/one");
      expect(result.text.match(/HTTP\/1\.[01] /g)?.length, name).toBe(1);
      expect(pod.app.calls() - calls, name).toBe(1);
    }
    await expectAlive(pod);
  });

  it("answers pipelined HTTP/1.1 keep-alive requests in order", async () => {
    for (const [name, address] of listeners()) {
      const result = await exchange(address, ["GET /a HTTP/1.1\r\nHost: echo\r\n\r\nGET /b HTTP/1.1\r\nHost: echo\r\n\r\nGET /c HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n"], { limitMs: 10_000 });
      expect(result.responses.map((r) => JSON.parse(r.body).path), name).toEqual(["/a", "/b", "/c"]);
    }
  });
});
