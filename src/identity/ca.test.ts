import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createManualClock } from "../testing/index.ts";
import { CaInputError, DEFAULT_CA_PUBLISH_AHEAD_MS, DEFAULT_CERTIFICATE_LIFETIME_MS, createCa, createCsr, generateAuthority, generateWorkloadKey, type CaState } from "./ca.ts";
import { T0, TRUST_DOMAIN, WEB } from "./test-fixtures.ts";

const H = 60 * 60_000;

function setup() {
  const clock = createManualClock(T0);
  let stored: CaState | undefined;
  const ca = createCa({ trustDomain: TRUST_DOMAIN, now: clock.now, state: { get: async () => stored, put: async (s) => void (stored = structuredClone(s)) } });
  return { clock, ca, stored: () => stored };
}

/** Writes files into a fresh folder and runs openssl (a tool Weft did not write) on them. */
function openssl(files: Record<string, string>, args: (dir: string) => string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "weft-ca-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return execFileSync("openssl", args(dir), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

describe("createCa", () => {
  it("signs a CSR's key with one critical SPIFFE URI SAN, digitalSignature, both EKUs and a 24 h life", async () => {
    const { ca } = setup();
    const keys = await generateWorkloadKey();
    const issued = await ca.issue(await createCsr({ keys }), WEB);
    expect(issued.notAfter - issued.notBefore).toBe(DEFAULT_CERTIFICATE_LIFETIME_MS + 30_000);
    const text = openssl({ "leaf.pem": issued.certificate }, (d) => ["x509", "-in", join(d, "leaf.pem"), "-noout", "-text"]);
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/weft\.local\/ns\/shop\/sa\/web\s/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\s/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/CA:FALSE/);
    expect(text).toContain("ASN1 OID: prime256v1");
  });

  it("issues certificates that openssl verifies against the anchors through the intermediate", async () => {
    const { ca } = setup();
    const issued = await ca.issue(await createCsr({ keys: await generateWorkloadKey() }), WEB);
    const { anchors } = await ca.anchors();
    expect(issued.chain).toHaveLength(1);
    const out = openssl({ "anchors.pem": anchors.join(""), "chain.pem": issued.chain.join(""), "leaf.pem": issued.certificate }, (d) => [
      "verify", "-attime", String(T0 / 1000 + 60), "-CAfile", join(d, "anchors.pem"), "-untrusted", join(d, "chain.pem"), "-purpose", "sslclient", join(d, "leaf.pem"),
    ]);
    expect(out).toContain("OK");
    // And not against another CA's anchor.
    const other = await generateAuthority(TRUST_DOMAIN, T0, T0);
    expect(() => openssl({ "anchors.pem": other.anchors.join(""), "chain.pem": issued.chain.join(""), "leaf.pem": issued.certificate }, (d) => [
      "verify", "-attime", String(T0 / 1000 + 60), "-CAfile", join(d, "anchors.pem"), "-untrusted", join(d, "chain.pem"), join(d, "leaf.pem"),
    ])).toThrow();
  });

  it("refuses a CSR whose signature does not verify, a non-P-256 key, and an identity outside the trust domain", async () => {
    const { ca } = setup();
    const csr = await createCsr({ keys: await generateWorkloadKey() });
    await expect(ca.issue(csr, "spiffe://other.org/ns/a/sa/b")).rejects.toThrow(CaInputError);
    await expect(ca.issue("not a csr", WEB)).rejects.toThrow(CaInputError);
    const rsa = await crypto.subtle.generateKey({ name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["sign", "verify"]) as CryptoKeyPair;
    const x509 = await import("@peculiar/x509");
    const rsaCsr = (await x509.Pkcs10CertificateRequestGenerator.create({ name: "", keys: rsa, signingAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } })).toString("pem");
    await expect(ca.issue(rsaCsr, WEB)).rejects.toThrow("ECDSA P-256");
    // A CSR whose body was changed after signing.
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    der[der.length - 80]! ^= 1;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(ca.issue(tampered, WEB)).rejects.toThrow(CaInputError);
  });

  it("rotates with an overlap: the new anchor is published an hour before it signs, the old one kept until its certificates expire", async () => {
    const { ca, clock } = setup();
    const csr = await createCsr({ keys: await generateWorkloadKey() });
    const before = await ca.issue(csr, WEB);
    const first = (await ca.anchors()).anchors;
    await ca.rotate();
    const both = (await ca.anchors()).anchors;
    expect(both).toHaveLength(2);
    expect(both[0]).toBe(first[0]);
    // Still signed by the old issuer until the new one is active.
    expect((await ca.issue(csr, WEB)).chain).toEqual(before.chain);
    await clock.advance(DEFAULT_CA_PUBLISH_AHEAD_MS);
    const after = await ca.issue(csr, WEB);
    expect(after.chain).not.toEqual(before.chain);
    expect((await ca.describe()).map((a) => a.state)).toEqual(["retiring", "signing"]);
    // The old anchor stays while a certificate it signed may live (24 h plus the skew twice).
    await clock.advance(24 * H);
    await ca.maintain();
    expect((await ca.anchors()).anchors).toHaveLength(2);
    await clock.advance(60_001);
    const { nextCheckAt } = await ca.maintain();
    expect((await ca.anchors()).anchors).toEqual([both[1]]);
    expect(nextCheckAt).toBe(Infinity);
  });

  it("takes an operator's own anchor and issuer (cert-manager style) and refuses a key that is not the issuer's", async () => {
    const { ca, clock } = setup();
    const mine = await generateAuthority(TRUST_DOMAIN, T0, T0);
    const keyDer = await crypto.subtle.exportKey("pkcs8", await crypto.subtle.importKey("jwk", mine.issuerKey, { name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]));
    const keyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(keyDer).toString("base64")}\n-----END PRIVATE KEY-----\n`;
    const stranger = await generateAuthority(TRUST_DOMAIN, T0, T0);
    await expect(ca.bring({ anchors: mine.anchors[0]!, issuer: stranger.issuer, issuerKey: keyPem })).rejects.toThrow("not signed by any of the anchors");
    await expect(ca.bring({ anchors: stranger.anchors[0]!, issuer: stranger.issuer, issuerKey: keyPem })).rejects.toThrow("does not match");
    await ca.bring({ anchors: mine.anchors[0]!, issuer: mine.issuer, issuerKey: keyPem }, 0);
    await clock.advance(1);
    const issued = await ca.issue(await createCsr({ keys: await generateWorkloadKey() }), WEB);
    expect(issued.chain).toEqual([mine.issuer]);
    expect((await ca.describe()).find((a) => a.state === "signing")?.external).toBe(true);
  });
});
