/**
 * The pod's certificate request (PKCS #10, RFC 2986), written with the ASN.1 schemas of
 * `@peculiar/asn1-csr` and signed by Node's crypto. The CA (`src/identity/ca.ts`) uses
 * `@peculiar/x509`, which runs in workerd too; the sidecar needs only this one request, made
 * once per process, and @peculiar/x509 (with tsyringe and a dozen ASN.1 modules) would stay in
 * its heap for the life of the process: 3.8 MB of heap in a bare Node process, against 1.7 MB
 * for the schemas used here. Loaded only when mutual TLS is on (`mtls.ts`).
 */
import { KeyObject, sign, type webcrypto } from "node:crypto";
import { CertificationRequest, CertificationRequestInfo } from "@peculiar/asn1-csr";
import { AsnConvert } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import { pem } from "./pem.ts";

/** `ecdsa-with-SHA256` (RFC 5758 section 3.2): the signature of every request, with no parameters. */
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

/**
 * A PEM certificate request over the workload's key pair (ECDSA P-256), with an empty subject:
 * the CA takes the identity from the bootstrap credential, not from the request.
 */
export async function writeCsr(keys: CryptoKeyPair): Promise<string> {
  const spki = (await crypto.subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer;
  const info = new CertificationRequestInfo({ subjectPKInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo) });
  // The signature value of an ECDSA request is DER (ECDSA-Sig-Value), as Node writes it.
  const signature = sign("sha256", new Uint8Array(AsnConvert.serialize(info)), { key: KeyObject.from(keys.privateKey as webcrypto.CryptoKey), dsaEncoding: "der" });
  const request = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
    signature: new Uint8Array(signature).buffer,
  });
  return pem("CERTIFICATE REQUEST", AsnConvert.serialize(request));
}
