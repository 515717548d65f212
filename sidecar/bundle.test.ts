import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleSidecar } from "./bundle.ts";

describe("the sidecar's bundle", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-bundle-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // Built once; each test reads what it needs of it.
  let out: string;
  let source: string;
  beforeAll(async () => {
    out = await bundleSidecar(join(dir, "sidecar.mjs"));
    source = readFileSync(out, "utf8");
  });

  it("keeps names as written, without a helper that re-sets each function's name when it is made", () => {
    // esbuild's keepNames helper: `var __name = (target, value) => defineProperty(target, "name", { value, configurable: true })`.
    expect(source).not.toMatch(/\(\w+,"name",\{value:\w+,configurable:!0\}\)/);
    expect(source).toContain("function createUpstreams(");
    // Pure ASCII: Node loads a source over 1 MB with any other character (even one Latin-1
    // holds) as UTF-16, two bytes a character.
    expect(/[^\x00-\x7f]/.exec(source)?.[0]).toBeUndefined();
  });

  it("puts the dependencies' licence notices beside it, named at its end, and the image copies them", () => {
    expect(source.trimEnd().endsWith("/*! For license information please see sidecar.mjs.LEGAL.txt */")).toBe(true);
    const legal = readFileSync(`${out}.LEGAL.txt`, "utf8");
    expect(legal).toContain("MIT License. Jimmy W\u00e4rting");
    expect(legal).toContain("undici");
    expect(readFileSync(resolve(import.meta.dirname, "../deploy/Dockerfile"), "utf8")).toContain("/weft/dist/sidecar.mjs.LEGAL.txt ./");
  });

  it("holds undici's pool alone (undici-pool.ts), not undici's index, which brings all of undici along", () => {
    expect(source).toContain("require_pool");
    expect(source).not.toContain("EnvHttpProxyAgent");
    expect(source).not.toContain("require_websocket");
  });

  it("writes the pod's CSR without @peculiar/x509 and its container (csr.ts); the CA's library stays out", () => {
    expect(source).toContain("CertificationRequestInfo");
    expect(source).not.toContain("Pkcs10CertificateRequestGenerator");
    expect(source).not.toContain("tsyringe");
  });
});
