import { describe, expect, it } from "vitest";
import { createIssuer, memoryKeyStore } from "../../src/identity/index.ts";
import { createRouterApp } from "./app.ts";

const ctx = { waitUntil: () => {} };
const SECRET = "a-bootstrap-secret-of-enough-length";
const snapshotText = (version: number) =>
  JSON.stringify({ version, services: [{ name: "orders", endpoints: [{ id: "o1", address: "binding:ORDERS" }] }], routes: [], policies: [], jwks: { keys: [] } });

/** A fake KV namespace holding `value` under `snapshot`, or failing when `value` is an Error. */
const kv = (value: () => string | null | Error) => ({
  get: async (key: string) => {
    const v = value();
    if (v instanceof Error) throw v;
    return key === "snapshot" ? v : null;
  },
});

/** A fake control worker that answers the token exchange and counts snapshot reads. */
function fakeControl(snapshot = () => snapshotText(7)) {
  const calls: string[] = [];
  let down = false;
  const token = `${btoa(JSON.stringify({ alg: "ES256", kid: "k" }))}.${btoa(JSON.stringify({ iss: "http://control.test", exp: Math.floor(Date.now() / 1000) + 900, iat: Math.floor(Date.now() / 1000) }))}.sig`;
  return {
    calls,
    setDown: (value: boolean) => (down = value),
    fetch: async (request: Request) => {
      const path = new URL(request.url).pathname;
      calls.push(path);
      if (down) throw new TypeError("connection refused");
      if (path === "/v1/identity/token") return Response.json({ token });
      if (path === "/v1/snapshot") return new Response(snapshot(), { headers: { "content-type": "application/json" } });
      return new Response("no", { status: 404 });
    },
  };
}

describe("a misconfigured router", () => {
  it("answers every request with 500 misconfigured naming each bad setting, and logs it once", async () => {
    const logs: string[] = [];
    const app = createRouterApp({ env: { WEFT_SERVICE: "Orders!", WEFT_BOOTSTRAP_SECRET: "short" }, log: (line) => logs.push(line) });
    for (const side of [app.inbound, app.outbound]) {
      const response = await side(new Request("http://orders/"), ctx);
      expect(response.status).toBe(500);
      expect(response.headers.get("weft-error")).toBe("misconfigured");
      const { error } = (await response.json()) as { error: { message: string } };
      for (const setting of ["WEFT_SERVICE", "WEFT_TRUST_DOMAIN", "WEFT_BOOTSTRAP_SECRET", "CONTROL", "APP"]) expect(error.message).toContain(setting);
      expect(error.message).not.toContain("short"); // never a secret's value
    }
    expect(logs).toHaveLength(1);
  });

  it("names an endpoint binding the router does not have", async () => {
    const control = fakeControl();
    const app = createRouterApp({
      env: { WEFT_SERVICE: "web", WEFT_TRUST_DOMAIN: "weft.test", WEFT_BOOTSTRAP_SECRET: SECRET, CONTROL: control, APP_ORIGIN: "http://127.0.0.1:1", WEFT_CONFIG: kv(() => snapshotText(1)) },
    });
    const response = await app.outbound(new Request("http://orders/"), ctx);
    expect(response.status).toBe(500);
    expect(await response.text()).toContain("binding:ORDERS");
  });
});

