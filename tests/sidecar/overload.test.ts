/**
 * 429-aware balancing with real processes: a web pod's sidecar balances over two pods of
 * `busy`; one answers 429 with `retry-after: 2`, and for the next 2 s its sidecar sends it
 * (almost) nothing, then sends it traffic again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admin, callVia, startMesh, startPod, type Mesh, type Pod } from "./pods.ts";

let mesh: Mesh;
let web: Pod;
let busy1: Pod;
let busy2: Pod;

beforeAll(async () => {
  mesh = await startMesh();
  await admin(mesh.control, "PUT", "/v1/services/web", { name: "web" });
  // Round-robin: with two endpoints, peak-EWMA P2C always compares both and may keep picking
  // the faster one, so busy-1 might never be asked; the hold-out is the same for either balancer.
  await admin(mesh.control, "PUT", "/v1/services/busy", { name: "busy", balancer: "round-robin" });
  [web, busy1, busy2] = await Promise.all([
    startPod(mesh, { name: "web-1", ip: "127.0.0.51", service: "web" }),
    startPod(mesh, { name: "busy-1", ip: "127.0.0.52", service: "busy" }),
    startPod(mesh, { name: "busy-2", ip: "127.0.0.53", service: "busy" }),
  ]);
  mesh.pods.push(web, busy1, busy2);
  // Both endpoints registered and known to web's sidecar.
  const pods = new Set<string>();
  for (let i = 0; i < 200 && pods.size < 2; i++) {
    const reply = await callVia(web, "busy", "/warm");
    if (reply.status === 200) pods.add(reply.body.pod);
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(pods.size).toBe(2);
}, 90_000);

afterAll(async () => {
  await mesh?.destroy();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("an endpoint that answers 429 with retry-after: 2", () => {
  it("gets (almost) no traffic for 2 s, then gets traffic again", async () => {
    // Until busy-1 is picked, and answers 429 (passed to the caller as it came).
    let overloaded: Awaited<ReturnType<typeof callVia>> | undefined;
    for (let i = 0; i < 100 && overloaded === undefined; i++) {
      const reply = await callVia(web, "busy", "/overload?pod=busy-1&s=2");
      if (reply.status === 429) overloaded = reply;
    }
    const heldAt = Date.now();
    expect(overloaded?.headers["retry-after"]).toBe("2");
    expect(overloaded?.headers["weft-error"]).toBeUndefined();
    const before = busy1.app.calls();
    // 1.5 s of calls, well inside the 2 s it asked for (its sidecar started the hold before this answer reached us).
    let sent = 0;
    while (Date.now() - heldAt < 1_500) {
      const replies = await Promise.all(Array.from({ length: 4 }, () => callVia(web, "busy", "/during")));
      for (const reply of replies) expect(reply.status).toBe(200);
      sent += replies.length;
    }
    expect(sent).toBeGreaterThan(20);
    // "Almost": a call that left just as a loaded machine stalled may land after the hold.
    expect(busy1.app.calls() - before).toBeLessThanOrEqual(1);
    await sleep(Math.max(0, heldAt + 2_500 - Date.now()));
    const after = busy1.app.calls();
    for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: 4 }, () => callVia(web, "busy", "/after")));
    expect(busy1.app.calls() - after).toBeGreaterThan(3);
  }, 60_000);
});
