import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliFixture } from "./helpers.ts";
import { ADMIN_TOKEN, startFixture } from "./helpers.ts";

let t: CliFixture;
beforeAll(async () => {
  t = await startFixture();
});
afterAll(async () => {
  await t?.control.stop();
});

const MESH = `kind: Service
name: orders
---
kind: Service
name: users
balancer: round-robin
---
kind: Route
name: web
service: orders
matches:
  - path: {type: PathPrefix, value: /api}
    method: GET
backends:
  - service: orders
    weight: 90
  - service: users
    weight: 10
`;

const POLICY = JSON.stringify({
  kind: "AuthorizationPolicy",
  name: "allow-web",
  target: { service: "orders" },
  action: "ALLOW",
  from: [{ identities: ["spiffe://cluster.local/ns/*/sa/web"] }],
});

async function storeVersion(): Promise<number> {
  const { body } = await t.admin("GET", "/v1/snapshot");
  return (body as { version: number }).version;
}

describe("weft apply, diff, get and delete against the control worker", () => {
  it("diffs a folder of new resources, changing nothing, then applies it all and gets it back", async () => {
    await mkdir(join(t.dir, "mesh"));
    await writeFile(join(t.dir, "mesh", "a-mesh.yaml"), MESH);
    await writeFile(join(t.dir, "mesh", "b-policy.json"), POLICY);
    const before = await storeVersion();

    const diff = await t.weft(["diff", "-f", "mesh", "--exit-code"]);
    expect(diff.code).toBe(3);
    expect(diff.stdout).toContain("--- service/orders (does not exist)\n+++ service/orders (mesh/a-mesh.yaml, document 1)\n");
    expect(diff.stdout).toContain("+  - service: users\n+    weight: 10\n");
    expect(diff.stderr).toBe("4 to create, 0 to change, 0 unchanged.\n");
    expect(await storeVersion()).toBe(before);
    expect((await t.weft(["get", "route", "web"])).code).toBe(1);

    const apply = await t.weft(["apply", "-f", "mesh"]);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toBe("service/orders created\nservice/users created\nroute/web created\npolicy/allow-web created\n");
    expect(await storeVersion()).toBe(before + 1);

    const services = await t.weft(["get", "services"]);
    expect(services.code).toBe(0);
    expect(services.stdout.split("\n").map((l) => l.split(/\s+/).slice(0, 4).join(" "))).toEqual([
      "NAME ENDPOINTS BALANCER DEFAULT-POLICY",
      "orders 0 p2c-ewma all-unauthenticated",
      "users 0 round-robin all-unauthenticated",
      "",
    ]);
    const route = await t.weft(["get", "rt/web", "-o", "json"]);
    expect(JSON.parse(route.stdout)).toMatchObject({ kind: "Route", name: "web", service: "orders", backends: [{ service: "orders", weight: 90 }, { service: "users", weight: 10 }] });
    expect((await t.weft(["get", "policies", "-o", "name"])).stdout).toBe("policy/allow-web\n");

    const again = await t.weft(["diff", "-f", "mesh", "--exit-code"]);
    expect([again.code, again.stdout, again.stderr]).toEqual([0, "", "0 to create, 0 to change, 4 unchanged.\n"]);
    const reapply = await t.weft(["apply", "-f", "mesh"]);
    expect(reapply.stdout).toBe("service/orders unchanged\nservice/users unchanged\nroute/web unchanged\npolicy/allow-web unchanged\n");
  });

  it("shows a change as a unified diff of the live resource and the file", async () => {
    const path = await t.file("canary.yaml", MESH.replace("weight: 90", "weight: 50").replace("weight: 10", "weight: 50") + "timeouts: {request: 2s}\n");
    const diff = await t.weft(["diff", "-f", path]);
    expect(diff.code).toBe(0);
    expect(diff.stdout).toMatch(/--- route\/web \(live, version \d+\)\n\+\+\+ route\/web \(canary\.yaml, document 3\)\n@@ -\d+,\d+ \+\d+,\d+ @@\n/);
    expect(diff.stdout).toContain("-    weight: 90\n+    weight: 50\n");
    expect(diff.stdout).toContain("+timeouts:\n+  request: 2s\n");
    expect(diff.stderr).toBe("0 to create, 1 to change, 2 unchanged.\n");
  });

  it("reports every problem of a bad file with its file, line, document and field path, and applies nothing", async () => {
    const before = await storeVersion();
    const path = await t.file(
      "bad.yaml",
      `kind: Service
name: billing
balancer: random
retires: 3
---
kind: Route
name: pay
service: billing
backends:
  - service: billing
    weight: -1
timeouts:
  request: 10 seconds
---
kind: Deployment
name: x
`,
    );
    const result = await t.weft(["apply", "-f", path]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      [
        "weft: 5 problems in 1 file; nothing was applied",
        '  bad.yaml:3:11: document 1 (Service "billing"): balancer: Invalid option: expected one of "p2c-ewma"|"round-robin"',
        '  bad.yaml:4:1: document 1 (Service "billing"): retires: unknown field (misspelt, or not in this kind: see docs/cli.md)',
        '  bad.yaml:11:13: document 2 (Route "pay"): backends[0].weight: Too small: expected number to be >=0',
        '  bad.yaml:13:12: document 2 (Route "pay"): timeouts.request: must be a duration such as "250ms", "10s", "1m" or "1h"',
        '  bad.yaml:15:7: document 3 (Deployment "x"): kind: must be one of Service, Route, AuthorizationPolicy, ExternalService, Tracing (got "Deployment")',
        "",
      ].join("\n"),
    );
    expect(await storeVersion()).toBe(before);
    expect((await t.weft(["get", "service", "billing"])).code).toBe(1);
  });

  it("places the control worker's cross-resource problems in the file, and applies none of the file", async () => {
    const before = await storeVersion();
    const path = await t.file("dangling.yaml", "kind: Service\nname: fine\n---\nkind: Route\nname: ghost\nservice: nope\nbackends: [{service: nope}]\n");
    const result = await t.weft(["apply", "-f", path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('  dangling.yaml:6:10: document 2 (Route "ghost"): service: no service "nope"\n');
    expect(result.stderr).toContain('  dangling.yaml:7:22: document 2 (Route "ghost"): backends[0].service: no service "nope"\n');
    expect(await storeVersion()).toBe(before);
    expect((await t.weft(["get", "service", "fine"])).code).toBe(1);
  });

  it("round-trips get -o yaml through apply, and refuses a stale version with 412", async () => {
    const yaml = await t.weft(["get", "all", "-o", "yaml"]);
    expect(yaml.code).toBe(0);
    const reapply = await t.weft(["apply", "-f", "-"], { stdin: yaml.stdout });
    expect(reapply.code).toBe(0);
    expect(reapply.stdout.trim().split("\n").every((line) => line.endsWith(" unchanged"))).toBe(true);

    const stale = yaml.stdout.replace(/^balancer: round-robin$/m, "balancer: p2c-ewma");
    await t.weft(["apply", "-f", "-"], { stdin: MESH.replace("balancer: round-robin", "balancer: p2c-ewma") });
    const refused = await t.weft(["apply", "-f", "-"], { stdin: stale });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("(precondition-failed)");
    expect(refused.stderr).toContain("hint: someone changed it since you read it");
  });

  it("deletes a resource, and fails (exit 1) to delete it again unless told to ignore that", async () => {
    const deleted = await t.weft(["delete", "policy", "allow-web"]);
    expect([deleted.code, deleted.stdout]).toEqual([0, "policy/allow-web deleted\n"]);
    expect((await t.weft(["get", "policy", "allow-web"])).stderr).toBe('weft: policy "allow-web" not found\n');
    const again = await t.weft(["delete", "policy", "allow-web"]);
    expect([again.code, again.stderr]).toEqual([1, 'weft: policy "allow-web" not found\n']);
    expect((await t.weft(["delete", "policy/allow-web", "--ignore-not-found"])).code).toBe(0);
  });

  it("refuses a wrong admin credential with a hint, never printing either credential", async () => {
    const result = await t.weft(["get", "services"], { env: { WEFT_TOKEN: "not-the-admin-token" } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("(unauthenticated)");
    expect(result.stderr).toContain("hint: the credential from WEFT_TOKEN is not accepted");
    for (const run of [result, await t.weft(["get", "all", "-o", "yaml"])]) {
      expect(run.stdout + run.stderr).not.toContain("not-the-admin-token");
      expect(run.stdout + run.stderr).not.toContain(ADMIN_TOKEN);
    }
  });

  it("reports a route regex RE2 refuses, or one too complex, at its line, and applies nothing", async () => {
    const before = await storeVersion();
    const path = await t.file(
      "regex.yaml",
      `kind: Route
name: back
service: orders
matches:
  - path: {type: RegularExpression, value: '/(a+)/\\1'}
  - headers: [{name: x-id, type: RegularExpression, value: '[0-9]{500}'}]
backends: [{service: orders}]
`,
    );
    const result = await t.weft(["apply", "-f", path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("weft: 2 problems in 1 file; nothing was applied\n");
    expect(result.stderr).toContain(
      'regex.yaml:5:44: document 1 (Route "back"): matches[0].path.value: must be RE2 syntax, which matches in linear time: backreferences (\\1, \\k<name>) are not supported\n',
    );
    expect(result.stderr).toMatch(/regex\.yaml:6:\d+: document 1 \(Route "back"\): matches\[1\]\.headers\[0\]\.value: is too complex: its RE2 program size is \d+, the limit 100/);
    expect(await storeVersion()).toBe(before);
  });

  it("applies routes with RequestMirror and FaultInjection filters, and reports their mistakes at their lines", async () => {
    const good = await t.file(
      "traffic.yaml",
      `kind: Service
name: traffic-main
---
kind: Service
name: traffic-shadow
---
kind: Route
name: traffic
service: traffic-main
backends: [{service: traffic-main}]
filters:
  - type: RequestMirror
    requestMirror: {backendRef: {service: traffic-shadow}, percent: 25}
  - type: FaultInjection
    faultInjection:
      delay: {fixedDelay: 50ms, percent: 10}
      abort: {httpStatus: 503, percent: 5}
      header: {name: x-chaos}
`,
    );
    const applied = await t.weft(["apply", "-f", good]);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain("route/traffic created");
    const shown = await t.weft(["get", "route", "traffic", "-o", "yaml"]);
    expect(shown.stdout).toContain("type: RequestMirror");
    expect(shown.stdout).toContain("type: FaultInjection");

    const before = await storeVersion();
    const bad = await t.file(
      "bad-traffic.yaml",
      `kind: Route
name: traffic-bad
service: traffic-main
backends: [{service: traffic-main}]
filters:
  - type: RequestMirror
    requestMirror: {backendRef: {service: nowhere}, percent: 250}
  - type: FaultInjection
    faultInjection:
      abort: {percent: 5}
`,
    );
    const refused = await t.weft(["apply", "-f", bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/bad-traffic\.yaml:7:\d+: document 1 \(Route "traffic-bad"\): filters\[0\]\.requestMirror\.percent: Too big/);
    expect(refused.stderr).toMatch(/bad-traffic\.yaml:10:\d+: document 1 \(Route "traffic-bad"\): filters\[1\]\.faultInjection\.abort: give exactly one of httpStatus or grpcStatus/);
    expect(await storeVersion()).toBe(before);
    await t.weft(["delete", "route", "traffic"]);

    // An ExternalService (egress), and its mistakes at their lines.
    const external = await t.file("external.yaml", "kind: ExternalService\nname: payments\nhosts: [api.payments.example]\nprotocol: https\ntls: {sni: api.payments.example}\n");
    const appliedExternal = await t.weft(["apply", "-f", external]);
    expect(appliedExternal.code).toBe(0);
    expect(appliedExternal.stdout).toContain("externalservice/payments created");
    expect((await t.weft(["get", "externalservices"])).stdout).toMatch(/payments\s+api\.payments\.example\s+https/);
    const badExternal = await t.file("bad-external.yaml", "kind: ExternalService\nname: payments2\nhosts: [Not_A_Host]\nprotocol: ftp\n");
    const refusedExternal = await t.weft(["apply", "-f", badExternal]);
    expect(refusedExternal.code).toBe(1);
    expect(refusedExternal.stderr).toMatch(/bad-external\.yaml:3:\d+: document 1 \(ExternalService "payments2"\): hosts\[0\]: must be a lower-case DNS hostname/);
    expect(refusedExternal.stderr).toMatch(/bad-external\.yaml:4:\d+: document 1 \(ExternalService "payments2"\): protocol: Invalid option/);
    await t.weft(["delete", "externalservice", "payments"]);

    // The mesh-wide Tracing resource, and its mistakes at their lines.
    const tracing = await t.file("tracing.yaml", "kind: Tracing\nname: mesh\nsampler: parentbased_traceidratio\nratio: 0.05\nservices:\n  checkout: 1\n");
    const appliedTracing = await t.weft(["apply", "-f", tracing]);
    expect(appliedTracing.code).toBe(0);
    expect(appliedTracing.stdout).toContain("tracing/mesh created");
    expect((await t.weft(["get", "tracing"])).stdout).toMatch(/mesh\s+parentbased_traceidratio\s+0\.05\s+checkout:1/);
    const badTracing = await t.file("bad-tracing.yaml", "kind: Tracing\nname: default\nsampler: sometimes\nratio: 1.5\nservices:\n  checkout: -1\n");
    const refusedTracing = await t.weft(["apply", "-f", badTracing]);
    expect(refusedTracing.code).toBe(1);
    expect(refusedTracing.stderr).toMatch(/bad-tracing\.yaml:2:7: document 1 \(Tracing "default"\): name: must be "mesh"/);
    expect(refusedTracing.stderr).toMatch(/bad-tracing\.yaml:3:10: document 1 \(Tracing "default"\): sampler: Invalid option/);
    expect(refusedTracing.stderr).toMatch(/bad-tracing\.yaml:4:8: document 1 \(Tracing "default"\): ratio: must be from 0 to 1/);
    expect(refusedTracing.stderr).toMatch(/bad-tracing\.yaml:6:13: document 1 \(Tracing "default"\): services\.checkout: must be from 0 to 1/);
    await t.weft(["delete", "tracing", "mesh"]);
    await t.weft(["delete", "service", "traffic-shadow"]);
    await t.weft(["delete", "service", "traffic-main"]);
  });

  it("answers a usage error with exit 2", async () => {
    const result = await t.weft(["apply"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("give the resources with -f FILE|DIR");
  });
});
