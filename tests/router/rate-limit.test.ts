/**
 * A per-caller rate limit that holds across router isolates: three routers of service `api`
 * in one Miniflare, each its own workerd isolate, share Cloudflare's Rate Limiting binding
 * (`WEFT_RATE_LIMIT`, one `namespace_id`), which Miniflare runs locally as on Cloudflare.
 * Callers are keyed by `x-api-key`; each call goes to the next router in turn.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControl, type RunningControl } from "../../workers/control/local.ts";
import { startRouters, type RunningRouters } from "../../workers/router/local.ts";
import { startApp } from "../sidecar/pods.ts";

const ADMIN = "router-rate-limit-admin-0123456789";
const TRUST_DOMAIN = "weft.test";
/** The share: N requests a second per caller, counted by the binding in windows of 10 s. */
const N = 5;
const PERIOD_S = 10;
const ROUTERS = ["api-1", "api-2", "api-3"];

let dir: string;
let control: RunningControl;
let mesh: RunningRouters;
let app: { server: Server; port: number };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-router-rate-limit-"));
  app = await startApp("127.0.0.1", "api-app");
  control = await startControl({ adminToken: ADMIN, port: 0, persistDir: dir, trustDomain: TRUST_DOMAIN, publishIntervalMs: 0 });
  await control.admin("PUT", "/v1/services/api", { name: "api", rateLimit: { rps: 1000, key: { type: "header", name: "x-api-key" }, perKey: { rps: N } } });
  const secret = await control.workerSecret("api");
  mesh = await startRouters({
    control: new URL(control.url).host,
    trustDomain: TRUST_DOMAIN,
    persistDir: dir,
    routers: ROUTERS.map((name) => ({
      service: "api",
      name,
      secret,
      app: { origin: `http://127.0.0.1:${app.port}` },
      vars: { WEFT_RATE_LIMIT_PERIOD: String(PERIOD_S) },
      ratelimits: { WEFT_RATE_LIMIT: { namespace_id: "1001", simple: { limit: N * PERIOD_S, period: PERIOD_S } } },
    })),
  });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  await control?.stop();
  app?.server.closeAllConnections();
  app?.server.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let turn = 0;
const call = async (key: string) => {
  const response = await mesh.inbound(ROUTERS[turn++ % ROUTERS.length]!, new Request("http://api.test/items", { headers: { "x-api-key": key } }));
  await response.arrayBuffer();
  return { status: response.status, error: response.headers.get("weft-error"), retryAfter: response.headers.get("retry-after") };
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a per-caller rate limit across router isolates (the Rate Limiting binding)", () => {
  it(`gives 3 callers at 3N/s each N/s ± 10 % (N = ${N}), and never limits a caller under its share`, async () => {
    // Each router has its config and identity before the measured window starts.
    for (const name of ROUTERS) expect((await mesh.inbound(name, new Request("http://api.test/", { headers: { "x-api-key": "warm-up" } }))).status).toBe(200);
    // The binding counts in windows aligned to the wall clock: run inside one, from its start,
    // and stop sending 2 s before its end so that a slow machine's last answers fall in it too.
    await sleep(PERIOD_S * 1000 - (Date.now() % (PERIOD_S * 1000)) + 50);
    const start = Date.now();
    const calls: Promise<{ key: string; status: number; error: string | null; retryAfter: string | null }>[] = [];
    const send = (key: string) => calls.push(call(key).then((answer) => ({ key, ...answer })));
    // Every 100 ms: each greedy caller sends 1 or 2 (3N/s = 15/s), the quiet one 1 every 500 ms (2/s).
    for (let tick = 0; Date.now() - start < (PERIOD_S - 2) * 1000; tick++) {
      for (const key of ["greedy-a", "greedy-b", "greedy-c"]) for (let i = 0; i < (tick % 2 === 0 ? 2 : 1); i++) send(key);
      if (tick % 5 === 0) send("quiet");
      await sleep(Math.max(0, start + (tick + 1) * 100 - Date.now()));
    }
    const answers = await Promise.all(calls);
    const count = (key: string, status: number) => answers.filter((a) => a.key === key && a.status === status).length;
    for (const key of ["greedy-a", "greedy-b", "greedy-c"]) {
      const sent = answers.filter((a) => a.key === key).length;
      // Each sent well over its share...
      expect(sent).toBeGreaterThan(N * PERIOD_S * 1.5);
      // ...and got N/s over the window, ± 10 %: the three isolates share one count.
      expect(count(key, 200) / PERIOD_S).toBeGreaterThanOrEqual(N * 0.9);
      expect(count(key, 200) / PERIOD_S).toBeLessThanOrEqual(N * 1.1);
      const refused = answers.filter((a) => a.key === key && a.status === 429);
      expect(refused.length).toBe(sent - count(key, 200));
      for (const r of refused) {
        expect(r.error).toBe("rate-limited");
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
        expect(Number(r.retryAfter)).toBeLessThanOrEqual(PERIOD_S);
      }
    }
    expect(count("quiet", 200)).toBe(answers.filter((a) => a.key === "quiet").length);
    expect(count("quiet", 200)).toBeGreaterThan(10);
  }, 60_000);
});
