import { describe, expect, it } from "vitest";
import { MeshError } from "../errors.ts";
import { stack, withMeta } from "../fetch.ts";
import { createManualClock, fakeUpstream } from "../../testing/index.ts";
import { metrics } from "./layer.ts";
import { createRegistry } from "./registry.ts";

const WEB = "spiffe://mesh/worker/web";

function line(text: string, prefix: string): string | undefined {
  return text.split("\n").find((l) => l.startsWith(prefix));
}

describe("metrics layer", () => {
  it("counts the request when it starts and the response when its headers arrive, with the latency between", async () => {
    const clock = createManualClock();
    const registry = createRegistry({ clock });
    const upstream = fakeUpstream([200], { clock, delay: 120 });
    const fetch = stack(upstream, metrics({ registry, direction: "inbound", dst_service: "orders", route: "list" }));
    const pending = fetch(withMeta(new Request("http://orders/items"), { client: WEB }));
    await clock.advance(50);
    const during = registry.expose();
    expect(line(during, "weft_request_total{")).toBe(`weft_request_total{direction="inbound",src="${WEB}",dst_service="orders",route="list"} 1`);
    expect(line(during, "weft_response_total{")).toBeUndefined();
    const response = await clock.run(pending);
    expect(response.status).toBe(200);
    const after = registry.expose();
    const series = `direction="inbound",src="${WEB}",dst_service="orders",route="list",status_code="200",classification="success",error=""`;
    expect(after).toContain(`weft_response_total{${series}} 1\n`);
    expect(after).toContain(`weft_response_latency_seconds_sum{${series}} 0.12\n`);
    expect(after).toContain(`weft_response_latency_seconds_bucket{${series},le="0.1"} 0\n`);
    expect(after).toContain(`weft_response_latency_seconds_bucket{${series},le="0.2"} 1\n`);
    expect(registry.snapshot().routes[0]).toMatchObject({ requests: 1, successes: 1 });
  });

  it("returns an upstream 5xx unchanged and counts it as a failure", async () => {
    const registry = createRegistry({ clock: createManualClock() });
    const fetch = stack(fakeUpstream([503]), metrics({ registry, direction: "inbound", dst_service: "orders" }));
    const response = await fetch(new Request("http://orders/items"));
    expect(response.status).toBe(503);
    expect(registry.expose()).toContain('weft_response_total{direction="inbound",src="",dst_service="orders",route="",status_code="503",classification="failure",error=""} 1\n');
    expect(registry.snapshot().routes[0]).toMatchObject({ requests: 1, successes: 0, successRate: 0 });
  });

  it("records a thrown error with its MeshError code and rethrows the same error", async () => {
    const registry = createRegistry({ clock: createManualClock() });
    const refused = new TypeError("fetch failed");
    const fetch = stack(fakeUpstream([refused]), metrics({ registry, direction: "outbound", dst_service: "orders", src: WEB }));
    await expect(fetch(new Request("http://orders/items"))).rejects.toBe(refused);
    expect(registry.expose()).toContain(
      `weft_response_total{direction="outbound",src="${WEB}",dst_service="orders",route="",status_code="502",classification="failure",error="upstream-unreachable"} 1\n`,
    );
    const stillMesh = stack(fakeUpstream([new MeshError("no-endpoints", "none")]), metrics({ registry, direction: "outbound", dst_service: "orders", src: WEB }));
    await expect(stillMesh(new Request("http://orders/items"))).rejects.toThrow("none");
    expect(registry.expose()).toContain('status_code="503",classification="failure",error="no-endpoints"} 1\n');
  });

  it("labels outbound calls with the src option, not a header the app may have set", async () => {
    const registry = createRegistry({ clock: createManualClock() });
    const fetch = stack(fakeUpstream([200]), metrics({ registry, direction: "outbound", dst_service: "orders", src: WEB }));
    await fetch(new Request("http://orders/items", { headers: { "weft-client-id": "spiffe://mesh/worker/forged" } }));
    const text = registry.expose();
    expect(text).toContain(`src="${WEB}"`);
    expect(text).not.toContain("forged");
  });

  it("labels inbound calls by each request's verified caller, and unauthenticated ones with an empty src", async () => {
    const registry = createRegistry({ clock: createManualClock() });
    const fetch = stack(fakeUpstream([200]), metrics({ registry, direction: "inbound", dst_service: "orders" }));
    await fetch(withMeta(new Request("http://orders/a"), { client: WEB }));
    await fetch(withMeta(new Request("http://orders/a"), { client: WEB }));
    // The header alone is what a caller may claim: only the identity layer's metadata counts.
    await fetch(new Request("http://orders/a", { headers: { "weft-client-id": WEB } }));
    const text = registry.expose();
    expect(line(text, `weft_request_total{direction="inbound",src="${WEB}"`)).toMatch(/ 2$/);
    expect(line(text, 'weft_request_total{direction="inbound",src=""')).toMatch(/ 1$/);
  });

  it("measures latency on the clock it is given", async () => {
    const registryClock = createManualClock();
    const layerClock = createManualClock();
    const registry = createRegistry({ clock: registryClock });
    const upstream = fakeUpstream([200], { clock: layerClock, delay: 3_000 });
    const fetch = stack(upstream, metrics({ registry, direction: "inbound", dst_service: "orders", clock: layerClock }));
    await layerClock.run(fetch(new Request("http://orders/a")), { step: 100 });
    expect(registry.expose()).toMatch(/weft_response_latency_seconds_sum\{[^}]*\} 3\n/);
  });
});
