import { createPrivateKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { pem } from "./pem.ts";

describe("pem", () => {
  it("writes 64-character base64 lines between the label's markers, as Node's own export does", async () => {
    const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"])) as CryptoKeyPair;
    const der = (await crypto.subtle.exportKey("pkcs8", keys.privateKey)) as ArrayBuffer;
    const text = pem("PRIVATE KEY", der);
    expect(text).toBe(createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }));
    expect(pem("X", new Uint8Array(100)).split("\n").map((line) => line.length)).toEqual([17, 64, 64, 8, 15, 0]);
  });
});
