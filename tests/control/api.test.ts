/**
 * The control API over real HTTP against the worker in workerd: resources with versions and
 * preconditions, apply, the snapshot with ETags and long-polls, the KV publish, the audit log,
 * and every error the API answers with.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestControl } from "./helpers.ts";
import { eventually, service, startTestControl } from "./helpers.ts";

let control: TestControl;

beforeAll(async () => {
  control = await startTestControl({ publishIntervalMs: 0 });
});

afterAll(async () => {
  await control?.destroy();
});

const version = (etagValue: string | null) => Number(etagValue?.replaceAll('"', ""));

describe("resources", () => {
  it("creates a service with 201, an ETag and its version, and reads it back", async () => {
    const put = await control.call("PUT", "/v1/services/catalog", { body: service() });
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({ kind: "Service", name: "catalog", balancer: "round-robin", defaultPolicy: "all-unauthenticated" });
    expect(put.headers.get("etag")).toBe(`"${put.json.version}"`);
    const get = await control.call("GET", "/v1/services/catalog");
    expect(get.status).toBe(200);
    expect(get.json).toEqual(put.json);
    expect(get.headers.get("etag")).toBe(put.headers.get("etag"));
  });

  it("takes a new version for a real change and keeps the version for a no-op write", async () => {
    const first = await control.call("PUT", "/v1/services/ledger", { body: service() });
    const changed = await control.call("PUT", "/v1/services/ledger", { body: service({ timeout: "2s" }) });
    expect(changed.status).toBe(200);
    expect(changed.json.version).toBeGreaterThan(first.json.version);
    const same = await control.call("PUT", "/v1/services/ledger", { body: service({ timeout: "2s" }) });
    expect(same.status).toBe(200);
    expect(same.json.version).toBe(changed.json.version);
  });

  it("accepts a write whose If-Match is current and refuses a stale one with 412", async () => {
    const created = await control.call("PUT", "/v1/services/billing", { body: service() });
    const tag = created.headers.get("etag")!;
    const ok = await control.call("PUT", "/v1/services/billing", { body: service({ timeout: "1s" }), headers: { "if-match": tag } });
    expect(ok.status).toBe(200);
    const stale = await control.call("PUT", "/v1/services/billing", { body: service({ timeout: "3s" }), headers: { "if-match": tag } });
    expect(stale.status).toBe(412);
    expect(stale.headers.get("weft-error")).toBe("precondition-failed");
    expect(stale.json.error.code).toBe("precondition-failed");
    expect((await control.call("GET", "/v1/services/billing")).json.timeout).toBe("1s");
  });

  it("reads If-Match as RFC 9110 does: one strong tag or *, a weak tag never matching, a malformed one refused", async () => {
    const created = await control.call("PUT", "/v1/services/tagged", { body: service() });
    const v = created.json.version;
    const put = (tag: string, timeout = "1s") => control.call("PUT", "/v1/services/tagged", { body: service({ timeout }), headers: { "if-match": tag } });
    // Malformed: an unbalanced quote, no quotes, an empty W/, a list of two. 400, nothing written.
    for (const tag of [`"${v}`, `${v}"`, `${v}`, "W/", `W/${v}`, `"${v}", "${v}"`, `"${v}"x`]) {
      const refused = await put(tag);
      expect(refused.status, tag).toBe(400);
      expect(refused.headers.get("weft-error"), tag).toBe("bad-request");
      expect(refused.json.error.message, tag).toContain("If-Match");
    }
    // Well-formed but never matching under strong comparison: a weak tag, a tag that is no version.
    for (const tag of [`W/"${v}"`, '"abc"', '""', `"0${v}"`]) {
      const refused = await put(tag);
      expect(refused.status, tag).toBe(412);
      expect(refused.headers.get("weft-error"), tag).toBe("precondition-failed");
    }
    expect((await control.call("GET", "/v1/services/tagged")).json.version).toBe(v);
    expect((await put(` "${v}" `, "2s")).status).toBe(200);
    expect((await put("*", "3s")).status).toBe(200);
    expect((await control.call("GET", "/v1/services/tagged")).json.timeout).toBe("3s");
  });

  it("refuses labels keyed __proto__, constructor or prototype with 400 naming the field, instead of dropping them", async () => {
    for (const key of ["__proto__", "constructor", "prototype"]) {
      const endpoint = `{"id":"e1","address":"http://10.0.0.1:8080","labels":{"zone":"a","${key}":"x"}}`;
      const asStatic = await control.call("PUT", "/v1/services/labelled", { raw: `{"balancer":"round-robin","endpoints":[${endpoint}]}` });
      expect(asStatic.status, key).toBe(400);
      expect(asStatic.headers.get("weft-error"), key).toBe("bad-request");
      expect(asStatic.json.error.issues, key).toContainEqual({ path: ["endpoints", 0, "labels", key], message: expect.stringContaining(key) });
    }
    expect((await control.call("GET", "/v1/services/labelled")).status).toBe(404);
    await control.call("PUT", "/v1/services/labelled", { body: service() });
    const registered = await control.call("PUT", "/v1/services/labelled/endpoints/e1", { raw: '{"address":"http://10.0.0.1:8080","labels":{"__proto__":"x"}}' });
    expect(registered.status).toBe(400);
    expect(registered.json.error.issues).toContainEqual({ path: ["labels", "__proto__"], message: expect.stringContaining("__proto__") });
    expect((await control.call("GET", "/v1/services/labelled/endpoints")).json.items).toEqual([]);
    const plain = await control.call("PUT", "/v1/services/labelled/endpoints/e1", { raw: '{"address":"http://10.0.0.1:8080","labels":{"proto":"x"}}' });
    expect(plain.status, plain.text).toBe(201);
    expect(plain.json.labels).toEqual({ proto: "x" });
  });

  it("treats a stale version in the body like a stale If-Match", async () => {
    const created = await control.call("PUT", "/v1/services/payroll", { body: service() });
    await control.call("PUT", "/v1/services/payroll", { body: service({ timeout: "5s", version: created.json.version }) });
    const stale = await control.call("PUT", "/v1/services/payroll", { body: service({ timeout: "6s", version: created.json.version }) });
    expect(stale.status).toBe(412);
  });

  it("refuses If-None-Match: * on an existing resource and If-Match on a missing one with 412", async () => {
    await control.call("PUT", "/v1/services/unique", { body: service() });
    expect((await control.call("PUT", "/v1/services/unique", { body: service(), headers: { "if-none-match": "*" } })).status).toBe(412);
    expect((await control.call("PUT", "/v1/services/never", { body: service(), headers: { "if-match": '"3"' } })).status).toBe(412);
    expect((await control.call("PUT", "/v1/services/never", { body: service({ version: 0 }) })).status).toBe(201);
  });

  it("deletes with a precondition, then answers 404 unknown-service for it", async () => {
    const created = await control.call("PUT", "/v1/services/doomed", { body: service() });
    expect((await control.call("DELETE", "/v1/services/doomed", { headers: { "if-match": `"${created.json.version - 1}"` } })).status).toBe(412);
    const deleted = await control.call("DELETE", "/v1/services/doomed", { headers: { "if-match": created.headers.get("etag")! } });
    expect(deleted.status).toBe(200);
    expect(deleted.json).toMatchObject({ kind: "Service", name: "doomed", deleted: true });
    const gone = await control.call("GET", "/v1/services/doomed");
    expect(gone.status).toBe(404);
    expect(gone.headers.get("weft-error")).toBe("unknown-service");
    expect((await control.call("DELETE", "/v1/services/doomed")).status).toBe(404);
  });

  it("holds routes and policies that refer to services, and lists each family", async () => {
    await control.call("PUT", "/v1/services/orders", { body: service() });
    const route = await control.call("PUT", "/v1/routes/orders-api", {
      body: { service: "orders", matches: [{ path: { type: "PathPrefix", value: "/api" } }], backends: [{ service: "orders" }] },
    });
    expect(route.status).toBe(201);
    const policy = await control.call("PUT", "/v1/policies/orders-allow", {
      body: { kind: "AuthorizationPolicy", target: { service: "orders", route: "orders-api" }, action: "ALLOW", from: [{ identities: ["spiffe://cluster.local/ns/*/sa/web"] }] },
    });
    expect(policy.status).toBe(201);
    for (const [family, name] of [["services", "orders"], ["routes", "orders-api"], ["policies", "orders-allow"]]) {
      const list = await control.call("GET", `/v1/${family}`);
      expect(list.status).toBe(200);
      expect(list.json.items.map((i: { name: string }) => i.name)).toContain(name);
      expect(version(list.headers.get("etag"))).toBe(list.json.version);
    }
  });

  it("refuses a route to a missing service, and deleting a service a route still uses, with 400 and issues", async () => {
    const orphan = await control.call("PUT", "/v1/routes/orphan", { body: { service: "nowhere", backends: [{ service: "nowhere" }] } });
    expect(orphan.status).toBe(400);
    expect(orphan.json.error.issues).toContainEqual({ path: ["Route", "orphan", "service"], message: 'no service "nowhere"' });
    await control.call("PUT", "/v1/services/held", { body: service() });
    await control.call("PUT", "/v1/routes/held-route", { body: { service: "held", backends: [{ service: "held" }] } });
    const refused = await control.call("DELETE", "/v1/services/held");
    expect(refused.status).toBe(400);
    expect((await control.call("GET", "/v1/services/held")).status).toBe(200);
  });

  it("answers 400 with zod's paths for a bad body, a bad name, a wrong kind or a name that differs from the path", async () => {
    const bad = await control.call("PUT", "/v1/services/typo", { body: { balancer: "random", retires: 3 } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("weft-error")).toBe("bad-request");
    const paths = bad.json.error.issues.map((i: { path: unknown[] }) => i.path.join("."));
    expect(paths).toEqual(expect.arrayContaining(["balancer"]));
    expect((await control.call("PUT", "/v1/services/Not_A_Label", { body: service() })).status).toBe(400);
    expect((await control.call("PUT", "/v1/services/kinded", { body: { kind: "Route", ...service() } })).status).toBe(400);
    expect((await control.call("PUT", "/v1/services/named", { body: { name: "other", ...service() } })).status).toBe(400);
    expect((await control.call("PUT", "/v1/services/arr", { body: [1, 2] })).status).toBe(400);
    expect((await control.call("PUT", "/v1/services/badjson", { raw: "{nope" })).status).toBe(400);
    expect((await control.call("PUT", "/v1/services/empty", { raw: "" })).status).toBe(400);
    expect((await control.call("PUT", "/v1/services/ifm", { body: service(), headers: { "if-match": "soon" } })).status).toBe(400);
  });
});

