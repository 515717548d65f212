/**
 * The store's cap on waiting long-polls: past it a poll is refused with 503 `overloaded` and
 * `retry-after`, and the polls already waiting are still answered when a version lands.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestControl } from "./helpers.ts";
import { service, startTestControl } from "./helpers.ts";

let control: TestControl;

beforeAll(async () => {
  control = await startTestControl({ maxLongPolls: 2 }, null);
});

afterAll(async () => {
  await control?.destroy();
});

describe("long-poll cap", () => {
  it("refuses a poll past the cap with 503 overloaded and answers the waiting ones on the next version", async () => {
    const tag = (await control.call("GET", "/v1/snapshot")).headers.get("etag")!;
    const poll = () => control.call("GET", "/v1/snapshot?wait=60", { headers: { "if-none-match": tag } });
    const waiting = [poll(), poll()];
    await new Promise((r) => setTimeout(r, 200));
    const refused = await poll();
    expect(refused.status).toBe(503);
    expect(refused.headers.get("weft-error")).toBe("overloaded");
    expect(refused.headers.get("retry-after")).toBe("1");
    await control.call("PUT", "/v1/services/wake", { body: service() });
    for (const answer of await Promise.all(waiting)) expect(answer.status).toBe(200);
  }, 15_000);
});

describe("every family", () => {
  it("gets and deletes routes and policies by name like services", async () => {
    await control.call("POST", "/v1/apply", {
      body: {
        resources: [
          { kind: "Service", name: "fam" },
          { kind: "Route", name: "fam-route", service: "fam", backends: [{ service: "fam" }] },
          { kind: "AuthorizationPolicy", name: "fam-policy", target: { service: "fam" }, action: "AUDIT" },
        ],
      },
    });
    for (const [family, name, kind] of [["policies", "fam-policy", "AuthorizationPolicy"], ["routes", "fam-route", "Route"], ["services", "fam", "Service"]]) {
      const got = await control.call("GET", `/v1/${family}/${name}`);
      expect(got.status, family).toBe(200);
      expect(got.json).toMatchObject({ kind, name });
      expect((await control.call("DELETE", `/v1/${family}/${name}`, { headers: { "if-match": got.headers.get("etag")! } })).status, family).toBe(200);
      expect((await control.call("GET", `/v1/${family}/${name}`)).status, family).toBe(404);
    }
  });
});
