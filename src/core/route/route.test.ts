import { describe, expect, it } from "vitest";
import { createManualClock, fakeUpstream, sequenceRandom } from "../../testing/index.ts";
import type { FakeUpstream } from "../../testing/index.ts";
import { isPerTryTimeout } from "../deadline/index.ts";
import { MeshError, errorResponse } from "../errors.ts";
import { metaOf, withMeta, type Fetch, type Layer } from "../fetch.ts";
import type { Filter, Route } from "./index.ts";
import { createRouteTable, headerFilters, route } from "./index.ts";

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

const meshError = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a MeshError");
    },
    (error: unknown) => {
      if (!(error instanceof MeshError)) throw error;
      return error;
    },
  );

describe("route", () => {
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
    const fetch = route({ table, ...backends({ api, web }) });
    expect((await fetch(new Request("http://orders/api/items"))).status).toBe(200);
    expect((await fetch(new Request("http://orders/index.html"))).status).toBe(201);
    expect(api.requests.map((q) => new URL(q.url).pathname)).toEqual(["/api/items"]);
    expect(web.calls()).toBe(1);
  });

  it("sends everything to the service itself when it has no routes", async () => {
    const orders = fakeUpstream([200]);
    const { backend, built } = backends({ orders });
    const fetch = route({ table: createRouteTable([], "orders"), backend });
    expect((await fetch(new Request("http://orders/anything"))).status).toBe(200);
    expect(built).toEqual(["default:orders"]);
  });

  it("answers unknown-service (404) naming the service when its routes match nothing", async () => {
    const table = createRouteTable([r("api", { matches: [{ path: { type: "Exact", value: "/api" } }] })], "orders");
    const fetch = route({ table, ...backends({ orders: fakeUpstream() }) });
    const error = await meshError(fetch(new Request("http://orders/nope?token=secret", { method: "POST" })));
    expect(error.code).toBe("unknown-service");
    expect(error.status).toBe(404);
    expect(error.message).toBe("no route of orders matches POST /nope");
  });

  it("splits a route's traffic by weight, picking again for every request", async () => {
    const stable = fakeUpstream([200]);
    const canary = fakeUpstream([200]);
    const table = createRouteTable([r("split", { backends: [{ service: "stable", weight: 90 }, { service: "canary", weight: 10 }] })], "orders");
    const fetch = route({ table, ...backends({ stable, canary }), random: sequenceRandom([0.1, 0.95, 0.5, 0.91]) });
    for (let i = 0; i < 4; i++) await fetch(new Request("http://orders/"));
    expect(stable.calls()).toBe(2);
    expect(canary.calls()).toBe(2);
  });

  it("builds each route's backends and layers once, not per request", async () => {
    const { backend, built } = backends({ a: fakeUpstream(), b: fakeUpstream() });
    const layerBuilds: string[] = [];
    const counted = (kind: string) => (rt: Route): Layer[] => {
      layerBuilds.push(`${kind}:${rt.name}`);
      return [];
    };
    const table = createRouteTable(
      [
        r("one", { matches: [{ path: { type: "PathPrefix", value: "/one" } }], backends: [{ service: "a", weight: 1 }, { service: "b", weight: 1 }, { service: "a", weight: 2 }] }),
        r("two", { backends: [{ service: "b", weight: 1 }, { service: "off", weight: 0 }] }),
      ],
      "orders",
    );
    const fetch = route({ table, backend, outer: counted("outer"), inner: counted("inner"), random: sequenceRandom([0.2, 0.4, 0.9]) });
    for (let i = 0; i < 5; i++) {
      await fetch(new Request("http://orders/one"));
      await fetch(new Request("http://orders/two"));
    }
    expect(built).toEqual(["one:a", "one:b", "two:b"]);
    expect(layerBuilds).toEqual(["outer:one", "inner:one", "outer:two", "inner:two"]);
  });

  it("answers no-endpoints for a route whose backends all have weight 0", async () => {
    const { backend, built } = backends({});
    const table = createRouteTable([r("drained", { backends: [{ service: "a", weight: 0 }] })], "orders");
    const error = await meshError(route({ table, backend })(new Request("http://orders/")));
    expect(error.code).toBe("no-endpoints");
    expect(built).toEqual([]);
  });

  it("bounds the request by the route's request timeout, outside the route's outer layers' reach", async () => {
    const clock = createManualClock();
    const slow = fakeUpstream([200], { clock, delay: 5_000 });
    const seen: string[] = [];
    const observe: Layer = (next) => async (request) => {
      try {
        return await next(request);
      } catch (error) {
        seen.push((error as MeshError).code);
        throw error;
      }
    };
    const table = createRouteTable([r("slow", { backends: [{ service: "slow", weight: 1 }], timeouts: { request: "2s" } })], "orders");
    const fetch = route({ table, ...backends({ slow }), outer: () => [observe], clock });
    const result = meshError(fetch(new Request("http://orders/")));
    await clock.advance(1_999);
    expect(slow.requests[0]!.signal.aborted).toBe(false);
    await clock.advance(1);
    const error = await result;
    expect(error.code).toBe("deadline-exceeded");
    expect(isPerTryTimeout(error)).toBe(false);
    expect(slow.requests[0]!.signal.aborted).toBe(true);
    expect(seen).toEqual(["deadline-exceeded"]);
  });

  it("hands the backend the request's deadline on the stack's clock", async () => {
    const clock = createManualClock(10_000);
    const orders = fakeUpstream([200]);
    const table = createRouteTable([r("timed", { timeouts: { request: "1.5s" } })], "orders");
    await route({ table, ...backends({ orders }), clock })(new Request("http://orders/"));
    expect(metaOf(orders.requests[0]!).deadline).toBe(11_500);
  });

  it("bounds a request by the caller's budget on a route with no timeout of its own", async () => {
    const clock = createManualClock();
    const slow = fakeUpstream([200], { clock, delay: 5_000 });
    const table = createRouteTable([r("untimed", { backends: [{ service: "slow", weight: 1 }] })], "orders");
    const result = meshError(route({ table, ...backends({ slow }), clock })(new Request("http://orders/", { headers: { "weft-timeout-ms": "300" } })));
    await clock.advance(300);
    expect(slow.requests[0]!.signal.aborted).toBe(true);
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
    const response = await clock.run(route({ table, ...backends({ slow }), clock })(new Request("http://orders/")), { step: 1_000 });
    expect(response.status).toBe(200);
    expect(metaOf(slow.requests[0]!).deadline).toBeUndefined();
  });

  it("gives each try its own backend-request timeout and backend pick, inside the host's retry layer", async () => {
    const clock = createManualClock();
    const slow = fakeUpstream([200], { clock, delay: 1_000 });
    const fast = fakeUpstream([202]);
    // A minimal retry for the test: one more try after a per-try timeout.
    const retryOnce: Layer = (next) => async (request) => {
      try {
        return await next(request);
      } catch (error) {
        if (!isPerTryTimeout(error)) throw error;
        return next(request);
      }
    };
    const table = createRouteTable(
      [r("retried", { backends: [{ service: "slow", weight: 1 }, { service: "fast", weight: 1 }], timeouts: { request: "5s", backendRequest: "300ms" } })],
      "orders",
    );
    const fetch = route({ table, ...backends({ slow, fast }), inner: () => [retryOnce], clock, random: sequenceRandom([0, 0.9]) });
    const response = await clock.run(fetch(new Request("http://orders/")), { step: 50 });
    expect(response.status).toBe(202);
    expect(clock.now()).toBe(300);
    expect(slow.requests[0]!.signal.aborted).toBe(true);
    expect(metaOf(fast.requests[0]!).deadline).toBe(600);
  });

  it("answers a try that runs out of its backend-request timeout with deadline-exceeded", async () => {
    const clock = createManualClock();
    const slow = fakeUpstream([200], { clock, delay: 1_000 });
    const table = createRouteTable([r("per-try", { backends: [{ service: "slow", weight: 1 }], timeouts: { backendRequest: "250ms" } })], "orders");
    const error = await meshError(clock.run(route({ table, ...backends({ slow }), clock })(new Request("http://orders/")), { step: 50 }));
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
    const response = await route({ table, ...backends({ orders }) })(new Request("http://orders/", { headers: { "x-debug": "1", "x-route": "other" } }));
    const sent = orders.requests[0]!.headers;
    expect(sent.get("x-route")).toBe("shop");
    expect(sent.has("x-debug")).toBe(false);
    expect(response.headers.get("x-served-by")).toBe("weft");
    expect(response.headers.has("x-internal")).toBe(false);
    expect(response.headers.get("server")).toBe("app");
    expect(await response.text()).toBe("ok");
  });
});