describe("tracing", () => {
  it("holds the one Tracing resource (mesh) with versions, If-Match and audit, carries it in snapshots, and refuses bad values with 400 naming the field", async () => {
    const created = await control.call("PUT", "/v1/tracing/mesh", { body: { sampler: "parentbased_traceidratio", ratio: 0.05, services: { checkout: 1 } } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ kind: "Tracing", name: "mesh", sampler: "parentbased_traceidratio", ratio: 0.05, services: { checkout: 1 } });
    const tag = created.headers.get("etag")!;
    expect(tag).toBe(`"${created.json.version}"`);
    expect((await control.call("GET", "/v1/snapshot")).json.tracing).toEqual({ name: "mesh", version: created.json.version, sampler: "parentbased_traceidratio", ratio: 0.05, services: { checkout: 1 } });
    expect((await control.call("GET", "/v1/tracing")).json.items.map((i: { name: string }) => i.name)).toEqual(["mesh"]);

    const changed = await control.call("PUT", "/v1/tracing/mesh", { body: { sampler: "always_on" }, headers: { "if-match": tag } });
    expect(changed.status).toBe(200);
    const stale = await control.call("PUT", "/v1/tracing/mesh", { body: { sampler: "always_off" }, headers: { "if-match": tag } });
    expect(stale.status).toBe(412);
    expect(stale.headers.get("weft-error")).toBe("precondition-failed");

    const refused = async (path: string, body: unknown) => {
      const answer = await control.call("PUT", path, { body });
      expect(answer.status).toBe(400);
      expect(answer.headers.get("weft-error")).toBe("bad-request");
      return answer.json.error.issues.map((i: { path: unknown[] }) => i.path.join("."));
    };
    expect(await refused("/v1/tracing/mesh", { sampler: "sometimes" })).toEqual(["sampler"]);
    expect(await refused("/v1/tracing/mesh", { ratio: 1.5 })).toEqual(["ratio"]);
    expect(await refused("/v1/tracing/mesh", { sampler: "always_on", ratio: 0.5 })).toEqual(["ratio"]);
    expect(await refused("/v1/tracing/mesh", { services: { checkout: -1 } })).toEqual(["services.checkout"]);
    expect(await refused("/v1/tracing/mesh", { services: { Not_A_Label: 1 } })).toEqual(["services.Not_A_Label"]);
    expect(await refused("/v1/tracing/default", { ratio: 0.1 })).toEqual(["name"]);
    expect((await control.call("GET", "/v1/tracing/mesh")).json).toMatchObject({ sampler: "always_on", version: changed.json.version });

    const entries: { toVersion: number }[] = [];
    for (let after = 0; ; ) {
      const page = await control.call("GET", `/v1/audit?after=${after}&limit=50`);
      entries.push(...page.json.entries);
      if (page.json.next === null) break;
      after = page.json.next;
    }
    expect(entries.find((e: { toVersion: number }) => e.toVersion === changed.json.version)).toMatchObject({ changes: [{ kind: "Tracing", name: "mesh", outcome: "updated" }] });

    const deleted = await control.call("DELETE", "/v1/tracing/mesh", { headers: { "if-match": `"${changed.json.version}"` } });
    expect(deleted.status).toBe(200);
    expect((await control.call("GET", "/v1/snapshot")).json.tracing).toBeUndefined();
  });
});

