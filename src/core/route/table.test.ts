import { describe, expect, it } from "vitest";
import type { Route, RouteMatch } from "./index.ts";
import { DEFAULT_ROUTE_NAME, createRouteTable } from "./index.ts";

type MatchInput = Omit<RouteMatch, "headers" | "query"> & {
  headers?: { name: string; value: string; type?: "Exact" | "RegularExpression" }[];
  query?: { name: string; value: string; type?: "Exact" | "RegularExpression" }[];
};

const route = (name: string, matches: MatchInput[] = [], service = "orders"): Route => ({
  name,
  service,
  matches: matches.map((m) => ({
    ...m,
    headers: m.headers?.map((h) => ({ type: "Exact" as const, ...h })),
    query: m.query?.map((q) => ({ type: "Exact" as const, ...q })),
  })),
  backends: [{ service: name, weight: 1 }],
});

const req = (path: string, init: { method?: string; headers?: Record<string, string> } = {}) =>
  new Request(`http://orders${path}`, init);

const nameOf = (routes: Route[], path: string, init?: Parameters<typeof req>[1]) =>
  createRouteTable(routes, "orders").match(req(path, init))?.route.name;

describe("createRouteTable", () => {
  it("gives a service without routes one default route to itself", () => {
    const table = createRouteTable([route("elsewhere", [], "payments")], "orders");
    const matched = table.match(req("/anything/at/all"));
    expect(matched?.route.name).toBe(DEFAULT_ROUTE_NAME);
    expect(matched?.route.backends).toEqual([{ service: "orders", weight: 1 }]);
    expect(matched?.matchIndex).toBe(-1);
  });

  it("matches nothing when the service has routes and none fits", () => {
    const table = createRouteTable([route("api", [{ path: { type: "PathPrefix", value: "/api" } }])], "orders");
    expect(table.match(req("/other"))).toBeUndefined();
    expect(table.routes.map((r) => r.name)).toEqual(["api"]);
  });

  it("ignores routes of other services", () => {
    const routes = [route("theirs", [{ path: { type: "PathPrefix", value: "/api/v2" } }], "payments"), route("ours", [{ path: { type: "PathPrefix", value: "/api" } }])];
    expect(nameOf(routes, "/api/v2/x")).toBe("ours");
  });

  it("treats a route without matches as matching every request", () => {
    expect(nameOf([route("all")], "/x/y")).toBe("all");
  });

  it("matches a PathPrefix by whole path elements, ignoring a trailing slash on the prefix", () => {
    for (const value of ["/api", "/api/"]) {
      const routes = [route("api", [{ path: { type: "PathPrefix", value } }])];
      expect(nameOf(routes, "/api")).toBe("api");
      expect(nameOf(routes, "/api/")).toBe("api");
      expect(nameOf(routes, "/api/items/7")).toBe("api");
      expect(nameOf(routes, "/apix")).toBeUndefined();
      expect(nameOf(routes, "/ap")).toBeUndefined();
    }
  });

  it("matches an Exact path only when equal, trailing slash included", () => {
    const routes = [route("exact", [{ path: { type: "Exact", value: "/api" } }])];
    expect(nameOf(routes, "/api")).toBe("exact");
    expect(nameOf(routes, "/api/")).toBeUndefined();
    expect(nameOf(routes, "/api/x")).toBeUndefined();
  });

  it("matches a RegularExpression against the whole path", () => {
    const routes = [route("items", [{ path: { type: "RegularExpression", value: "/items/[0-9]+" } }])];
    expect(nameOf(routes, "/items/42")).toBe("items");
    expect(nameOf(routes, "/items/42/x")).toBeUndefined();
    expect(nameOf(routes, "/v1/items/42")).toBeUndefined();
  });

  it("prefers an Exact path over any prefix, and the longest prefix over shorter ones", () => {
    const routes = [
      route("root", [{ path: { type: "PathPrefix", value: "/" } }]),
      route("api", [{ path: { type: "PathPrefix", value: "/api" } }]),
      route("api-items", [{ path: { type: "PathPrefix", value: "/api/items" } }]),
      route("exact", [{ path: { type: "Exact", value: "/api/items" } }]),
    ];
    expect(nameOf(routes, "/api/items")).toBe("exact");
    expect(nameOf(routes, "/api/items/3")).toBe("api-items");
    expect(nameOf(routes, "/api/other")).toBe("api");
    expect(nameOf(routes, "/web")).toBe("root");
  });

  it("ranks regular expressions after every Exact and PathPrefix match", () => {
    const routes = [route("regex", [{ path: { type: "RegularExpression", value: "/api/.*" } }]), route("root", [{ path: { type: "PathPrefix", value: "/" } }])];
    expect(nameOf(routes, "/api/x")).toBe("root");
    const withoutCatchAll = [routes[0]!, route("web", [{ path: { type: "PathPrefix", value: "/web" } }])];
    expect(nameOf(withoutCatchAll, "/api/x")).toBe("regex");
  });

  it("prefers, at equal paths, a method match, then more header matches, then more query matches", () => {
    const routes = [
      route("plain", [{ path: { type: "PathPrefix", value: "/api" } }]),
      route("query", [{ path: { type: "PathPrefix", value: "/api" }, query: [{ name: "v", value: "2" }] }]),
      route("header", [{ path: { type: "PathPrefix", value: "/api" }, headers: [{ name: "x-canary", value: "1" }] }]),
      route("two-headers", [{ path: { type: "PathPrefix", value: "/api" }, headers: [{ name: "x-canary", value: "1" }, { name: "x-user", value: "ann" }] }]),
      route("method", [{ path: { type: "PathPrefix", value: "/api" }, method: "POST" }]),
    ];
    const all = { "x-canary": "1", "x-user": "ann" };
    expect(nameOf(routes, "/api?v=2", { method: "POST", headers: all })).toBe("method");
    expect(nameOf(routes, "/api?v=2", { headers: all })).toBe("two-headers");
    expect(nameOf(routes, "/api?v=2", { headers: { "x-canary": "1" } })).toBe("header");
    expect(nameOf(routes, "/api?v=2")).toBe("query");
    expect(nameOf(routes, "/api?v=3")).toBe("plain");
  });

  it("lets a longer prefix win over a shorter one that matches more headers", () => {
    const routes = [
      route("short", [{ path: { type: "PathPrefix", value: "/api" }, method: "GET", headers: [{ name: "x-a", value: "1" }] }]),
      route("long", [{ path: { type: "PathPrefix", value: "/api/items" } }]),
    ];
    expect(nameOf(routes, "/api/items", { headers: { "x-a": "1" } })).toBe("long");
  });

  it("breaks full ties by route order, then by the route's first match", () => {
    const first = route("first", [{ path: { type: "PathPrefix", value: "/other" } }, { path: { type: "PathPrefix", value: "/api" } }]);
    const second = route("second", [{ path: { type: "PathPrefix", value: "/api" } }]);
    expect(nameOf([first, second], "/api")).toBe("first");
    expect(nameOf([second, first], "/api")).toBe("second");
    const both = route("both", [{ path: { type: "PathPrefix", value: "/api" } }, { path: { type: "PathPrefix", value: "/api/" } }]);
    expect(createRouteTable([both], "orders").match(req("/api/x"))?.matchIndex).toBe(0);
  });

  it("reports which of the route's matches matched", () => {
    const r = route("two", [{ path: { type: "Exact", value: "/a" } }, { path: { type: "Exact", value: "/b" } }]);
    expect(createRouteTable([r], "orders").match(req("/b"))).toEqual({ route: r, matchIndex: 1 });
  });

  it("requires every condition of one match, and any one of a route's matches", () => {
    const routes = [
      route("either", [
        { path: { type: "PathPrefix", value: "/a" }, method: "GET" },
        { path: { type: "PathPrefix", value: "/b" }, headers: [{ name: "x-b", value: "yes" }] },
      ]),
    ];
    expect(nameOf(routes, "/a")).toBe("either");
    expect(nameOf(routes, "/a", { method: "POST" })).toBeUndefined();
    expect(nameOf(routes, "/b", { headers: { "x-b": "yes" } })).toBe("either");
    expect(nameOf(routes, "/b")).toBeUndefined();
    expect(nameOf(routes, "/a", { headers: { "x-b": "yes" }, method: "DELETE" })).toBeUndefined();
  });

  it("matches header names case-insensitively and header values exactly or by whole-value regex", () => {
    const routes = [
      route("exact", [{ headers: [{ name: "X-Canary", value: "On" }] }]),
      route("regex", [{ headers: [{ name: "x-user", value: "a.+", type: "RegularExpression" }] }]),
    ];
    expect(nameOf(routes, "/", { headers: { "x-canary": "On" } })).toBe("exact");
    expect(nameOf(routes, "/", { headers: { "x-canary": "on" } })).toBeUndefined();
    expect(nameOf(routes, "/", { headers: { "x-user": "ann" } })).toBe("regex");
    expect(nameOf(routes, "/", { headers: { "x-user": "bann" } })).toBeUndefined();
  });

  it("matches query parameter names and values exactly, on the first value of a repeated one", () => {
    const routes = [route("v2", [{ query: [{ name: "version", value: "2" }] }]), route("re", [{ query: [{ name: "id", value: "[0-9]+", type: "RegularExpression" }] }])];
    expect(nameOf(routes, "/?version=2")).toBe("v2");
    expect(nameOf(routes, "/?Version=2")).toBeUndefined();
    expect(nameOf(routes, "/?version=2&version=3")).toBe("v2");
    expect(nameOf(routes, "/?version=3&version=2")).toBeUndefined();
    expect(nameOf(routes, "/?id=17")).toBe("re");
    expect(nameOf(routes, "/?id=17a")).toBeUndefined();
  });

  it("considers only the first of several entries naming the same header, for matching and for precedence", () => {
    const dup = route("dup", [{ headers: [{ name: "x-a", value: "1" }, { name: "X-A", value: "2" }] }]);
    expect(nameOf([dup], "/", { headers: { "x-a": "1" } })).toBe("dup");
    const two = route("two", [{ headers: [{ name: "x-a", value: "1" }, { name: "x-b", value: "1" }] }]);
    expect(nameOf([dup, two], "/", { headers: { "x-a": "1", "x-b": "1" } })).toBe("two");
  });

  it("matches the method exactly", () => {
    const routes = [route("delete", [{ method: "DELETE" }])];
    expect(nameOf(routes, "/", { method: "DELETE" })).toBe("delete");
    expect(nameOf(routes, "/")).toBeUndefined();
  });

  // The patterns that freeze a backtracking engine, each on inputs of 100,000 characters: the
  // "a"s alone (they match) and followed by a "!" (they do not, which is where backtracking
  // tries every way to split the run). Only the test timeout bounds the time.
  describe("in linear time, on the classic catastrophic patterns", () => {
    const run = "a".repeat(100_000);
    const catastrophic = ["(a+)+$", "(a|aa)+", "(a|a?)+", "(.*a){20}", "^(\\w+\\s?)*$", "(a*)*b?", "(?:a+a+)+"];

    it.each(catastrophic)("as a header value regex: %s", (pattern) => {
      const routes = [route("probe", [{ headers: [{ name: "x-probe", value: pattern, type: "RegularExpression" }] }])];
      expect(nameOf(routes, "/", { headers: { "x-probe": run } })).toBe("probe");
      expect(nameOf(routes, "/", { headers: { "x-probe": `${run}!` } })).toBeUndefined();
    });

    it.each(catastrophic)("as a query value regex: %s", (pattern) => {
      const routes = [route("probe", [{ query: [{ name: "q", value: pattern, type: "RegularExpression" }] }])];
      expect(nameOf(routes, `/?q=${run}`)).toBe("probe");
      expect(nameOf(routes, `/?q=${run}!`)).toBeUndefined();
    });

    it("as a path regex: /api/([a-z]+/?)+ on /api/ and 100,000 letters", () => {
      const routes = [route("api", [{ path: { type: "RegularExpression", value: "/api/([a-z]+/?)+" } }])];
      expect(nameOf(routes, `/api/${run}`)).toBe("api");
      expect(nameOf(routes, `/api/${"ab/".repeat(30_000)}`)).toBe("api");
      expect(nameOf(routes, `/api/${run}!`)).toBeUndefined();
    });
  });

  it("matches plain objects with a method, URL and headers as well as Requests", () => {
    const table = createRouteTable([route("api", [{ path: { type: "Exact", value: "/api" } }])], "orders");
    expect(table.match({ method: "GET", url: "http://orders/api", headers: new Headers() })?.route.name).toBe("api");
  });
});
