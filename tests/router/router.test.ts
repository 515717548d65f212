/**
 * End to end through the real router worker and control worker in workerd, over HTTP:
 * identity across hops, the split, retries, failure accrual, deadlines across three hops,
 * authorization, policy propagation and running on with the control plane down.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControl, type RunningControl } from "../../workers/control/local.ts";
import { startRouters, type LocalRouter, type RunningRouters } from "../../workers/router/local.ts";

const ADMIN = "router-e2e-admin-token-0123456789";
const TRUST_DOMAIN = "weft.test";
const CONFIG_TTL_MS = 1_000;

let dir: string;
let control: RunningControl;
let mesh: RunningRouters;
const secrets = new Map<string, string>();

interface Answer {
  status: number;
  error: string | null;
  body: Record<string, any>;
}

/** Calls the inbound side of router `name` from outside, as the internet would. */
const call = async (name: string, query: string, headers: Record<string, string> = {}): Promise<Answer> => {
  const response = await mesh.inbound(name, new Request(`http://${name}.test/?${query}`, { headers }));
  return { status: response.status, error: response.headers.get("weft-error"), body: (await response.json()) as Record<string, any> };
};

const seen = async (app: string) => (await (await mesh.app(app, new Request("http://app/__seen"))).json()) as { hits: number; seen: { timeoutMs: number | null }[] };
const setFailing = async (app: string, fail: boolean) => mesh.app(app, new Request(`http://app/__mode?fail=${fail ? 1 : 0}`, { method: "POST" }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-router-e2e-"));
  control = await startControl({ adminToken: ADMIN, port: 0, persistDir: dir, trustDomain: TRUST_DOMAIN, publishIntervalMs: 0 });
  // A fixed 2 s penalty: long enough that the test's calls all fall inside it, on a slow machine too.
  const fast = { consecutiveFailures: 3, backoff: { min: "2s", max: "2s", jitter: 0 } };
  await control.admin("POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "a", endpoints: [{ id: "a", address: "binding:A" }] },
      { kind: "Service", name: "b", endpoints: [{ id: "b", address: "binding:B" }] },
      { kind: "Service", name: "c", endpoints: [{ id: "c", address: "binding:C" }] },
      { kind: "Service", name: "s" },
      { kind: "Service", name: "s-v1", endpoints: [{ id: "s-v1", address: "binding:S_V1" }] },
      { kind: "Service", name: "s-v2", endpoints: [{ id: "s-v2", address: "binding:S_V2" }] },
      { kind: "Route", name: "s-split", service: "s", backends: [{ service: "s-v1", weight: 90 }, { service: "s-v2", weight: 10 }] },
      // Mirroring (issue 16): every call to m is copied to m-shadow.
      { kind: "Service", name: "m", endpoints: [{ id: "m", address: "binding:M" }] },
      { kind: "Service", name: "m-shadow", endpoints: [{ id: "m-shadow", address: "binding:M_SHADOW" }] },
      { kind: "Route", name: "m-mirror", service: "m", backends: [{ service: "m" }], filters: [{ type: "RequestMirror", requestMirror: { backendRef: { service: "m-shadow" }, percent: 100 } }] },
      {
        kind: "Service",
        name: "f",
        retry: { limit: 2, on: ["5xx"] },
        failureAccrual: { consecutiveFailures: 7 },
        endpoints: [{ id: "f1", address: "binding:F1" }, { id: "f2", address: "binding:F2" }],
      },
      // Round-robin so that d1 keeps being picked until its breaker trips, whatever its latency.
      { kind: "Service", name: "d", balancer: "round-robin", failureAccrual: fast, endpoints: [{ id: "d1", address: "binding:D1" }, { id: "d2", address: "binding:D2" }] },
    ],
  });
  const routers: LocalRouter[] = [];
  const app = (name: string) => ({ worker: `app-${name}` });
  const vars = { WEFT_CONFIG_TTL_MS: String(CONFIG_TTL_MS) };
  for (const service of ["a", "b", "c", "s-v1", "s-v2", "f", "d", "m", "m-shadow"]) secrets.set(service, await control.workerSecret(service));
  for (const service of ["a", "b", "c", "s-v1", "s-v2", "m", "m-shadow"]) routers.push({ service, secret: secrets.get(service)!, app: app(service), vars });
  for (const [service, name] of [["f", "f1"], ["f", "f2"], ["d", "d1"], ["d", "d2"]] as const) {
    routers.push({ service, name, secret: secrets.get(service)!, app: app(name), vars });
  }
  mesh = await startRouters({
    control: new URL(control.url).host,
    trustDomain: TRUST_DOMAIN,
    persistDir: dir,
    routers,
    apps: ["a", "b", "c", "s-v1", "s-v2", "f1", "f2", "d1", "d2", "m", "m-shadow"].map((name) => ({
      name: `app-${name}`,
      entry: "tests/router/echo-app.ts",
      mesh: name,
      vars: { NAME: name },
    })),
  });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  await control?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the router worker, end to end in workerd", () => {
  it("carries a call through two routers with the caller's identity verified and its token removed", async () => {
    const answer = await call("a", "call=b");
    expect(answer.status).toBe(200);
    expect(answer.body.clientId).toBeNull(); // a came from the internet: unauthenticated
    expect(answer.body.downstream.status).toBe(200);
    expect(answer.body.downstream.body).toMatchObject({ app: "b", clientId: `spiffe://${TRUST_DOMAIN}/worker/a`, hadIdentity: false, attempt: "1" });
  });

  it("strips a weft-client-id sent from outside", async () => {
    const answer = await call("b", "", { "weft-client-id": "spiffe://weft.test/worker/admin" });
    expect(answer.status).toBe(200);
    expect(answer.body.clientId).toBeNull();
  });

  it("holds the 90/10 split over 2,000 calls", async () => {
    const before = { v1: (await seen("app-s-v1")).hits, v2: (await seen("app-s-v2")).hits };
    const batches = 40;
    for (let i = 0; i < batches; i++) {
      const answers = await Promise.all(Array.from({ length: 50 }, () => call("a", "call=s")));
      for (const answer of answers) expect(answer.body.downstream.status).toBe(200);
    }
    const v1 = (await seen("app-s-v1")).hits - before.v1;
    const v2 = (await seen("app-s-v2")).hits - before.v2;
    expect(v1 + v2).toBe(2_000);
    // Binomial: 200 expected, standard deviation 13.4; four of them either way.
    expect(Math.abs(v2 - 200)).toBeLessThan(54);
  }, 120_000);

  it("mirrors a call to the shadow service, and the copy completes after the response (waitUntil)", async () => {
    await mesh.app("app-m-shadow", new Request("http://app/__hold?on=1", { method: "POST" }));
    const answer = await call("a", "call=m");
    expect(answer.body.downstream).toMatchObject({ status: 200, body: { app: "m" } });
    // The caller has its answer while the copy is held at the shadow app (it may still be on its way there).
    const shadow = async () => (await (await mesh.app("app-m-shadow", new Request("http://app/__seen"))).json()) as { mirrored: number; mirrorsAnswered: number };
    let held = await shadow();
    for (let i = 0; i < 400 && held.mirrored < 1; i++) (await sleep(25), (held = await shadow()));
    expect(held).toMatchObject({ mirrored: 1, mirrorsAnswered: 0 });
    await mesh.app("app-m-shadow", new Request("http://app/__hold?on=0", { method: "POST" }));
    let after = held;
    for (let i = 0; i < 400 && after.mirrorsAnswered < 1; i++) (await sleep(25), (after = await shadow()));
    expect(after).toMatchObject({ mirrored: 1, mirrorsAnswered: 1 });
    // The primary never carries the marker.
    expect(((await seen("app-m")) as unknown as { mirrored: number }).mirrored).toBe(0);
  });

  it("retries a failing backend's 5xx on another endpoint, within the retry budget", async () => {
    await setFailing("app-f1", true);
    const answers = await Promise.all(Array.from({ length: 100 }, () => call("a", "call=f")));
    await setFailing("app-f1", false);
    const statuses = answers.map((a) => a.body.downstream.status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const retries = answers.reduce((sum, a) => sum + (Number(a.body.downstream.body.attempt) - 1), 0);
    expect(retries).toBeGreaterThan(0);
    // Linkerd's budget: 20% of requests plus 10 a second over the 10 s window.
    expect(retries).toBeLessThanOrEqual(0.2 * 100 + 10 * 10);
  });

  it("ejects a degraded endpoint and takes it back after probation", async () => {
    await setFailing("app-d1", true);
    // Until d1 has failed 3 times in a row it is still picked; then it is ejected.
    let failures = 0;
    for (let i = 0; i < 60 && failures < 3; i++) if ((await call("a", "call=d")).body.downstream.status === 500) failures++;
    expect(failures).toBe(3);
    const d1Ejected = (await seen("app-d1")).hits;
    for (let i = 0; i < 10; i++) expect((await call("a", "call=d")).body.downstream.status).toBe(200);
    // While ejected, d1 gets nothing: all 10 went to d2.
    expect((await seen("app-d1")).hits).toBe(d1Ejected);
    await setFailing("app-d1", false);
    await sleep(2_200); // past the penalty: the next pick of d1 is its probation
    for (let i = 0; i < 40; i++) expect((await call("a", "call=d")).body.downstream.status).toBe(200);
    expect((await seen("app-d1")).hits).toBeGreaterThan(d1Ejected);
  });

  it("gives 504 deadline-exceeded for a 100 ms budget across three hops, and the last app sees less than 100 ms", async () => {
    const before = (await seen("app-c")).hits;
    const answer = await call("a", "call=b,c&delay=300", { "weft-timeout-ms": "100" });
    expect(answer.status).toBe(504);
    expect(answer.error).toBe("deadline-exceeded");
    const c = await seen("app-c");
    expect(c.hits).toBe(before + 1);
    const budget = c.seen.at(-1)!.timeoutMs!;
    expect(budget).toBeGreaterThan(0);
    expect(budget).toBeLessThan(100);
  });

  it("refuses a forged token and a token minted for another service with 401", async () => {
    const forged = `${btoa(JSON.stringify({ alg: "ES256", kid: "nope", typ: "JWT" }))}.${btoa(JSON.stringify({ sub: "spiffe://weft.test/worker/a", aud: "b" }))}.AAAA`;
    const a = await call("b", "", { "weft-identity": forged });
    expect([a.status, a.error]).toEqual([401, "unauthenticated"]);
    const issued = (await (
      await fetch(`${control.url}/v1/identity/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ audience: "c", worker: { service: "a", secret: secrets.get("a") } }),
      })
    ).json()) as { token: string };
    const b = await call("b", "", { "weft-identity": issued.token });
    expect([b.status, b.error]).toEqual([401, "unauthenticated"]);
    const c = await call("c", "", { "weft-identity": issued.token });
    expect(c.status).toBe(200);
    expect(c.body.clientId).toBe(`spiffe://${TRUST_DOMAIN}/worker/a`);
  });

  it("enforces a DENY policy edited through the control API within the cache TTL + 1 s", async () => {
    expect((await call("a", "call=b")).body.downstream.status).toBe(200);
    const edited = performance.now();
    await control.admin("PUT", "/v1/policies/no-a-to-b", { name: "no-a-to-b", target: { service: "b" }, action: "DENY", from: [{ identities: [`spiffe://${TRUST_DOMAIN}/worker/a`] }] });
    let answer = await call("a", "call=b");
    while (answer.body.downstream.status !== 403 && performance.now() - edited < CONFIG_TTL_MS + 5_000) {
      await sleep(50);
      answer = await call("a", "call=b");
    }
    const took = performance.now() - edited;
    expect(answer.body.downstream).toMatchObject({ status: 403, error: "forbidden" });
    expect(took).toBeLessThan(CONFIG_TTL_MS + 1_000);
    // Other callers of b are not affected.
    expect((await call("c", "")).status).toBe(200);
    await control.admin("DELETE", "/v1/policies/no-a-to-b");
  });

  it("keeps traffic flowing on the last config with the control worker down", async () => {
    await sleep(CONFIG_TTL_MS + 200); // the DELETE above is in force
    expect((await call("a", "call=b,c")).body.downstream.status).toBe(200);
    await control.stop();
    await sleep(CONFIG_TTL_MS + 200); // every router's cache has expired: refreshes now fail
    for (let i = 0; i < 20; i++) {
      const answer = await call("a", "call=b,c");
      expect(answer.status).toBe(200);
      expect(answer.body.downstream.body.downstream.body).toMatchObject({ app: "c", clientId: `spiffe://${TRUST_DOMAIN}/worker/b` });
    }
  });
});