describe("apply", () => {
  it("writes several resources as one version", async () => {
    const before = await control.call("GET", "/v1/snapshot");
    const applied = await control.call("POST", "/v1/apply", {
      body: {
        resources: [
          { kind: "Service", name: "shop", balancer: "p2c-ewma" },
          { kind: "Route", name: "shop-all", service: "shop", backends: [{ service: "shop" }] },
          { kind: "AuthorizationPolicy", name: "shop-deny", target: { service: "shop" }, action: "DENY", from: [{ unauthenticated: true }] },
        ],
      },
    });
    expect(applied.status).toBe(200);
    expect(applied.json.version).toBe(before.json.version + 1);
    expect(applied.json.results.map((r: { outcome: string }) => r.outcome)).toEqual(["created", "created", "created"]);
  });

  it("changes nothing when one resource is invalid, and nothing when one version is stale", async () => {
    const before = (await control.call("GET", "/v1/snapshot")).json.version;
    const invalid = await control.call("POST", "/v1/apply", {
      body: { resources: [{ kind: "Service", name: "half-a" }, { kind: "Service", name: "HALF-B" }] },
    });
    expect(invalid.status).toBe(400);
    expect(invalid.json.error.issues[0].path.slice(0, 2)).toEqual(["resources", 1]);
    const stale = await control.call("POST", "/v1/apply", {
      body: { resources: [{ kind: "Service", name: "half-a" }, { kind: "Service", name: "shop", version: 1 }] },
    });
    expect(stale.status).toBe(412);
    expect((await control.call("GET", "/v1/services/half-a")).status).toBe(404);
    expect((await control.call("GET", "/v1/snapshot")).json.version).toBe(before);
  });

  it("deletes in the same all-or-none change", async () => {
    const applied = await control.call("POST", "/v1/apply", {
      body: { delete: [{ kind: "AuthorizationPolicy", name: "shop-deny" }, { kind: "Route", name: "shop-all" }, { kind: "Service", name: "shop" }] },
    });
    expect(applied.status).toBe(200);
    expect(applied.json.results.every((r: { outcome: string }) => r.outcome === "deleted")).toBe(true);
    expect((await control.call("GET", "/v1/services/shop")).status).toBe(404);
    expect((await control.call("POST", "/v1/apply", { body: {} })).status).toBe(400);
    expect((await control.call("POST", "/v1/apply", { body: { resources: [{ kind: "Service", name: "dup" }, { kind: "Service", name: "dup" }] } })).status).toBe(400);
  });
});

