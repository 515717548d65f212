/**
 * The one algorithm of the mesh's certificates, and a workload's key pair under it. Apart from
 * `ca.ts` so that a sidecar can make its key without loading the X.509 library the CA needs.
 */

/** ECDSA P-256 with SHA-256, for every key and signature the CA makes (Linkerd's choice too). */
export const CA_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A new workload key pair (ECDSA P-256), extractable so the host can hand it to its TLS stack. */
export async function generateWorkloadKey(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(CA_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
}
