import { describe, expect, it } from "vitest";
import { UsageError } from "../command.ts";
import { fakeControl, runWeft } from "../test-io.ts";
import { parseTargets } from "./get.ts";

describe("weft get", () => {
  it("takes KIND NAME..., KIND/NAME... and all, with kubectl-style words for kinds", () => {
    expect(parseTargets(["svc"])).toMatchObject({ kinds: [{ kind: "Service" }], names: [] });
    expect(parseTargets(["Routes", "a", "b"])).toMatchObject({ kinds: [{ kind: "Route" }], names: ["a", "b"] });
    expect(parseTargets(["ap/x", "policy/y"])).toMatchObject({ kinds: [{ kind: "AuthorizationPolicy" }], names: ["x", "y"] });
    expect(parseTargets(["all"]).kinds.map((k) => k.kind)).toEqual(["Service", "Route", "AuthorizationPolicy", "ExternalService", "Tracing"]);
    for (const bad of [[], ["pods"], ["svc/a", "rt/b"], ["all", "x"], ["svc/"]]) expect(() => parseTargets(bad)).toThrow(UsageError);
  });

  it("prints documents weft apply reads back: kind, name and version first", async () => {
    const fetch = fakeControl({ "GET /v1/routes/web": { kind: "Route", service: "orders", backends: [{ service: "orders", weight: 1 }], name: "web", version: 7, matches: [] } });
    const yaml = await runWeft(["get", "route", "web", "-o", "yaml"], { fetch });
    expect(yaml.stdout).toBe("kind: Route\nname: web\nversion: 7\nservice: orders\nbackends:\n  - service: orders\n    weight: 1\nmatches: []\n");
  });

  it("says so on standard error when there is nothing of a kind, exiting 0", async () => {
    const result = await runWeft(["get", "policies"], { fetch: fakeControl({ "GET /v1/policies": { version: 1, items: [] } }) });
    expect([result.code, result.stdout, result.stderr]).toEqual([0, "", "No policies found at http://127.0.0.1:8788.\n"]);
  });
});