describe("snapshot", () => {
  it("answers the whole config with its version as ETag, and 304 for the version the reader holds", async () => {
    const first = await control.call("GET", "/v1/snapshot");
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ version: expect.any(Number), services: expect.any(Array), routes: expect.any(Array), policies: expect.any(Array) });
    expect(first.json.jwks.keys.length).toBeGreaterThan(0);
    expect(first.headers.get("etag")).toBe(`"${first.json.version}"`);
    const same = await control.call("GET", "/v1/snapshot", { headers: { "if-none-match": first.headers.get("etag")! } });
    expect(same.status).toBe(304);
    expect(same.text).toBe("");
    const older = await control.call("GET", "/v1/snapshot", { headers: { "if-none-match": `"${first.json.version - 1}"` } });
    expect(older.status).toBe(200);
  });

  it("answers a long-poll 304 when nothing changes within the wait", async () => {
    const current = await control.call("GET", "/v1/snapshot");
    const waited = await control.call("GET", "/v1/snapshot?wait=0.3", { headers: { "if-none-match": current.headers.get("etag")! } });
    expect(waited.status).toBe(304);
  });

  it("wakes a waiting long-poll with the new version as soon as a write lands", async () => {
    const current = await control.call("GET", "/v1/snapshot");
    // The poll may wait 60 s, far beyond this test's timeout: only a wake-up answers it in time.
    const poll = control.call("GET", "/v1/snapshot?wait=60", { headers: { "if-none-match": current.headers.get("etag")! } });
    await new Promise((r) => setTimeout(r, 100));
    const write = await control.call("PUT", "/v1/services/wakeup", { body: service() });
    const answer = await poll;
    expect(answer.status).toBe(200);
    expect(answer.json.version).toBe(write.json.version);
    expect(answer.json.services.map((s: { name: string }) => s.name)).toContain("wakeup");
  }, 10_000);

  it("refuses a wait that is not a number of seconds up to 90", async () => {
    for (const wait of ["abc", "-1", "91", "1e3", ""]) {
      const answer = await control.call("GET", `/v1/snapshot?wait=${wait}`);
      expect(answer.status, wait).toBe(400);
    }
  });

  it("publishes the snapshot to KV as `snapshot` and `snapshot:<version>`", async () => {
    const write = await control.call("PUT", "/v1/services/published", { body: service() });
    const kv = await control.mf.getKVNamespace("WEFT_CONFIG");
    const latest = await eventually(async () => {
      const text = await kv.get("snapshot", "text");
      const parsed = text ? JSON.parse(text) : undefined;
      return parsed && parsed.version >= write.json.version ? parsed : undefined;
    });
    expect(latest.services.map((s: { name: string }) => s.name)).toContain("published");
    const pinned = await kv.get(`snapshot:${latest.version}`, "text");
    expect(JSON.parse(pinned!)).toEqual(latest);
  });
});