describe("the router's config", () => {
  const env = (extra: Record<string, unknown>) => ({ WEFT_SERVICE: "web", WEFT_TRUST_DOMAIN: "weft.test", WEFT_BOOTSTRAP_SECRET: SECRET, APP_ORIGIN: "http://127.0.0.1:1", ...extra });
  const orders = { fetch: async () => new Response("from orders") };

  it("is read from KV and cached for the TTL", async () => {
    let reads = 0;
    const control = fakeControl();
    let now = 0;
    const app = createRouterApp({ env: env({ CONTROL: control, ORDERS: orders, WEFT_CONFIG_TTL_MS: "5000", WEFT_CONFIG: kv(() => (reads++, snapshotText(1))) }), now: () => now });
    for (let i = 0; i < 3; i++) expect((await app.outbound(new Request("http://orders/"), ctx)).status).toBe(200);
    expect(reads).toBe(1);
    now += 5_001;
    await app.outbound(new Request("http://orders/"), ctx);
    expect(reads).toBe(2);
    expect(control.calls).not.toContain("/v1/snapshot");
  });

  it("comes from the control worker while KV has none", async () => {
    const control = fakeControl();
    const app = createRouterApp({ env: env({ CONTROL: control, ORDERS: orders, WEFT_CONFIG: kv(() => null) }) });
    expect(await (await app.outbound(new Request("http://orders/"), ctx)).text()).toBe("from orders");
    expect(control.calls).toContain("/v1/snapshot");
  });

  it("keeps the last snapshot when KV and the control worker fail (stale-if-error)", async () => {
    const control = fakeControl();
    let broken = false;
    let now = 0;
    const app = createRouterApp({
      env: env({ CONTROL: control, ORDERS: orders, WEFT_CONFIG_TTL_MS: "1000", WEFT_CONFIG: kv(() => (broken ? new Error("KV down") : snapshotText(1))) }),
      now: () => now,
      log: () => {},
    });
    expect((await app.outbound(new Request("http://orders/"), ctx)).status).toBe(200);
    broken = true;
    control.setDown(true);
    now += 60_000;
    expect((await app.outbound(new Request("http://orders/"), ctx)).status).toBe(200);
  });

  it("routes only bare service names: a host outside the mesh gets unknown-service, reaches no binding and asks no one", async () => {
    const control = fakeControl();
    let reached = 0;
    const counted = { fetch: async () => (reached++, new Response("from orders")) };
    const app = createRouterApp({ env: env({ CONTROL: control, ORDERS: counted, WEFT_CONFIG: kv(() => snapshotText(1)) }), log: () => {} });
    expect(await (await app.outbound(new Request("http://orders/"), ctx)).text()).toBe("from orders");
    const asked = control.calls.length;
    for (const url of ["http://orders.example.com/", "http://orders.evil.example/x", "http://orders.shop.svc.cluster.local/", "http://10.0.0.1/"]) {
      const response = await app.outbound(new Request(url), ctx);
      expect(response.status, url).toBe(404);
      expect(response.headers.get("weft-error"), url).toBe("unknown-service");
    }
    expect(reached).toBe(1);
    expect(control.calls.slice(asked).filter((path) => path === "/v1/snapshot")).toEqual([]);
  });

  it("answers no-endpoints (503) when it has never had a config and cannot get one", async () => {
    const control = fakeControl();
    control.setDown(true);
    const app = createRouterApp({ env: env({ CONTROL: control, WEFT_CONFIG: kv(() => null) }), log: () => {} });
    const response = await app.outbound(new Request("http://orders/"), ctx);
    expect(response.status).toBe(503);
    expect(response.headers.get("weft-error")).toBe("no-endpoints");
  });

  it("asks the control worker, not KV again, for a service its snapshot does not name (KV lags writes), at most once a second", async () => {
    const control = fakeControl();
    let now = 0;
    const empty = JSON.stringify({ version: 1, services: [], routes: [], policies: [], jwks: { keys: [] } });
    const app = createRouterApp({ env: env({ CONTROL: control, ORDERS: orders, WEFT_CONFIG: kv(() => empty) }), now: () => now, log: () => {} });
    expect(await (await app.outbound(new Request("http://orders/"), ctx)).text()).toBe("from orders");
    const reads = () => control.calls.filter((path) => path === "/v1/snapshot").length;
    expect(reads()).toBe(1);
    // A name the control plane does not know either: 404, asked once, not again within the second.
    now += 1_001;
    for (let i = 0; i < 3; i++) expect((await app.outbound(new Request("http://payments/"), ctx)).status).toBe(404);
    expect(reads()).toBe(2);
    now += 1_001;
    expect((await app.outbound(new Request("http://payments/"), ctx)).headers.get("weft-error")).toBe("unknown-service");
    expect(reads()).toBe(3);
  });

  it("learns a signing key its KV snapshot lacks from the control worker, so a caller signed with it is verified", async () => {
    const issuer = createIssuer({ issuer: "http://control.test", trustDomain: "weft.test", keys: memoryKeyStore() });
    const token = await issuer.mint("spiffe://weft.test/worker/a", "web");
    const snapshot = (jwks: unknown) => JSON.stringify({ version: jwks ? 2 : 1, services: [{ name: "web", defaultPolicy: "all-authenticated" }], routes: [], policies: [], jwks: jwks ?? { keys: [] } });
    const withKey = snapshot(await issuer.jwks());
    const control = fakeControl(() => withKey);
    const app = { fetch: async (request: Request) => new Response(request.headers.get("weft-client-id")) };
    const router = createRouterApp({
      env: { ...env({ CONTROL: control, APP: app, WEFT_CONFIG: kv(() => snapshot(undefined)), WEFT_ISSUER_URL: "http://control.test" }), APP_ORIGIN: undefined },
      log: () => {},
    });
    const response = await router.inbound(new Request("http://web/", { headers: { "weft-identity": token } }), ctx);
    expect(await response.text()).toBe("spiffe://weft.test/worker/a");
    expect(control.calls).toContain("/v1/snapshot");
  });

  it("never steps back to an older version that an eventually consistent KV returns", async () => {
    const control = fakeControl();
    let version = 3;
    let now = 0;
    const seen: string[] = [];
    const newer = { fetch: async () => new Response("v3") };
    const app = createRouterApp({
      env: env({
        CONTROL: control,
        ORDERS: newer,
        WEFT_CONFIG_TTL_MS: "1000",
        WEFT_CONFIG: kv(() =>
          JSON.stringify({ version, services: version === 3 ? [{ name: "orders", endpoints: [{ id: "o", address: "binding:ORDERS" }] }] : [], routes: [], policies: [], jwks: { keys: [] } }),
        ),
      }),
      now: () => now,
    });
    seen.push(await (await app.outbound(new Request("http://orders/"), ctx)).text());
    version = 2; // an older replica answers
    now += 2_000;
    seen.push(await (await app.outbound(new Request("http://orders/"), ctx)).text());
    expect(seen).toEqual(["v3", "v3"]);
  });

  it("follows the mesh's Tracing resource from its snapshot for the requests after it, unless its own OTEL_TRACES_SAMPLER is set", async () => {
    let tracing: unknown = { name: "mesh", version: 1, sampler: "always_off" };
    let version = 1;
    let now = 0;
    const flags: string[] = [];
    const orders = { fetch: async (request: Request) => (flags.push(request.headers.get("traceparent")?.slice(-2) ?? "none"), new Response("ok")) };
    const snapshot = () => JSON.stringify({ version, services: [{ name: "orders", endpoints: [{ id: "o", address: "binding:ORDERS" }] }], routes: [], policies: [], jwks: { keys: [] }, ...(tracing !== undefined && { tracing }) });
    // A collector address nothing listens on: exports fail quietly, off the request path.
    const tracingVars = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_TRACES_SAMPLER_ARG: "0" };
    const app = createRouterApp({ env: env({ CONTROL: fakeControl(), ORDERS: orders, WEFT_CONFIG_TTL_MS: "1000", WEFT_CONFIG: kv(snapshot), ...tracingVars }), now: () => now });
    const call = async () => expect((await app.outbound(new Request("http://orders/"), ctx)).status).toBe(200);
    for (let i = 0; i < 5; i++) await call();
    [version, tracing] = [2, { name: "mesh", version: 2, sampler: "always_on" }];
    now += 2_000;
    for (let i = 0; i < 5; i++) await call();
    [version, tracing] = [3, undefined];
    now += 2_000;
    for (let i = 0; i < 5; i++) await call();
    expect(flags).toEqual([...Array(5).fill("00"), ...Array(5).fill("01"), ...Array(5).fill("00")]);

    // Its own sampler wins over the resource.
    flags.length = 0;
    [version, tracing] = [4, { name: "mesh", version: 4, sampler: "always_on" }];
    const own = createRouterApp({ env: env({ CONTROL: fakeControl(), ORDERS: orders, WEFT_CONFIG: kv(snapshot), ...tracingVars, OTEL_TRACES_SAMPLER: "always_off" }), now: () => now });
    for (let i = 0; i < 5; i++) expect((await own.outbound(new Request("http://orders/"), ctx)).status).toBe(200);
    expect(flags).toEqual(Array(5).fill("00"));
  });
});

