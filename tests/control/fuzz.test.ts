/**
 * Bad input, property-based: 2,400 malformed requests across the control API (wrong types,
 * unknown fields, bad names, bad JSON and UTF-8, deep nesting, huge bodies, bad queries and
 * headers, wrong methods, missing credentials). None may get a 5xx, every answer must be a
 * JSON error with `weft-error`, and the stored state must be exactly as it was.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallOptions, TestControl } from "./helpers.ts";
import { service, startTestControl } from "./helpers.ts";

const RUNS = 2_400;

let control: TestControl;

beforeAll(async () => {
  control = await startTestControl({}, null);
  await control.call("POST", "/v1/apply", {
    body: {
      resources: [
        { kind: "Service", name: "orders" },
        { kind: "Service", name: "web", endpoints: [{ id: "w1", address: "http://127.0.0.1:9000" }] },
        { kind: "Route", name: "orders-api", service: "orders", backends: [{ service: "orders" }] },
        { kind: "AuthorizationPolicy", name: "orders-allow", target: { service: "orders" }, action: "ALLOW", from: [{ unauthenticated: true }] },
      ],
    },
  });
  await control.call("PUT", "/v1/services/orders/endpoints/pod-1", { body: { address: "http://127.0.0.1:9001", ttl: "1h" } });
});

afterAll(async () => {
  await control?.destroy();
});

/** One request: method, path and call options. */
interface Bad {
  method: string;
  path: string;
  options: CallOptions;
}

// Names that are not DNS labels: upper case, unicode, dots, spaces, too long, leading dash.
const badName = fc.oneof(
  fc.constantFrom("Orders", "-orders", "orders-", "ör ders", "a.b", "%F0%9F%92%A5", "x".repeat(64), "%00", "a%2Fb", "%E0%A4%A"),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }).map((s) => encodeURIComponent(`${s}_X`)),
);
const goodName = fc.constantFrom("orders", "web", "orders-api", "orders-allow", "fresh", "new-one");

// Header-safe text (Latin-1 without controls), for credentials that a header can carry.
const latin1 = fc.string({ unit: fc.integer({ min: 0x21, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 20 });

// JSON values of the wrong type for any field.
const wrongValue = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ unit: "grapheme", maxLength: 30 }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
);

// Objects guaranteed invalid for every resource schema: a known field of the wrong type, or an unknown field.
const invalidResource = fc.oneof(
  fc.record({ balancer: fc.oneof(fc.integer(), fc.constantFrom("random", "", "P2C-EWMA")) }),
  fc.record({ endpoints: fc.oneof(fc.string(), fc.integer(), fc.constant([{ id: "", address: "nope" }])) }),
  fc.record({ backends: fc.oneof(fc.constant([]), fc.string(), fc.constant({})), service: fc.constant("orders") }),
  fc.record({ action: fc.constantFrom("PERMIT", "allow", 1), target: fc.constant({ service: "orders" }) }),
  fc.record({ timeout: fc.constantFrom("10", "1d", "-1s", "25h", 5, "1.2345s") }),
  fc.record({ retry: wrongValue.filter((v) => v === null || typeof v !== "object" || Array.isArray(v)) }),
  fc.record({ [`unknown_${"field"}`]: wrongValue }),
  fc.record({ kind: fc.constantFrom("Gateway", "service", 7) }),
  fc.record({ name: fc.constantFrom("other-name", "UPPER", 42) }),
  fc.record({ version: fc.constantFrom(-1, 1.5, "3", 1e20) }),
);

const badJsonText = fc.oneof(
  fc.constantFrom("{", "}", "[1,", '{"a":', "nul", "undefined", "NaN", "'single'", '{"a":1,}', "\u0000", "{\"\\u12\"}", "1 2", "{}{}", "\uFEFF{"),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }).map((s) => `{${s}`),
);

const invalidUtf8 = fc.constantFrom(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), new Uint8Array([0xc3, 0x28]), new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22]));