describe("headerFilters", () => {
  const modifier = (m: Extract<Filter, { type: "RequestHeaderModifier" }>["requestHeaderModifier"]): Filter => ({ type: "RequestHeaderModifier", requestHeaderModifier: m });

  it("removes, then sets, then adds, case-insensitively, filter by filter in order", async () => {
    const upstream = fakeUpstream([200]);
    const layer = headerFilters([
      modifier({ add: [{ name: "X-Tag", value: "b" }], set: [{ name: "x-mode", value: "new" }], remove: ["X-Mode", "x-gone"] }),
      modifier({ add: [{ name: "x-tag", value: "c" }] }),
    ]);
    await layer(upstream)(new Request("http://orders/", { headers: { "x-tag": "a", "x-mode": "old", "x-gone": "1", "x-kept": "1" } }));
    const sent = upstream.requests[0]!.headers;
    expect(sent.get("x-tag")).toBe("a, b, c");
    expect(sent.get("x-mode")).toBe("new");
    expect(sent.has("x-gone")).toBe(false);
    expect(sent.get("x-kept")).toBe("1");
  });

  it("keeps the request's body, method and deadline", async () => {
    const upstream = fakeUpstream([200]);
    const layer = headerFilters([modifier({ set: [{ name: "x-a", value: "1" }] })]);
    const request = new Request("http://orders/items", { method: "PUT", body: "payload" });
    await layer(upstream)(withMeta(request, { deadline: 42 }));
    expect(upstream.requests[0]!.method).toBe("PUT");
    expect(upstream.bodies[0]).toBe("payload");
    expect(metaOf(upstream.requests[0]!).deadline).toBe(42);
  });

  it("keeps the response's status and body when changing its headers", async () => {
    const layer = headerFilters([{ type: "ResponseHeaderModifier", responseHeaderModifier: { set: [{ name: "cache-control", value: "no-store" }] } }]);
    const response = await layer(fakeUpstream([new Response("gone", { status: 410, statusText: "Gone" })]))(new Request("http://orders/"));
    expect(response.status).toBe(410);
    expect(response.statusText).toBe("Gone");
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(await response.text()).toBe("gone");
  });

  it("leaves requests and responses untouched without header filters", async () => {
    const answer = new Response("x");
    const request = new Request("http://orders/");
    const upstream = fakeUpstream([answer]);
    expect(await headerFilters([])(upstream)(request)).toBe(answer);
    expect(upstream.requests[0]).toBe(request);
  });
});