describe("the router's metrics", () => {
  it("leave the isolate in batches after the response: pushed to the control worker and written to Analytics Engine", async () => {
    const control = fakeControl();
    const pushed: unknown[] = [];
    const controlWithStats = {
      fetch: async (request: Request) => {
        if (new URL(request.url).pathname === "/v1/stats") {
          pushed.push(await request.json());
          return Response.json({ accepted: true }, { status: 202 });
        }
        return control.fetch(request);
      },
    };
    const points: AnalyticsEngineDataPoint[] = [];
    const tasks: Promise<unknown>[] = [];
    let now = 0;
    const app = createRouterApp({
      env: {
        WEFT_SERVICE: "web",
        WEFT_TRUST_DOMAIN: "weft.test",
        WEFT_BOOTSTRAP_SECRET: SECRET,
        APP_ORIGIN: "http://127.0.0.1:1",
        CONTROL: controlWithStats,
        ORDERS: { fetch: async () => new Response("ok") },
        WEFT_CONFIG: kv(() => snapshotText(1)),
        WEFT_STATS_INTERVAL_MS: "1000",
        WEFT_ANALYTICS: { writeDataPoint: (point: AnalyticsEngineDataPoint) => points.push(point) },
      },
      now: () => now,
    });
    const waitUntil = { waitUntil: (task: Promise<unknown>) => tasks.push(task) };
    for (let i = 0; i < 3; i++) await app.outbound(new Request("http://orders/"), waitUntil);
    expect(pushed).toHaveLength(0); // nothing on the request path before the interval
    now += 1_000;
    await app.outbound(new Request("http://orders/"), waitUntil);
    await Promise.all(tasks);
    expect(pushed).toHaveLength(1);
    expect(points).toHaveLength(1);
    expect(points[0]).toMatchObject({ indexes: ["orders"], blobs: ["outbound", "spiffe://weft.test/worker/web", "orders", "default", "200", "success", ""], doubles: [4, expect.any(Number)] });
  });

  it("leave one interval after the last request of a burst, with no later request to carry them", async () => {
    const pushed: unknown[] = [];
    const control = fakeControl();
    const tasks: Promise<unknown>[] = [];
    const app = createRouterApp({
      env: {
        WEFT_SERVICE: "web",
        WEFT_TRUST_DOMAIN: "weft.test",
        WEFT_BOOTSTRAP_SECRET: SECRET,
        APP_ORIGIN: "http://127.0.0.1:1",
        CONTROL: {
          fetch: async (request: Request) => {
            if (new URL(request.url).pathname !== "/v1/stats") return control.fetch(request);
            pushed.push(await request.json());
            return Response.json({ accepted: true }, { status: 202 });
          },
        },
        ORDERS: { fetch: async () => new Response("ok") },
        WEFT_CONFIG: kv(() => snapshotText(1)),
        WEFT_STATS_INTERVAL_MS: "1000",
      },
    });
    const waitUntil = { waitUntil: (task: Promise<unknown>) => tasks.push(task) };
    for (let i = 0; i < 3; i++) await app.outbound(new Request("http://orders/"), waitUntil);
    expect(pushed).toHaveLength(0);
    await Promise.all(tasks);
    expect(pushed).toHaveLength(1);
    expect(JSON.stringify(pushed[0])).toContain('"count":3');
  });
});
