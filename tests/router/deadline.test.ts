/**
 * The router enforces the budget it is given from the moment a request arrives, as the
 * sidecar does: through the real router and control workers in workerd. The control plane is
 * reached through a proxy that can be made slow, so that a router's config read (which
 * happens on the request path when its cache has expired) takes a known, long time before the
 * request reaches its stack; the app answers at once or after `delay` ms.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControl, type RunningControl } from "../../workers/control/local.ts";
import { startRouters, type RunningRouters } from "../../workers/router/local.ts";

const ADMIN = "router-deadline-admin-token-0123456789";
const TRUST_DOMAIN = "weft.test";
/** How long the slow control plane holds each answer. */
const CONTROL_DELAY_MS = 500;

let control: RunningControl;
let mesh: RunningRouters;
let proxy: Server;
let slow = false;
/** Requests the proxy is holding or forwarding now. */
let held = 0;

/** A proxy to the control plane that, while `slow` is set, holds each request for `CONTROL_DELAY_MS`. */
function startSlowProxy(target: string): Promise<Server> {
  const server = createServer(async (req, res) => {
    held++;
    res.once("close", () => held--);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (slow) await new Promise((resolve) => setTimeout(resolve, CONTROL_DELAY_MS));
    const headers = Object.entries(req.headers).filter(([name]) => name !== "host" && name !== "connection") as [string, string][];
    const init: RequestInit = { method: req.method ?? "GET", headers };
    if (chunks.length) init.body = Buffer.concat(chunks);
    const answer = await fetch(`${target}${req.url}`, init).catch(() => undefined);
    if (!answer) return void res.writeHead(502).end();
    const body = Buffer.from(await answer.arrayBuffer());
    const out: Record<string, string> = {};
    answer.headers.forEach((value, name) => {
      if (name !== "content-encoding" && name !== "content-length" && name !== "transfer-encoding") out[name] = value;
    });
    res.writeHead(answer.status, out).end(body);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

beforeAll(async () => {
  control = await startControl({ adminToken: ADMIN, port: 0, trustDomain: TRUST_DOMAIN, publishIntervalMs: 0 });
  await control.admin("POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "a", endpoints: [{ id: "a", address: "binding:A" }] },
      { kind: "Service", name: "b", endpoints: [{ id: "b", address: "binding:B" }] },
    ],
  });
  proxy = await startSlowProxy(control.url);
  const secrets: Record<string, string> = {};
  for (const service of ["a", "b"]) secrets[service] = await control.workerSecret(service);
  // No KV snapshot (no shared folder) and no config cache: every request reads the config
  // from the control plane, through the proxy, before it enters the router's stack.
  mesh = await startRouters({
    control: `127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    trustDomain: TRUST_DOMAIN,
    routers: ["a", "b"].map((service) => ({ service, secret: secrets[service]!, app: { worker: `app-${service}` }, vars: { WEFT_CONFIG_TTL_MS: "0" } })),
    apps: ["a", "b"].map((name) => ({ name: `app-${name}`, entry: "tests/router/echo-app.ts", mesh: name, vars: { NAME: name } })),
  });
  // Warm: tokens issued and cached, keys known, while the control plane is quick.
  const warm = await call("a", "call=b");
  expect(warm.body.downstream?.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  await control?.stop();
  await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)));
});

/** Calls the inbound side of router `name` from outside. */
async function call(name: string, query: string, headers: Record<string, string> = {}) {
  const response = await mesh.inbound(name, new Request(`http://${name}.test/?${query}`, { headers }));
  return { status: response.status, error: response.headers.get("weft-error"), body: (await response.json()) as Record<string, any> };
}

/**
 * Makes the control plane slow, once no config read is in flight in `routers`: a read a router
 * started for an earlier request would otherwise be shared by the next one. The proxy holding
 * none is not enough: it has answered a read before the router has taken the answer, and on a
 * loaded machine a request could still join that read and get its config at once. So a quick
 * call goes through each router first; it returns only after the read it joined or started
 * has ended, and nothing else in these tests starts one.
 */
async function slowControl(routers: readonly string[] = ["b"]): Promise<void> {
  for (let i = 0; held > 0 && i < 400; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  expect(held).toBe(0);
  for (const name of routers) expect((await call(name, "")).status).toBe(200);
  slow = true;
}

const seen = async (app: string) => (await (await mesh.app(app, new Request("http://app/__seen"))).json()) as { hits: number; seen: { timeoutMs: number | null }[] };

describe("the router's budget", () => {
  it("answers 504 deadline-exceeded when a 1 ms budget runs out before a slow app answers", async () => {
    const answer = await call("b", "delay=300", { "weft-timeout-ms": "1" });
    expect([answer.status, answer.error]).toEqual([504, "deadline-exceeded"]);
    expect(answer.body.error.code).toBe("deadline-exceeded");
  });

  it("counts the time before the stack from the request's arrival: a budget spent waiting for config is 504, and the app is not called", async () => {
    await slowControl();
    const before = (await seen("app-b")).hits;
    try {
      const answer = await call("b", "", { "weft-timeout-ms": String(CONTROL_DELAY_MS / 2) });
      expect([answer.status, answer.error]).toEqual([504, "deadline-exceeded"]);
      expect(answer.body.error.code).toBe("deadline-exceeded");
    } finally {
      slow = false;
    }
    expect((await seen("app-b")).hits).toBe(before);
  });

  it("keeps serving after a request was answered 504 while its config read was pending", async () => {
    await slowControl();
    try {
      const cut = await call("b", "", { "weft-timeout-ms": "100" });
      expect([cut.status, cut.error]).toEqual([504, "deadline-exceeded"]);
    } finally {
      slow = false;
    }
    // The read that request started is shared with the next ones: it must still finish.
    for (let i = 0; held > 0 && i < 400; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    const next = await call("b", "", { "weft-timeout-ms": "10000" });
    expect([next.status, next.error]).toEqual([200, null]);
  });

  it("answers 200 within a generous budget, and tells the app what is left after the wait", async () => {
    const budget = 30_000;
    await slowControl();
    try {
      const answer = await call("b", "", { "weft-timeout-ms": String(budget) });
      expect(answer.status).toBe(200);
      // The config read took at least CONTROL_DELAY_MS of the budget before the app was called.
      expect(answer.body.timeoutMs).toBeGreaterThan(0);
      expect(answer.body.timeoutMs).toBeLessThanOrEqual(budget - CONTROL_DELAY_MS);
    } finally {
      slow = false;
    }
  });

  it("counts each router's wait on the way out and in, across two hops", async () => {
    const budget = 30_000;
    await slowControl(["a", "b"]);
    try {
      // a's inbound, a's outbound and b's inbound each read the config, slowly, first.
      const answer = await call("a", "call=b", { "weft-timeout-ms": String(budget) });
      expect(answer.body.downstream?.status).toBe(200);
      expect(answer.body.downstream.body.timeoutMs).toBeLessThanOrEqual(budget - 3 * CONTROL_DELAY_MS);
    } finally {
      slow = false;
    }
  });
});
