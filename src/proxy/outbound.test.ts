import { describe, expect, it } from "vitest";
import { createManualClock, fakeUpstream, meshErrorOf, sequenceRandom, web, type ManualClock } from "../testing/index.ts";
import type { FakeUpstream } from "../testing/index.ts";
import type { Random } from "../core/clock.ts";
import { isPerTryTimeout } from "../core/deadline/index.ts";
import { errorResponse } from "../core/errors.ts";
import { metaOf, type Fetch } from "../core/fetch.ts";
import { createRegistry } from "../core/metrics/index.ts";
import { createRetryBudget } from "../core/retry/index.ts";
import type { Filter, Route, RouteTable } from "../core/route/index.ts";
import { createRouteTable, route } from "../core/route/index.ts";
import { routeStack } from "./outbound.ts";

const r = (name: string, extra: Partial<Route> = {}): Route => ({
  name,
  service: "orders",
  matches: [],
  backends: [{ service: "orders", weight: 1 }],
  ...extra,
});

/** One fake upstream per backend service, and a `backend` factory that counts its calls. */
const backends = (answers: Record<string, FakeUpstream>) => {
  const built: string[] = [];
  const backend = (service: string, route: Route): Fetch => {
    built.push(`${route.name}:${service}`);
    const upstream = answers[service];
    if (!upstream) throw new Error(`no fake for ${service}`);
    return upstream;
  };
  return { backend, built };
};

/** The outbound route level over `table`, with `backend` as the backend level, as the proxy builds it. */
function outbound(table: RouteTable, backend: (service: string, route: Route) => Fetch, options: { clock?: ManualClock; random?: Random } = {}) {
  const clock = options.clock ?? createManualClock();
  const registry = createRegistry({ clock });
  const budget = () => createRetryBudget({ ratio: 1, minPerSecond: 100, ttl: 10_000, clock });
  const fetch = route({
    table,
    stacks: (rt) => routeStack(rt, { destination: "orders", registry, budget, backend: (service) => backend(service, rt), clock, random: options.random ?? Math.random }),
  });
  return Object.assign(fetch, { registry });
}

