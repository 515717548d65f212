import { describe, expect, it } from "vitest";
import { fakeControl, runWeft } from "../test-io.ts";

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const KEY = { kty: "EC", crv: "P-256", x: "x", y: "y", kid: "k1", use: "jwt-svid", alg: "ES256" };
const SNAPSHOT = { version: 4, services: [], routes: [], policies: [], jwks: { keys: [KEY] } };

/** A healthy control plane as of NOW, with `changes` applied to its answers. */
function control(changes: Record<string, unknown> = {}) {
  return fakeControl({
    "GET /.well-known/jwks.json": { keys: [KEY] },
    "GET /v1/snapshot": SNAPSHOT,
    "GET /v1/policies": { version: 4, items: [] },
    "GET /v1/audit": { entries: [{ seq: 1, at: new Date(NOW - 3_600_000).toISOString(), actor: "system", action: "rotate-keys", changes: [{ kind: "SigningKey", name: "k1", outcome: "created" }], fromVersion: 0, toVersion: 1 }], next: null },
    "GET /metrics": () => new Response('# TYPE weft_config_version gauge\nweft_config_version{host="admin router-a"} 4\n'),
    ...changes,
  });
}

const status = (stdout: string) => (JSON.parse(stdout) as { checks: { check: string; status: string; detail?: string }[] }).checks.map((c) => `${c.status} ${c.check}`);

describe("weft check", () => {
  it("passes every check of a healthy control plane", async () => {
    const result = await runWeft(["check", "-o", "json"], { fetch: control(), now: NOW });
    expect(result.code).toBe(0);
    expect(status(result.stdout).every((s) => s.startsWith("ok "))).toBe(true);
  });

  it("fails when the newest signing key is older than a rotation period, as when rotation has stalled", async () => {
    const stale = { entries: [{ seq: 1, at: new Date(NOW - 26 * 3_600_000).toISOString(), actor: "system", action: "rotate-keys", changes: [{ kind: "SigningKey", name: "k1", outcome: "created" }], fromVersion: 0, toVersion: 1 }], next: null };
    const result = await runWeft(["check"], { fetch: control({ "GET /v1/audit": stale }), now: NOW });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("✗ the signing keys are within their rotation schedule (the newest key was published 1d2h ago; a new one is due every 1d)");
    expect(result.stdout).toContain("hint: rotation has stalled");
  });

  it("warns, without failing, of more keys than the schedule holds", async () => {
    const keys = ["k1", "k2", "k3", "k4"].map((kid) => ({ ...KEY, kid }));
    const result = await runWeft(["check", "-o", "json"], {
      fetch: control({ "GET /.well-known/jwks.json": { keys }, "GET /v1/snapshot": { ...SNAPSHOT, jwks: { keys } } }),
      now: NOW,
    });
    expect(result.code).toBe(0);
    expect(status(result.stdout)).toContain("warn the signing keys are within their rotation schedule");
  });

  it("fails a trust bundle that holds private key material, or keys missing from the snapshot", async () => {
    const leaked = await runWeft(["check", "-o", "json"], { fetch: control({ "GET /.well-known/jwks.json": { keys: [{ ...KEY, d: "private" }] } }), now: NOW });
    expect(leaked.code).toBe(1);
    expect(status(leaked.stdout)).toContain("fail the trust bundle is served");
    expect(leaked.stdout).not.toContain('"private"');
    const missing = await runWeft(["check", "-o", "json"], { fetch: control({ "GET /v1/snapshot": { ...SNAPSHOT, jwks: { keys: [] } } }), now: NOW });
    expect(status(missing.stdout)).toContain("fail the trust bundle is served");
  });

  it("fails a snapshot older than the store, and warns of routers on an older config", async () => {
    const result = await runWeft(["check", "-o", "json"], {
      fetch: control({ "GET /v1/policies": { version: 9, items: [] }, "GET /metrics": () => new Response('weft_config_version{host="admin router-a"} 3\n') }),
      now: NOW,
    });
    expect(result.code).toBe(1);
    expect(status(result.stdout)).toEqual(expect.arrayContaining(["fail the snapshot is fresh", "warn routers and sidecars run the current config"]));
  });

  it("stops after the control API is found unreachable, the only check that could run", async () => {
    const result = await runWeft(["check", "-o", "json"], { now: NOW });
    expect(result.code).toBe(1);
    expect(status(result.stdout)).toEqual(["fail the control API is reachable"]);
  });
});