const deepJson = fc.integer({ min: 33, max: 3_000 }).map((depth) => `{"balancer":${"[".repeat(depth)}${"]".repeat(depth)}}`);
const deepObject = fc.integer({ min: 33, max: 500 }).map((depth) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { retry: value };
  return JSON.stringify(value);
});

const hugeBody = fc.constantFrom(1024 * 1024 + 1, 2 * 1024 * 1024).map((size) => `{"balancer":"${"a".repeat(size)}"}`);

const writePath = fc.oneof(
  goodName.map((n) => `/v1/services/${n}`),
  goodName.map((n) => `/v1/routes/${n}`),
  goodName.map((n) => `/v1/policies/${n}`),
);

const badRequests: fc.Arbitrary<Bad> = fc.oneof(
  // Wrong types and unknown fields in resource bodies.
  fc.record({ method: fc.constant("PUT"), path: writePath, options: invalidResource.map((body) => ({ body })) }),
  // Bodies that are not objects at all.
  fc.record({ method: fc.constant("PUT"), path: writePath, options: fc.oneof(fc.array(wrongValue, { maxLength: 3 }), fc.integer(), fc.string(), fc.constant(null)).map((body) => ({ body })) }),
  // Bad names in paths, with a body that would otherwise be valid.
  fc.record({ method: fc.constantFrom("GET", "PUT", "DELETE"), path: fc.tuple(fc.constantFrom("services", "routes", "policies"), badName).map(([f, n]) => `/v1/${f}/${n}`), options: fc.constant({ body: service() }) }),
  fc.record({ method: fc.constantFrom("PUT", "DELETE"), path: fc.tuple(badName, badName).map(([s, e]) => `/v1/services/${s}/endpoints/${e}!`), options: fc.constant({ body: { address: "http://127.0.0.1:1" } }) }),
  // Broken JSON and UTF-8.
  fc.record({ method: fc.constantFrom("PUT", "POST"), path: fc.oneof(writePath, fc.constant("/v1/apply"), fc.constant("/v1/identity/token"), fc.constant("/v1/stats")), options: fc.oneof(badJsonText, invalidUtf8).map((raw) => ({ raw })) }),
  // Deep nesting.
  fc.record({ method: fc.constant("PUT"), path: writePath, options: fc.oneof(deepJson, deepObject).map((raw) => ({ raw })) }),
  // Huge bodies (rarely: they are 1-2 MiB each).
  fc.record({ method: fc.constantFrom("PUT", "POST"), path: fc.oneof(writePath, fc.constant("/v1/apply")), options: hugeBody.map((raw) => ({ raw })) }),
  // Apply with at least one invalid resource among valid ones, or a malformed envelope.
  fc.record({
    method: fc.constant("POST"),
    path: fc.constant("/v1/apply"),
    options: fc.oneof(
      // (A differing name is a defect of a PUT only: in an apply the resource names itself.)
      fc.tuple(invalidResource.filter((r) => !("name" in r)), fc.constantFrom("Service", "Route", "AuthorizationPolicy")).map(([bad, kind]) => ({
        body: { resources: [{ kind: "Service", name: "fresh" }, { kind, name: "fresh-two", ...bad }] },
      })),
      fc.record({ resources: wrongValue.filter((v) => !Array.isArray(v)) }).map((body) => ({ body })),
      fc.constant({ body: { resources: [], delete: [] } }),
      fc.constant({ body: { delete: [{ kind: "Service", name: "orders", extra: 1 }] } }),
      fc.constant({ body: { resources: Array.from({ length: 1001 }, (_, i) => ({ kind: "Service", name: `s${i}` })) } }),
    ),
  }),
  // Endpoint registrations with bad fields.
  fc.record({
    method: fc.constant("PUT"),
    path: fc.constant("/v1/services/orders/endpoints/pod-9"),
    options: fc.oneof(
      fc.record({ address: fc.oneof(wrongValue, fc.constantFrom("ftp://x", "http://a/b", "binding:", "http://u:p@h:1")) }),
      fc.record({ address: fc.constant("http://127.0.0.1:1"), ttl: fc.oneof(wrongValue, fc.constantFrom("0s", "999ms", "2h", "1y")) }),
      fc.record({ address: fc.constant("http://127.0.0.1:1"), weight: fc.constantFrom(-1, 1.5, 2_000_000, "1") }),
    ).map((body) => ({ body })),
  }),
  // Bad queries and headers.
  fc.record({ method: fc.constant("GET"), path: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom("-1", "91", "1e9", "NaN", "0x10")).map((w) => `/v1/snapshot?wait=${encodeURIComponent(w === "" ? "x" : `${w}x`)}`), options: fc.constant({}) }),
  fc.record({ method: fc.constant("GET"), path: fc.tuple(fc.constantFrom("-1", "x", "1.5", "99999999999999999999"), fc.constantFrom("0", "1001", "y", "-3")).map(([a, l]) => `/v1/audit?after=${a}&limit=${l}`), options: fc.constant({}) }),
  fc.record({ method: fc.constant("PUT"), path: fc.constant("/v1/services/orders"), options: fc.constantFrom("soon", "W/", '"1", "2"', '""', "**").map((tag) => ({ body: service(), headers: { "if-match": tag } })) }),
  // Token requests that are malformed (public route: no credential needed).
  fc.record({
    method: fc.constant("POST"),
    path: fc.constant("/v1/identity/token"),
    options: fc.oneof(
      fc.record({ audience: wrongValue }),
      fc.record({ audience: fc.constant("orders"), worker: wrongValue }),
      fc.record({ audience: fc.constant("orders"), serviceAccountToken: fc.constant("x".repeat(9000)) }),
    ).map((body) => ({ body, token: null })),
  }),
  // Missing, malformed or wrong credentials on valid writes.
  fc.record({
    method: fc.constantFrom("PUT", "DELETE"),
    path: writePath,
    options: fc.oneof(fc.constant(null), fc.constantFrom("wrong", "a.b.c", "eyJ.eyJ.sig", "x".repeat(9000)), latin1.map((s) => `${s} ${s}`)).map((token) => ({ body: service(), token })),
  }),
  // Wrong methods and unknown paths.
  fc.record({ method: fc.constantFrom("PATCH", "POST", "OPTIONS"), path: writePath, options: fc.constant({ body: service() }) }),
  fc.record({ method: fc.constantFrom("GET", "PUT", "POST"), path: fc.string({ unit: "grapheme", maxLength: 20 }).map((s) => `/v1/${encodeURIComponent(s)}/x/y/z`), options: fc.constant({}) }),
);

