/**
 * A client that hangs up cancels the work done for it: the upstream call in flight, and a
 * retry waiting out its backoff. The in-flight count (WEFT_MAX_IN_FLIGHT) follows the work,
 * not only the open response. Real sockets, a real app server and the real transport.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stack, type Fetch, type Layer } from "../src/core/fetch.ts";
import { createRetryBudget, retry } from "../src/core/retry/index.ts";
import { createBridge, type Bridge } from "./bridge.ts";
import { createUpstreams } from "./upstream.ts";

const servers: Server[] = [];
const upstreams = createUpstreams();

/** The app's side: what it received, and which of those requests' connections closed unanswered. */
const app = { received: [] as string[], closed: [] as string[] };
let appOrigin = "";

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  // /hang never answers; /fail answers 503; anything else 200.
  const port = await listen(
    createServer((req: IncomingMessage, res) => {
      app.received.push(req.url!);
      res.on("close", () => {
        if (!res.writableFinished) app.closed.push(req.url!);
      });
      if (req.url === "/hang") return;
      res.writeHead(req.url === "/fail" ? 503 : 200, { "content-length": "2" }).end("ok");
    }),
  );
  appOrigin = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await upstreams.destroy();
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A listener over `fetch`, as the sidecar builds one. */
async function sidecar(fetch: Fetch, maxInFlight: number): Promise<{ bridge: Bridge; port: number }> {
  const bridge = createBridge({ target: "origin", fetch, maxInFlight, draining: () => false });
  return { bridge, port: await listen(createServer(bridge.handle)) };
}

/** Sends GET `path` with a real client and resolves with its status (or the error that ended it). */
function get(port: number, path: string, signal?: AbortSignal): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, headers: { host: "orders" }, agent: false, signal }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode!));
    });
    req.on("error", (error) => resolve(error.name));
    req.end();
  });
}

/** Polls `check` every 10 ms until it holds, failing after `ms`. */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("the condition never held");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("a client that hangs up", () => {
  it("cancels the upstream call made for it, and frees its in-flight slot once that call has stopped", async () => {
    const { bridge, port } = await sidecar(upstreams.fetch(appOrigin), 1);
    const hangup = new AbortController();
    const first = get(port, "/hang", hangup.signal);
    await until(() => app.received.includes("/hang"));
    expect(bridge.inFlight()).toBe(1);
    // The only slot is taken while the work runs: a second call is refused.
    expect(await get(port, "/ok")).toBe(503);
    hangup.abort();
    expect(await first).toBe("AbortError");
    await until(() => app.closed.includes("/hang"));
    await until(() => bridge.inFlight() === 0);
    expect(await get(port, "/ok")).toBe(200);
  });

  it("stops a retry waiting out its backoff: no further try is made", async () => {
    const budget = createRetryBudget({ ratio: 1, minPerSecond: 100, ttl: 10_000 });
    // A 20 s backoff: the try after it would come long after the test, if the hang-up did not stop it.
    let settled = 0;
    const settles: Layer = (next) => (request) => next(request).finally(() => settled++);
    const retried = stack(upstreams.fetch(appOrigin), settles, retry({ limit: 3, on: ["5xx"], budget, backoff: { base: 20_000, max: 20_000 }, random: () => 0.999 }));
    const { bridge, port } = await sidecar(retried, 10);
    const before = app.received.filter((url) => url === "/fail").length;
    const hangup = new AbortController();
    const call = get(port, "/fail", hangup.signal);
    await until(() => app.received.filter((url) => url === "/fail").length === before + 1);
    hangup.abort();
    expect(await call).toBe("AbortError");
    // The work itself stopped (the stack settled), not only the response closed.
    await until(() => settled === 1);
    await until(() => bridge.inFlight() === 0);
    expect(app.received.filter((url) => url === "/fail").length).toBe(before + 1);
  });
});
