import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { AsnConvert } from "@peculiar/asn1-schema";
import { afterAll, describe, expect, it } from "vitest";
import { createCsr, generateWorkloadKey } from "../src/identity/ca.ts";
import { writeCsr } from "./csr.ts";

const der = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");

describe("the sidecar's certificate request", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-csr-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is a PKCS #10 request over the pod's public key that @peculiar/x509 (the CA's parser) verifies", async () => {
    const keys = await generateWorkloadKey();
    const pem = await writeCsr(keys);
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+/=\n]+\n-----END CERTIFICATE REQUEST-----\n$/);
    const request = new x509.Pkcs10CertificateRequest(pem);
    expect(await request.verify()).toBe(true);
    expect(request.subject).toBe("");
    expect(request.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-256" } });
    const spki = Buffer.from(await crypto.subtle.exportKey("spki", keys.publicKey));
    expect(Buffer.from(request.publicKey.rawData).equals(spki)).toBe(true);
  });

  it("is laid out byte for byte as @peculiar/x509's generator lays out the same request, signature aside", async () => {
    const keys = await generateWorkloadKey();
    const ours = der(await writeCsr(keys));
    const theirs = der(await createCsr({ keys }));
    // The signed part (version, empty subject, key, empty attributes) and the algorithm are the
    // same bytes; ECDSA signatures differ on every signing.
    const parts = (bytes: Buffer) => {
      const request = AsnConvert.parse(bytes, CertificationRequest);
      return [AsnConvert.serialize(request.certificationRequestInfo), AsnConvert.serialize(request.signatureAlgorithm)].map((part) => Buffer.from(part).toString("hex"));
    };
    expect(parts(ours)).toEqual(parts(theirs));
    expect(ours.equals(theirs)).toBe(false);
  });

  it("passes openssl's own check of its signature", async () => {
    const file = join(dir, "pod.csr");
    writeFileSync(file, await writeCsr(await generateWorkloadKey()));
    const check = spawnSync("openssl", ["req", "-in", file, "-noout", "-verify"], { encoding: "utf8" });
    expect(check.status, check.stderr).toBe(0);
    expect(`${check.stdout}${check.stderr}`).toMatch(/verify OK/i);
  });
});