describe("malformed requests", () => {
  it(`answer ${RUNS} malformed requests with JSON errors, never a 5xx, and change nothing`, async () => {
    const before = await control.call("GET", "/v1/snapshot");
    const auditBefore = (await control.call("GET", "/v1/audit?limit=1000")).json.entries.length;
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(badRequests, async ({ method, path, options }) => {
        const answer = await control.call(method, path, options);
        seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1);
        expect(answer.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
        expect(answer.status, `${method} ${path}`).toBeLessThan(500);
        const code = answer.headers.get("weft-error");
        expect(code).toBeTruthy();
        expect(answer.headers.get("content-type")).toContain("application/json");
        expect(answer.json?.error?.code).toBe(code);
        expect(typeof answer.json.error.message).toBe("string");
      }),
      { numRuns: RUNS, seed: Number(process.env.WEFT_FUZZ_SEED ?? 20261127) },
    );
    const after = await control.call("GET", "/v1/snapshot");
    expect(after.text).toBe(before.text);
    expect((await control.call("GET", "/v1/audit?limit=1000")).json.entries.length).toBe(auditBefore);
    // The mix reached the API's different refusals, not one of them only.
    for (const status of [400, 401, 404, 405, 413]) expect(seen.get(status), `status ${status}`).toBeGreaterThan(0);
    // A generous bound, not a measure: ~30 s alone on 2 cores, several times that beside a full run.
  }, 600_000);
});
