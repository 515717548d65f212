/**
 * The certificate authority through the control worker in workerd (so `@peculiar/x509` on
 * workerd's WebCrypto is what signs): a CSR and a bootstrap credential exchanged for an
 * X.509-SVID that openssl verifies against the served anchors, the anchors in the snapshot,
 * rotation with overlap, an operator's own authority, and refusals.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCsr, generateAuthority, generateWorkloadKey } from "../../src/identity/ca.ts";
import type { TestControl } from "./helpers.ts";
import { service, startTestControl } from "./helpers.ts";

let control: TestControl;
let secret: string;
let csr: string;

beforeAll(async () => {
  control = await startTestControl();
  await control.call("PUT", "/v1/services/orders", { body: service() });
  secret = (await control.call("PUT", "/v1/identity/workers/orders")).json.secret;
  csr = await createCsr({ keys: await generateWorkloadKey() });
});

afterAll(async () => {
  await control?.destroy();
});

const request = (body: Record<string, unknown>) => control.call("POST", "/v1/identity/certificate", { token: null, body: { worker: { service: "orders", secret }, ...body } });

function openssl(files: Record<string, string>, args: (dir: string) => string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "weft-cert-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return execFileSync("openssl", args(dir), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

describe("POST /v1/identity/certificate", () => {
  it("signs the CSR's key for the identity the credential proves, and openssl verifies it against the served anchors", async () => {
    const answer = await request({ csr });
    expect(answer.status).toBe(200);
    expect(answer.json.id).toBe("spiffe://cluster.local/worker/orders");
    const anchors = await control.call("GET", "/v1/identity/trust-anchors.pem", { token: null });
    expect(anchors.text).toContain("BEGIN CERTIFICATE");
    const files = { "anchors.pem": anchors.text, "chain.pem": answer.json.chain.join(""), "leaf.pem": answer.json.certificate };
    expect(openssl(files, (d) => ["verify", "-CAfile", join(d, "anchors.pem"), "-untrusted", join(d, "chain.pem"), "-purpose", "sslserver", join(d, "leaf.pem")])).toContain("OK");
    const text = openssl(files, (d) => ["x509", "-in", join(d, "leaf.pem"), "-noout", "-text"]);
    expect(text).toMatch(/Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/worker\/orders\s/);
    const lifetime = Date.parse(answer.json.expiresAt) - Date.parse(answer.json.notBefore);
    expect(lifetime).toBe(24 * 3600_000 + 30_000);
    // The same anchors travel in the snapshot, as the JWKS does.
    const snapshot = await control.call("GET", "/v1/snapshot");
    expect(snapshot.json.trustAnchors.join("")).toBe(anchors.text);
  });

  it("refuses a bad credential with 401 and a bad CSR or lifetime with 400", async () => {
    expect((await control.call("POST", "/v1/identity/certificate", { token: null, body: { csr, worker: { service: "orders", secret: "wrong" } } })).status).toBe(401);
    expect((await request({ csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n" })).json.error.code).toBe("bad-request");
    expect((await request({ csr, lifetime: "48h" })).status).toBe(400);
    expect((await request({ csr, lifetime: "1m" })).status).toBe(200);
  });
});

describe("CA rotation", () => {
  it("publishes the new anchor beside the old at once, signs with it when it activates, and takes an operator's authority", async () => {
    const before = (await control.call("GET", "/v1/snapshot")).json;
    const rotated = await control.call("POST", "/v1/identity/ca/rotate", { body: { activateIn: "1h" } });
    expect(rotated.status).toBe(200);
    expect(rotated.json.authorities.map((a: { state: string }) => a.state)).toEqual(["signing", "waiting"]);
    const after = (await control.call("GET", "/v1/snapshot")).json;
    expect(after.version).toBeGreaterThan(before.version);
    expect(after.trustAnchors).toHaveLength(2);
    expect(after.trustAnchors[0]).toBe(before.trustAnchors[0]);

    const mine = await generateAuthority("cluster.local", Date.now(), Date.now());
    const key = await crypto.subtle.importKey("jwk", mine.issuerKey, { name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]);
    const issuerKey = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(await crypto.subtle.exportKey("pkcs8", key)).toString("base64")}\n-----END PRIVATE KEY-----\n`;
    const wrong = await control.call("POST", "/v1/identity/ca/rotate", { body: { activateIn: "0s", bring: { anchors: before.trustAnchors[0], issuer: mine.issuer, issuerKey } } });
    expect(wrong.status).toBe(400);
    expect(wrong.text).not.toContain("PRIVATE KEY");
    const brought = await control.call("POST", "/v1/identity/ca/rotate", { body: { activateIn: "0s", bring: { anchors: mine.anchors[0], issuer: mine.issuer, issuerKey } } });
    expect(brought.status).toBe(200);
    const issued = await request({ csr });
    expect(issued.json.chain).toEqual([mine.issuer]);
    expect(issued.json.trustAnchors).toContain(mine.anchors[0]);
    const status = await control.call("GET", "/v1/identity/ca");
    expect(status.json.authorities.find((a: { state: string }) => a.state === "signing").external).toBe(true);
    expect(status.text).not.toContain("PRIVATE");
    expect((await control.call("GET", "/v1/identity/ca", { token: null })).status).toBe(401);
  });
});
