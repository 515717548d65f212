import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliFixture } from "./helpers.ts";
import { startFixture } from "./helpers.ts";
import { sendTraffic } from "./traffic.ts";

let t: CliFixture;
beforeAll(async () => {
  t = await startFixture();
});
afterAll(async () => {
  await t?.control.stop();
});

const marks = (stdout: string) => stdout.split("\n").filter((line) => /^[✓✗‼] /.test(line));

describe("weft check against the control worker", () => {
  it("is green for a healthy control plane, warning (not failing) while no router has reported", async () => {
    const result = await t.weft(["check"]);
    expect(result.code).toBe(0);
    expect(marks(result.stdout).map((line) => line.replace(/ \(.*\)$/, ""))).toEqual([
      "✓ the control API is reachable",
      "✓ the admin credential is accepted",
      "✓ the snapshot is valid",
      "✓ the snapshot is fresh",
      "✓ the trust bundle is served",
      "✓ the signing keys are within their rotation schedule",
      "✓ the mutual TLS certificate authority is valid, and its anchor rotation",
      "‼ routers and sidecars have reported recently",
      "✓ routers and sidecars run the current config",
    ]);
    expect(result.stdout).toContain("Status check results are ✓");
    // The CA the control worker made at its first start: issuer and anchor for a year.
    expect(result.stdout).toMatch(/certificate authority is valid, and its anchor rotation \(issuer expires in 36[45]d/);
  });

  it("sees routers that reported, and warns of one on an old config version", async () => {
    const { body } = await t.admin("GET", "/v1/snapshot");
    const version = (body as { version: number }).version;
    await sendTraffic(t, { service: "orders", route: "", ok: 1, failed: 0, host: "router-current", configVersion: version });
    const current = await t.weft(["check", "-o", "json"]);
    const checks = (JSON.parse(current.stdout) as { healthy: boolean; checks: { check: string; status: string; detail?: string }[] }).checks;
    expect(checks.find((c) => c.check === "routers and sidecars have reported recently")).toMatchObject({ status: "ok", detail: "1 in the last 10m" });
    expect(checks.find((c) => c.check === "routers and sidecars run the current config")).toMatchObject({ status: "ok" });

    await sendTraffic(t, { service: "orders", route: "", ok: 1, failed: 0, host: "router-old", configVersion: version - 1 });
    const behind = await t.weft(["check"]);
    expect(behind.code).toBe(0);
    expect(behind.stdout).toContain(`‼ routers and sidecars run the current config (1 of 2 behind version ${version}: admin router-old at ${version - 1})`);
  });

  it("fails the credential check with a hint when the credential is wrong", async () => {
    const result = await t.weft(["check"], { env: { WEFT_TOKEN: "wrong" } });
    expect(result.code).toBe(1);
    expect(marks(result.stdout)).toEqual([expect.stringMatching(/^✓ the control API is reachable/), expect.stringMatching(/^✗ the admin credential is accepted/)]);
    expect(result.stdout).toContain("hint: the credential from WEFT_TOKEN is not accepted");
  });

  it("goes red, with a hint, when the control plane is stopped", async () => {
    await t.control.stop();
    const result = await t.weft(["check"]);
    expect(result.code).toBe(1);
    expect(marks(result.stdout)).toEqual([expect.stringMatching(/^✗ the control API is reachable \(cannot reach the control API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)\)$/)]);
    expect(result.stdout).toContain("hint: check WEFT_CONTROL_URL (or --control-url) and that the control plane is up");
    expect(result.stdout).toContain("Status check results are ✗");
  });
});
