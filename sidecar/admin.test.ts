import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAdminHandler, isLoopback } from "./admin.ts";

let server: Server;
let base: string;
let ready: string | undefined = "no config yet";
let shutdowns = 0;

beforeAll(async () => {
  server = createServer(
    createAdminHandler({ metrics: () => "weft_config_version 3\n", notReady: () => ready, shutdownToken: "a-shutdown-token-of-some-length", shutdown: () => void shutdowns++ }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("the admin endpoints", () => {
  it("expose the golden metrics and the process's own in the Prometheus text format", async () => {
    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await response.text();
    expect(text).toContain("weft_config_version 3");
    expect(text).toMatch(/process_resident_memory_bytes \d+/);
    const gauge = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1]);
    expect(gauge("nodejs_external_memory_bytes")).toBeGreaterThanOrEqual(gauge("nodejs_array_buffers_bytes"));
    expect(gauge("nodejs_array_buffers_bytes")).toBeGreaterThan(0);
    expect(gauge("nodejs_heap_size_total_bytes")).toBeGreaterThan(gauge("process_heap_bytes"));
  });

  it("answer /ready with 503 and the reason until ready, and /live always", async () => {
    ready = "no config yet";
    const not = await fetch(`${base}/ready`);
    expect([not.status, await not.text()]).toEqual([503, "not ready: no config yet\n"]);
    ready = undefined;
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    expect((await fetch(`${base}/live`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it("shut down only on POST with the token", async () => {
    expect((await fetch(`${base}/shutdown`, { method: "POST", headers: { authorization: "Bearer a-shutdown-token-of-some-lengtH" } })).status).toBe(401);
    expect(shutdowns).toBe(0);
    expect((await fetch(`${base}/shutdown`, { method: "POST", headers: { authorization: "Bearer a-shutdown-token-of-some-length" } })).status).toBe(202);
    expect(shutdowns).toBe(1);
  });

  it("count 127.0.0.0/8 and ::1, also IPv4-mapped, as loopback and nothing else", () => {
    expect(["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"].every(isLoopback)).toBe(true);
    expect(["10.0.0.1", "::ffff:10.0.0.1", "fe80::1", "", undefined, "1127.0.0.1"].some((a) => isLoopback(a))).toBe(false);
  });
});