describe("audit", () => {
  it("records who changed what, when, and the version from and to", async () => {
    const write = await control.call("PUT", "/v1/services/audited", { body: service() });
    let after = 0;
    const entries: any[] = [];
    for (;;) {
      const page = await control.call("GET", `/v1/audit?after=${after}&limit=50`);
      expect(page.status).toBe(200);
      entries.push(...page.json.entries);
      if (page.json.next === null) break;
      after = page.json.next;
    }
    const entry = entries.find((e) => e.toVersion === write.json.version);
    expect(entry).toMatchObject({ actor: "admin", action: "write", fromVersion: write.json.version - 1, changes: [{ kind: "Service", name: "audited", outcome: "created" }] });
    expect(Date.parse(entry.at)).not.toBeNaN();
    expect(entries.map((e) => e.seq)).toEqual([...entries.keys()].map((i) => i + 1));
    expect((await control.call("GET", "/v1/audit?limit=0")).status).toBe(400);
    expect((await control.call("GET", "/v1/audit?after=x")).status).toBe(400);
  });
});

describe("errors", () => {
  it("answers 401 without a credential or with a wrong one, the same whether the resource exists or not", async () => {
    const existing = await control.call("GET", "/v1/services/catalog", { token: null });
    const missing = await control.call("GET", "/v1/services/no-such", { token: "wrong-secret" });
    for (const answer of [existing, missing]) {
      expect(answer.status).toBe(401);
      expect(answer.headers.get("weft-error")).toBe("unauthenticated");
      expect(answer.headers.get("www-authenticate")).toContain("Bearer");
    }
    expect(existing.text).toBe(missing.text);
    expect((await control.call("PUT", "/v1/services/catalog", { token: null, body: service() })).status).toBe(401);
    expect((await control.call("GET", "/v1/snapshot", { token: "a.b.c" })).status).toBe(401);
  });

  it("answers 413 payload-too-large for a body over 1 MiB", async () => {
    const huge = await control.call("PUT", "/v1/services/huge", { raw: JSON.stringify({ balancer: "x".repeat(1024 * 1024 + 10) }) });
    expect(huge.status).toBe(413);
    expect(huge.headers.get("weft-error")).toBe("payload-too-large");
  });

  it("answers 404 JSON for an unknown path and 405 JSON with allow for a wrong method", async () => {
    const unknown = await control.call("GET", "/v2/anything");
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe("unknown-service");
    const wrong = await control.call("POST", "/v1/services/catalog", { body: {} });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, PUT, DELETE, HEAD");
    expect(wrong.headers.get("weft-error")).toBe("bad-request");
    expect(wrong.json.error.code).toBe("bad-request");
  });

  it("answers HEAD like GET without a body", async () => {
    const response = await fetch(`${control.url}/v1/services/catalog`, { method: "HEAD", headers: { authorization: "Bearer test-admin-secret-0123456789" } });
    expect(response.status).toBe(200);
    expect(response.headers.get("etag")).toMatch(/^"\d+"$/);
    expect(await response.text()).toBe("");
  });
});
