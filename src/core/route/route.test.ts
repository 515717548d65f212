import { describe, expect, it } from "vitest";
import { fakeUpstream, meshErrorOf, web } from "../../testing/index.ts";
import { metaOf, withMeta } from "../fetch.ts";
import type { Filter, Route } from "./index.ts";
import { createRouteTable, headerFilters, route } from "./index.ts";

const r = (name: string, extra: Partial<Route> = {}): Route => ({
  name,
  service: "orders",
  matches: [],
  backends: [{ service: "orders", weight: 1 }],
  ...extra,
});

describe("route", () => {
  it("matches each request once, records the route in its metadata, and hands it to that route's stack", async () => {
    const seen: string[] = [];
    const built: string[] = [];
    const table = createRouteTable(
      [r("api", { matches: [{ path: { type: "PathPrefix", value: "/api" } }] }), r("web")],
      "orders",
    );
    const fetch = route({
      table,
      stacks: (rt) => {
        built.push(rt.name);
        return async (request) => (seen.push(`${rt.name}:${metaOf(request).route}`), new Response("ok"));
      },
    });
    await fetch(new Request("http://orders/api/items"));
    await fetch(new Request("http://orders/index.html"));
    await fetch(new Request("http://orders/api"));
    expect(seen).toEqual(["api:api", "web:web", "api:api"]);
    expect(built).toEqual(["api", "web"]);
  });

  it("answers unknown-service (404) naming the service when its routes match nothing", async () => {
    const table = createRouteTable([r("api", { matches: [{ path: { type: "Exact", value: "/api" } }] })], "orders");
    const fetch = route({ table, stacks: () => fakeUpstream() });
    const error = await meshErrorOf(fetch(new Request("http://orders/nope?token=secret", { method: "POST" })));
    expect(error.code).toBe("unknown-service");
    expect(error.status).toBe(404);
    expect(error.message).toBe("no route of orders matches POST /nope");
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
    const response = await web(layer(fakeUpstream([new Response("gone", { status: 410, statusText: "Gone" })])))(new Request("http://orders/"));
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
