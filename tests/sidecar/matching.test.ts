/**
 * Route and policy matching on hostile input through a real sidecar process (issue 10,
 * items 2 and 3): a pod (a `node:http` app and its sidecar) on 127.0.0.6 and the control
 * plane in workerd. Hostile paths go to the sidecar's inbound listener as raw bytes over a
 * socket; the catastrophic route regex is hit through its outbound listener.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DENIED_ADMIN_PATHS } from "../../src/testing/index.ts";
import { admin, callVia, metricsOf, sample, startMesh, startPod, type Mesh, type Pod } from "./pods.ts";

let mesh: Mesh;
let pod: Pod;

/** Sends `target` as the request line's target, byte for byte, to the pod's inbound listener. */
function raw(target: string): Promise<{ status: number; error: string | null; body: string }> {
  const inbound = new URL(pod.sidecar.inbound);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: inbound.hostname, port: Number(inbound.port) });
    const chunks: Buffer[] = [];
    socket.setTimeout(30_000, () => socket.destroy(new Error(`no answer to ${target} in 30 s`)));
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!status) return reject(new Error(`not an HTTP answer to ${target}: ${JSON.stringify(text.slice(0, 200))}`));
      const head = text.slice(0, text.indexOf("\r\n\r\n"));
      let body = text.slice(head.length + 4);
      if (/\r\ntransfer-encoding: chunked/i.test(head)) body = dechunk(body);
      resolve({ status: Number(status[1]), error: /\r\nweft-error: ([^\r]*)/i.exec(head)?.[1] ?? null, body });
    });
    socket.write(`GET ${target} HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n`, "latin1");
  });
}

/** The payload of a chunked HTTP/1.1 body. */
function dechunk(body: string): string {
  let out = "";
  for (let at = 0; ; ) {
    const eol = body.indexOf("\r\n", at);
    const size = Number.parseInt(body.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

beforeAll(async () => {
  mesh = await startMesh();
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "orders" },
      { kind: "AuthorizationPolicy", name: "no-admin", target: { service: "orders" }, action: "DENY", to: [{ paths: ["/admin", "/admin/*"] }] },
      { kind: "Route", name: "orders-api", service: "orders", matches: [{ path: { type: "RegularExpression", value: "/api/([a-z]+/?)+" } }], backends: [{ service: "orders" }] },
    ],
  });
  pod = await startPod(mesh, { name: "orders-1", ip: "127.0.0.6", service: "orders" });
  mesh.pods.push(pod);
  const version = (await admin(mesh.control, "GET", "/v1/snapshot")).json.version as number;
  const deadline = Date.now() + 20_000;
  while ((sample(await metricsOf(pod.sidecar), "weft_config_version") ?? -1) < version || (await endpoints()) < 1) {
    if (Date.now() > deadline) throw new Error("the sidecar never caught up with the config");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}, 90_000);

afterAll(async () => {
  await mesh?.destroy();
});

async function endpoints(): Promise<number> {
  const snapshot = (await admin(mesh.control, "GET", "/v1/snapshot")).json as { services: { name: string; endpoints?: unknown[] }[] };
  return snapshot.services.find((s) => s.name === "orders")?.endpoints?.length ?? 0;
}

describe("the sidecar", () => {
  it.each(DENIED_ADMIN_PATHS)("keeps %s from the app behind DENY /admin, /admin/* (%i %s)", async (target, status, error) => {
    const before = pod.app.calls();
    const answer = await raw(target);
    expect([answer.status, answer.error]).toEqual([status, error]);
    expect(pod.app.calls()).toBe(before);
  });

  it("forwards an ordinary path to the app as the policy checked it", async () => {
    const answer = await raw("/users/%7eann/./orders/%2E%2E/cart;v=1?next=%2Fadmin");
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).path).toBe("/users/~ann/cart;v=1?next=%2Fadmin");
  });

  it("matches /api/([a-z]+/?)+ in linear time on a path that backtracking never finishes", async () => {
    const letters = "a".repeat(8_000);
    const missed = await callVia(pod, "orders", `/api/${letters}!`);
    expect([missed.status, missed.headers["weft-error"]]).toEqual([404, "unknown-service"]);
    const matched = await callVia(pod, "orders", `/api/${letters}/b`);
    expect(matched.status).toBe(200);
    expect(matched.body.path).toBe(`/api/${letters}/b`);
  });
});