describe("the outbound route level", () => {
  it("sends each request down the stack of the route it matches", async () => {
    const api = fakeUpstream([200]);
    const web = fakeUpstream([201]);
    const table = createRouteTable(
      [
        r("api", { matches: [{ path: { type: "PathPrefix", value: "/api" } }], backends: [{ service: "api", weight: 1 }] }),
        r("web", { backends: [{ service: "web", weight: 1 }] }),
      ],
      "orders",
    );
    const fetch = outbound(table, backends({ api, web }).backend);
    expect((await fetch(new Request("http://orders/api/items"))).status).toBe(200);
    expect((await fetch(new Request("http://orders/index.html"))).status).toBe(201);
    expect(api.requests.map((q) => new URL(q.url).pathname)).toEqual(["/api/items"]);
    expect(web.calls()).toBe(1);
  });

  it("sends everything to the service itself when it has no routes", async () => {
    const orders = fakeUpstream([200]);
    const { backend, built } = backends({ orders });
    const fetch = outbound(createRouteTable([], "orders"), backend);
    expect((await fetch(new Request("http://orders/anything"))).status).toBe(200);
    expect(built).toEqual(["default:orders"]);
  });

  it("answers unknown-service (404) naming the service when its routes match nothing", async () => {
    const table = createRouteTable([r("api", { matches: [{ path: { type: "Exact", value: "/api" } }] })], "orders");
    const fetch = outbound(table, backends({ orders: fakeUpstream() }).backend);
    const error = await meshErrorOf(fetch(new Request("http://orders/nope?token=secret", { method: "POST" })));
    expect(error.code).toBe("unknown-service");
    expect(error.status).toBe(404);
    expect(error.message).toBe("no route of orders matches POST /nope");
  });

  it("splits a route's traffic by weight, picking again for every request", async () => {
    const stable = fakeUpstream([200]);
    const canary = fakeUpstream([200]);
    const table = createRouteTable([r("split", { backends: [{ service: "stable", weight: 90 }, { service: "canary", weight: 10 }] })], "orders");
    const fetch = outbound(table, backends({ stable, canary }).backend, { random: sequenceRandom([0.1, 0.95, 0.5, 0.91]) });
    for (let i = 0; i < 4; i++) await fetch(new Request("http://orders/"));
    expect(stable.calls()).toBe(2);
    expect(canary.calls()).toBe(2);
  });

  it("builds each route's backends once, not per request", async () => {
    const { backend, built } = backends({ a: fakeUpstream(), b: fakeUpstream() });
    const table = createRouteTable(
      [
        r("one", { matches: [{ path: { type: "PathPrefix", value: "/one" } }], backends: [{ service: "a", weight: 1 }, { service: "b", weight: 1 }, { service: "a", weight: 2 }] }),
        r("two", { backends: [{ service: "b", weight: 1 }, { service: "off", weight: 0 }] }),
      ],
      "orders",
    );
    const fetch = outbound(table, backend, { random: sequenceRandom([0.2, 0.4, 0.9]) });
    for (let i = 0; i < 5; i++) {
      await fetch(new Request("http://orders/one"));
      await fetch(new Request("http://orders/two"));
    }
    expect(built).toEqual(["one:a", "one:b", "two:b"]);
  });

  it("answers no-endpoints for a route whose backends all have weight 0", async () => {
    const { backend, built } = backends({});
    const table = createRouteTable([r("drained", { backends: [{ service: "a", weight: 0 }] })], "orders");
    const error = await meshErrorOf(outbound(table, backend)(new Request("http://orders/")));
    expect(error.code).toBe("no-endpoints");
    expect(built).toEqual([]);
  });

  it("bounds the request by the route's request timeout, inside the route's metrics", async () => {
    const clock = createManualClock();
    const slow = fakeUpstream([200], { clock, delay: 5_000 });
    const table = createRouteTable([r("slow", { backends: [{ service: "slow", weight: 1 }], timeouts: { request: "2s" } })], "orders");
    const fetch = outbound(table, backends({ slow }).backend, { clock });
    const result = meshErrorOf(fetch(new Request("http://orders/")));
    await clock.advance(1_999);
    expect(slow.requests[0]!.signal!.aborted).toBe(false);
    await clock.advance(1);
    const error = await result;
    expect(error.code).toBe("deadline-exceeded");
    expect(isPerTryTimeout(error)).toBe(false);
    expect(slow.requests[0]!.signal!.aborted).toBe(true);
    expect(fetch.registry.expose()).toMatch(/weft_response_total\{[^}]*route="slow",status_code="504",classification="failure",error="deadline-exceeded"\} 1/);
  });

  it("hands the backend the request's deadline on the stack's clock", async () => {
    const clock = createManualClock(10_000);
    const orders = fakeUpstream([200]);
    const table = createRouteTable([r("timed", { timeouts: { request: "1.5s" } })], "orders");
    await outbound(table, backends({ orders }).backend, { clock })(new Request("http://orders/"));
    expect(metaOf(orders.requests[0]!).deadline).toBe(11_500);
  });

  it("bounds a request by the caller's budget on a route with no timeout of its own", async () => {
    const clock = createManualClock();
    const slow = fakeUpstream([200], { clock, delay: 5_000 });
    const table = createRouteTable([r("untimed", { backends: [{ service: "slow", weight: 1 }] })], "orders");
    const result = meshErrorOf(outbound(table, backends({ slow }).backend, { clock })(new Request("http://orders/", { headers: { "weft-timeout-ms": "300" } })));
    await clock.advance(300);
    expect(slow.requests[0]!.signal!.aborted).toBe(true);
    // Past the upstream's own delay too, so a budget left unenforced shows as its 200.
    await clock.advance(5_000);
    expect((await result).code).toBe("deadline-exceeded");
    // The backend knows the deadline, so the next hop is told what is left, not the whole budget.
    expect(metaOf(slow.requests[0]!).deadline).toBe(300);
  });

  it("treats a timeout of 0s as none", async () => {
    const clock = createManualClock();
    const slow = fakeUpstream([200], { clock, delay: 60_000 });
    const table = createRouteTable([r("untimed", { backends: [{ service: "slow", weight: 1 }], timeouts: { request: "0s", backendRequest: "0s" } })], "orders");
    const response = await clock.run(outbound(table, backends({ slow }).backend, { clock })(new Request("http://orders/")), { step: 1_000 });
    expect(response.status).toBe(200);
    expect(metaOf(slow.requests[0]!).deadline).toBeUndefined();
  });

  it("gives each try its own backend-request timeout and backend pick, inside the route's retry", async () => {
    const clock = createManualClock();
    const slow = fakeUpstream([200], { clock, delay: 1_000 });
    const fast = fakeUpstream([202]);
    const table = createRouteTable(
      [
        r("retried", {
          backends: [{ service: "slow", weight: 1 }, { service: "fast", weight: 1 }],
          timeouts: { request: "5s", backendRequest: "300ms" },
          retry: { limit: 1, on: ["deadline-per-try"], budget: { ratio: 1, minPerSecond: 10, ttl: "10s" }, backoff: { base: "25ms", max: "250ms" } },
        }),
      ],
      "orders",
    );
    // Draws: the first try's backend (slow), the backoff (0: no wait), the retry's backend (fast).
    const fetch = outbound(table, backends({ slow, fast }).backend, { clock, random: sequenceRandom([0, 0, 0.9]) });
    const response = await clock.run(fetch(new Request("http://orders/")), { step: 50 });
    expect(response.status).toBe(202);
    expect(clock.now()).toBe(300);
    expect(slow.requests[0]!.signal!.aborted).toBe(true);
    expect(metaOf(fast.requests[0]!).deadline).toBe(600);
    expect(fast.requests[0]!.headers.get("weft-attempt")).toBe("2");
  });

  it("answers a try that runs out of its backend-request timeout with deadline-exceeded", async () => {
    const clock = createManualClock();
    const slow = fakeUpstream([200], { clock, delay: 1_000 });
    const table = createRouteTable([r("per-try", { backends: [{ service: "slow", weight: 1 }], timeouts: { backendRequest: "250ms" } })], "orders");
    const error = await meshErrorOf(clock.run(outbound(table, backends({ slow }).backend, { clock })(new Request("http://orders/")), { step: 50 }));
    expect(error.code).toBe("deadline-exceeded");
    expect(isPerTryTimeout(error)).toBe(true);
    expect(clock.now()).toBe(250);
    expect(errorResponse(error).status).toBe(504);
  });

  it("applies the route's header filters to the request and the response", async () => {
    const orders = fakeUpstream([new Response("ok", { headers: { server: "app", "x-internal": "1" } })]);
    const filters: Filter[] = [
      { type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "x-route", value: "shop" }], remove: ["x-debug"] } },
      { type: "ResponseHeaderModifier", responseHeaderModifier: { remove: ["x-internal"], add: [{ name: "x-served-by", value: "weft" }] } },
    ];
    const table = createRouteTable([r("shop", { filters })], "orders");
    const response = await web(outbound(table, backends({ orders }).backend))(new Request("http://orders/", { headers: { "x-debug": "1", "x-route": "other" } }));
    const sent = orders.requests[0]!.headers;
    expect(sent.get("x-route")).toBe("shop");
    expect(sent.has("x-debug")).toBe(false);
    expect(response.headers.get("x-served-by")).toBe("weft");
    expect(response.headers.has("x-internal")).toBe(false);
    expect(response.headers.get("server")).toBe("app");
    expect(await response.text()).toBe("ok");
  });
});
