import { describe, expect, it } from "vitest";
import { fakeControl, runWeft } from "../test-io.ts";

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const KEY = { kty: "EC", crv: "P-256", x: "x", y: "y", kid: "k1", use: "jwt-svid", alg: "ES256" };
const DAY = 24 * 3_600_000;
const authority = (state: string, activeFrom: number, issuerDays: number, anchorDays = 365) => ({
  anchors: [{ subject: "CN=weft trust anchor", notAfter: new Date(NOW + anchorDays * DAY).toISOString(), fingerprint: "aa" }],
  issuer: { subject: "CN=weft issuer", notAfter: new Date(NOW + issuerDays * DAY).toISOString() },
  activeFrom: new Date(activeFrom).toISOString(),
  external: false,
  state,
});
const CA = { authorities: [authority("signing", NOW - DAY, 300)] };
const SNAPSHOT = { version: 4, services: [], routes: [], policies: [], jwks: { keys: [KEY] } };

/** A healthy control plane as of NOW, with `changes` applied to its answers. */
function control(changes: Record<string, unknown> = {}) {
  return fakeControl({
    "GET /.well-known/jwks.json": { keys: [KEY] },
    "GET /v1/identity/ca": CA,
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

  it("reports the mutual TLS issuer's and anchor's expiry, warns within 60 days, fails past it, and shows an anchor rotation under way", async () => {
    const healthy = await runWeft(["check"], { fetch: control(), now: NOW });
    expect(healthy.stdout).toContain("✓ the mutual TLS certificate authority is valid, and its anchor rotation (issuer expires in 300d, anchor in 365d)");
    const soon = await runWeft(["check", "-o", "json"], { fetch: control({ "GET /v1/identity/ca": { authorities: [authority("signing", NOW - DAY, 20)] } }), now: NOW });
    expect(soon.code).toBe(0);
    expect(status(soon.stdout)).toContain("warn the mutual TLS certificate authority is valid, and its anchor rotation");
    const expired = await runWeft(["check"], { fetch: control({ "GET /v1/identity/ca": { authorities: [authority("signing", NOW - DAY, -1)] } }), now: NOW });
    expect(expired.code).toBe(1);
    expect(expired.stdout).toContain("hint: rotate now");
    const rotating = await runWeft(["check"], { fetch: control({ "GET /v1/identity/ca": { authorities: [authority("signing", NOW - DAY, 20), authority("waiting", NOW + 3_600_000, 365)] } }), now: NOW });
    expect(rotating.code).toBe(0);
    expect(rotating.stdout).toContain("anchor rotation under way: a new issuer signs in 1h");
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
