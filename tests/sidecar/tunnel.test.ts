/**
 * Real proxy clients against a real sidecar process: undici's `EnvHttpProxyAgent`, a Node
 * child process running `fetch` with `NODE_USE_ENV_PROXY=1`, and curl `--proxytunnel`, all of
 * which `CONNECT` even for `http://` targets. Each reaches the app through its tunnel with the
 * caller's identity; a refused tunnel is answered once, not retried in a loop. And only names
 * of mesh services are routed into the mesh at all.
 */
import { spawn } from "node:child_process";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { EnvHttpProxyAgent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admin, callVia, metricsOf, sample, startMesh, startPod, TRUST_DOMAIN, type Mesh, type Pod } from "./pods.ts";
import { addressOf, exchange } from "./wire.ts";

const WEB_ID = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/web`;

let mesh: Mesh;
let web: Pod;
let orders: Pod;

beforeAll(async () => {
  mesh = await startMesh();
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "web", defaultPolicy: "all-authenticated" },
      { kind: "Service", name: "orders", defaultPolicy: "all-authenticated" },
    ],
  });
  // web runs in namespace shop (its ServiceAccount token says so) and also accepts names in billing.
  [web, orders] = await Promise.all([
    startPod(mesh, { name: "web-1", ip: "127.0.0.31", service: "web", namespace: "shop", env: { WEFT_NAMESPACES: "billing" } }),
    startPod(mesh, { name: "orders-1", ip: "127.0.0.32", service: "orders", namespace: "billing" }),
  ]);
  mesh.pods.push(web, orders);
  await until(async () => (await callVia(web, "orders", "/warm")).status === 200);
}, 90_000);

afterAll(async () => {
  await mesh?.destroy();
});

async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A TCP relay in front of the sidecar's outbound port, so the test can count the connections
 * a client makes (the sidecar is another process). Bytes pass unchanged both ways.
 */
async function relayTo(pod: Pod): Promise<{ url: string; connections(): number; close(): Promise<void> }> {
  const target = new URL(pod.sidecar.outbound);
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    connections++;
    const upstream = connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => sockets.delete(socket));
    }
    client.pipe(upstream).on("error", () => {});
    upstream.pipe(client).on("error", () => {});
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, pod.ip, resolve));
  return {
    url: `http://${pod.ip}:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** An error's message and those of its causes, joined: undici puts the proxy's status three causes deep. */
