import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bundleSidecar } from "./bundle.ts";

describe("the sidecar's bundle", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-bundle-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps names as written, without a helper that re-sets each function's name when it is made", async () => {
    const source = readFileSync(await bundleSidecar(join(dir, "sidecar.mjs")), "utf8");
    // esbuild's keepNames helper: `var __name = (target, value) => defineProperty(target, "name", { value, configurable: true })`.
    expect(source).not.toMatch(/\(\w+,"name",\{value:\w+,configurable:!0\}\)/);
    expect(source).toContain("function createUpstreams(");
    // One byte a character: V8 keeps a Latin-1 source at half the size of one with any character
    // beyond it (the licences kept at the end name a "Jimmy W\u00e4rting", which Latin-1 holds).
    expect(/[^\x00-\xff]/.exec(source)?.[0]).toBeUndefined();
  });

  it("holds undici's pool alone (undici-pool.ts), not undici's index, which brings all of undici along", async () => {
    const source = readFileSync(await bundleSidecar(join(dir, "sidecar.mjs")), "utf8");
    expect(source).toContain("require_pool");
    expect(source).not.toContain("EnvHttpProxyAgent");
    expect(source).not.toContain("require_websocket");
  });

  it("writes the pod's CSR without @peculiar/x509 and its container (csr.ts); the CA's library stays out", async () => {
    const source = readFileSync(await bundleSidecar(join(dir, "sidecar.mjs")), "utf8");
    expect(source).toContain("CertificationRequestInfo");
    expect(source).not.toContain("Pkcs10CertificateRequestGenerator");
    expect(source).not.toContain("tsyringe");
  });
});
