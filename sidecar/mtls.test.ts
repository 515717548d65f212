import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createCa, type CaState } from "../src/identity/ca.ts";
import { createCertificates, createHandshakeStats, handshakeReason, spiffeIdOf } from "./mtls.ts";

const TD = "weft.test";
const WEB = `spiffe://${TD}/ns/shop/sa/web`;

function ca() {
  let state: CaState | undefined;
  return createCa({ trustDomain: TD, state: { get: async () => state, put: async (s) => void (state = s) } });
}

describe("the sidecar's mutual TLS parts", () => {
  it("reads a peer's SPIFFE ID only from exactly one URI SAN in the trust domain", () => {
    const cert = (san: string) => ({ subjectAltName: san }) as X509Certificate;
    expect(spiffeIdOf(cert(`URI:${WEB}`), TD)).toBe(WEB);
    expect(spiffeIdOf(cert(`DNS:web, URI:${WEB}`), TD)).toBe(WEB);
    expect(spiffeIdOf(cert(`URI:${WEB}, URI:spiffe://${TD}/ns/shop/sa/orders`), TD)).toBeUndefined();
    expect(spiffeIdOf(cert("URI:spiffe://other.test/ns/shop/sa/web"), TD)).toBeUndefined();
    expect(spiffeIdOf(cert("URI:https://web.example/"), TD)).toBeUndefined();
    expect(spiffeIdOf(cert("DNS:web"), TD)).toBeUndefined();
    expect(spiffeIdOf(undefined, TD)).toBeUndefined();
  });

  it("names handshake failures by reason, never by the peer's data", () => {
    expect(handshakeReason({ code: "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE" })).toBe("no-client-certificate");
    expect(handshakeReason({ code: "CERT_HAS_EXPIRED" })).toBe("certificate-expired");
    expect(handshakeReason({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" })).toBe("certificate-untrusted");
    expect(handshakeReason({ code: "ERR_WEFT_PEER_IDENTITY" })).toBe("peer-identity");
    expect(handshakeReason(new Error("something else"))).toBe("other");
    const stats = createHandshakeStats();
    stats.success("inbound");
    stats.failure("outbound", "peer-identity");
    expect(stats.expose(12.4)).toContain('weft_tls_handshake_failures_total{direction="outbound",reason="peer-identity"} 1\n');
    expect(stats.expose(12.4)).toContain("weft_tls_certificate_expiry_seconds 12\n");
  });

  it("makes its own key and CSR, holds the certificate the CA signs, and moves to new anchors as a new generation", async () => {
    const authority = ca();
    const csrs: string[] = [];
    const certificates = createCertificates({
      trustDomain: TD,
      log: () => {},
      request: async (csr, lifetime) => {
        csrs.push(csr);
        const issued = await authority.issue(csr, WEB, lifetime === "1h" ? 3600_000 : undefined);
        return { certificate: issued.certificate, chain: issued.chain, trustAnchors: (await authority.anchors()).anchors, notBefore: new Date(issued.notBefore).toISOString(), expiresAt: new Date(issued.notAfter).toISOString() };
      },
      lifetime: "1h",
    });
    const seen: number[] = [];
    certificates.onChange((c) => seen.push(c.generation));
    await certificates.start();
    certificates.stop();
    const held = certificates.current()!;
    expect(held.id).toBe(WEB);
    expect(held.key).toContain("BEGIN PRIVATE KEY");
    expect(csrs).toHaveLength(1);
    expect(csrs[0]).not.toContain("PRIVATE");
    expect(new X509Certificate(held.cert).subjectAltName).toBe(`URI:${WEB}`);
    expect(certificates.expirySeconds()).toBeGreaterThan(3500);
    expect(certificates.expirySeconds()).toBeLessThanOrEqual(3600);
    certificates.setAnchors(held.ca);
    expect(seen).toEqual([1]);
    certificates.setAnchors([...held.ca, "-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n"]);
    expect(seen).toEqual([1, 2]);
    expect(certificates.current()!.ca).toHaveLength(2);
  });
});