function causes(error: unknown): string {
  const messages: string[] = [];
  for (let e = error as { message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) messages.push(String(e.message ?? e));
  return messages.join(": ");
}

/** What a child process prints: one result per URL it fetched. */
type Outcome = { status: number; headers: Record<string, string>; body: any } | { error: string };

/**
 * Runs `fetch` for each URL in a Node child process (the Node running the tests, 24) with
 * `NODE_USE_ENV_PROXY=1` and `HTTP_PROXY=proxy`: Node's own proxy support, as an app in a
 * pod with `weft inject`'s environment would use it.
 */
function nodeFetch(proxy: string, urls: string[]): Promise<Outcome[]> {
  const script = `
    const results = [];
    for (const url of process.argv.slice(1)) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(10000) });
        const text = await response.text();
        let body = text;
        try { body = JSON.parse(text); } catch {}
        results.push({ status: response.status, headers: Object.fromEntries(response.headers), body });
      } catch (error) {
        const messages = [];
        for (let e = error; e; e = e.cause) messages.push(String(e.message ?? e));
        results.push({ error: messages.join(": ") });
      }
    }
    process.stdout.write(JSON.stringify(results));
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script, ...urls], {
      env: { PATH: process.env.PATH ?? "", NODE_USE_ENV_PROXY: "1", HTTP_PROXY: proxy },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (out += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (err += text));
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("exit", (code) => {
      clearTimeout(killer);
      try {
        resolve(JSON.parse(out) as Outcome[]);
      } catch {
        reject(new Error(`the child exited ${code}: ${out} ${err}`));
      }
    });
  });
}

/** Runs curl through `proxy` with `--proxytunnel` (CONNECT even for http://). */
function curl(proxy: string, url: string, extra: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("curl", ["-sS", "--max-time", "10", "--proxytunnel", "--proxy", proxy, ...extra, url], { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

const outboundResponses = async () => sample(await metricsOf(web.sidecar), "weft_response_total", { direction: "outbound", dst_service: "orders", status_code: "200" }) ?? 0;

describe("CONNECT through the outbound listener", () => {
  it("carries undici EnvHttpProxyAgent's calls to the app, with identity and metrics", async () => {
    const relay = await relayTo(web);
    const agent = new EnvHttpProxyAgent({ httpProxy: relay.url });
    try {
      const before = await outboundResponses();
      for (const url of ["http://orders/tunnel/a?x=1", "http://orders.billing.svc.cluster.local/tunnel/b"]) {
        const response = await undiciFetch(url, { dispatcher: agent, signal: AbortSignal.timeout(10_000) });
        expect(response.status, url).toBe(200);
        const body = (await response.json()) as { path: string; clientId: string; identityHeader?: string; pod: string };
        expect(body).toMatchObject({ pod: "orders-1", clientId: WEB_ID, path: new URL(url).pathname + new URL(url).search });
        expect(body.identityHeader).toBeUndefined();
      }
      // The requests inside the tunnels went through the outbound stack: counted there.
      expect(await outboundResponses()).toBe(before + 2);
    } finally {
      await agent.close();
      await relay.close();
    }
  });

  it("carries Node's fetch with NODE_USE_ENV_PROXY=1 to the app, with identity", async () => {
    const relay = await relayTo(web);
    try {
      const results = await nodeFetch(relay.url, ["http://orders/node/a", "http://orders.shop.svc.cluster.local/node/b"]);
      expect(results.map((r) => ("status" in r ? r.status : r.error))).toEqual([200, 200]);
      for (const result of results) expect(result).toMatchObject({ body: { pod: "orders-1", clientId: WEB_ID } });
    } finally {
      await relay.close();
    }
  });

  it("carries curl --proxytunnel to the app, with identity", async () => {
    const relay = await relayTo(web);
    try {
      const result = await curl(relay.url, "http://orders/curl");
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ pod: "orders-1", path: "/curl", clientId: WEB_ID });
    } finally {
      await relay.close();
    }
  });

  it("answers a CONNECT to a name outside the mesh once, with weft-error, and the clients do not reconnect", async () => {
    const relay = await relayTo(web);
    const agent = new EnvHttpProxyAgent({ httpProxy: relay.url });
    const calls = orders.app.calls();
    try {
      // undici: the refusal's status reaches the caller as an error; one connection.
      const refused = await undiciFetch("http://orders.example.com/", { dispatcher: agent, signal: AbortSignal.timeout(10_000) }).then(
        () => "answered",
        (error: unknown) => causes(error),
      );
      expect(refused).toMatch(/404/);
      expect(relay.connections()).toBe(1);

      // Node's fetch: one connection per refused URL.
      const results = await nodeFetch(relay.url, ["http://payments/", "http://orders.evil.example/x"]);
      expect(results.map((r) => ("error" in r ? /Proxy response \(404\)/.test(r.error) : r))).toEqual([true, true]);
      expect(relay.connections()).toBe(3);

      // curl shows the answer: status and weft-error.
      const result = await curl(relay.url, "http://orders.example.com/", ["--verbose"]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/< HTTP\/1\.1 404 Not Found/);
      expect(result.stderr).toMatch(/< weft-error: unknown-service/);
      expect(relay.connections()).toBe(4);
    } finally {
      await agent.close();
      await relay.close();
    }
    expect(orders.app.calls()).toBe(calls);
  });
});

describe("which names are mesh services", () => {
  it("routes the pod's namespace and the configured ones, and nothing outside the mesh", async () => {
    for (const host of ["orders", "orders.shop", "orders.shop.svc", "orders.shop.svc.cluster.local", "orders.billing.svc.cluster.local", "ORDERS.", "orders:8080"]) {
      const reply = await callVia(web, host, "/named");
      expect([host, reply.status, reply.body.clientId]).toEqual([host, 200, WEB_ID]);
    }
    const calls = orders.app.calls();
    for (const host of ["orders.example.com", "orders.evil.example", "orders.evil", "orders.shipping.svc.cluster.local", "orders.shop.svc.example.com", "127.0.0.32"]) {
      const reply = await callVia(web, host, "/named");
      expect([host, reply.status, reply.headers["weft-error"], reply.body.error?.code]).toEqual([host, 404, "unknown-service", "unknown-service"]);
    }
    expect(orders.app.calls()).toBe(calls);
  });

  it("refuses a Host that is no authority with 400, rather than making it part of the path", async () => {
    const calls = orders.app.calls();
    for (const host of ["orders/x", "orders?x", "orders#x", "evil@orders"]) {
      const reply = await callVia(web, host, "/named");
      expect([host, reply.status, reply.headers["weft-error"]]).toEqual([host, 400, "bad-request"]);
    }
    expect(orders.app.calls()).toBe(calls);
  });

  it("refuses a CONNECT on the inbound listener with 400 and says where tunnels go, then closes", async () => {
    const calls = orders.app.calls();
    const result = await exchange(addressOf(orders.sidecar.inbound), ["CONNECT orders:80 HTTP/1.1\r\nHost: orders:80\r\n\r\nGET / HTTP/1.1\r\nHost: orders\r\n\r\n"]);
    expect(result.responses.map((r) => [r.status, r.headers["weft-error"]])).toEqual([[400, "bad-request"]]);
    expect(JSON.parse(result.responses[0]!.body).error.message).toContain("CONNECT is for the outbound listener");
    expect(result.error).toBeUndefined();
    expect(orders.app.calls()).toBe(calls);
  });
});
