/**
 * Mutual TLS between real sidecar processes: three pods (web, orders, payments) on 127.0.0.5,
 * .6 and .7 and the control plane in workerd, under an authority the test brought (so it
 * can sign the odd certificates an attacker would present). Checked with tools Weft did not
 * write: openssl s_client, x509 and verify against the inbound port and the served bundle,
 * tcpdump on loopback. Then a sidecar posing as another service's endpoint, an anchor
 * rotation under load with certificates renewed meanwhile, and the control plane gone past
 * the renewal point. The cases share one process set and run in order.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CA_ALGORITHM, createCsr, generateAuthority, generateWorkloadKey, type Authority } from "../../src/identity/ca.ts";
import { pem } from "../../sidecar/pem.ts";
import { admin, callVia, metricsOf, sample, startMesh, startPod, TRUST_DOMAIN, until, waitReady, type Mesh, type Pod } from "./pods.ts";

const ID = (sa: string) => `spiffe://${TRUST_DOMAIN}/ns/shop/sa/${sa}`;
const DIR = mkdtempSync(join(tmpdir(), "weft-mtls-"));
/** Short certificates, so renewal (at 2/3 of 20 s) happens while the test runs. */
const POD_ENV = { WEFT_CERT_LIFETIME: "20s" };

let mesh: Mesh;
let web: Pod;
let orders: Pod;
let payments: Pod;
let mine: Authority;
let issuerKey: CryptoKey;

const hostOf = (pod: Pod) => new URL(pod.sidecar.inbound).host;

/** Signs a client certificate with `signer` (our brought issuer unless another CA's). */
async function clientCert(name: string, options: { uri: string; notBefore?: Date; notAfter?: Date; signer?: Authority }): Promise<string[]> {
  const keys = await generateWorkloadKey();
  const signer = options.signer ?? mine;
  const signingKey = options.signer ? await crypto.subtle.importKey("jwk", signer.issuerKey, CA_ALGORITHM, false, ["sign"]) : issuerKey;
  const issuer = new x509.X509Certificate(signer.issuer);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: "0a",
    subject: "",
    issuer: issuer.subject,
    notBefore: options.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: options.notAfter ?? new Date(Date.now() + 3600_000),
    signingKey,
    publicKey: keys.publicKey,
    signingAlgorithm: CA_ALGORITHM,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: options.uri }], true),
    ],
  });
  const certFile = join(DIR, `${name}.crt`);
  const keyFile = join(DIR, `${name}.key`);
  const chainFile = join(DIR, `${name}-chain.crt`);
  writeFileSync(certFile, `${leaf.toString("pem").trim()}\n`);
  writeFileSync(chainFile, signer.issuer);
  writeFileSync(keyFile, pem("PRIVATE KEY", (await crypto.subtle.exportKey("pkcs8", keys.privateKey)) as ArrayBuffer));
  return ["-cert", certFile, "-key", keyFile, "-cert_chain", chainFile];
}

/**
 * Runs openssl s_client against `pod`'s inbound port, sending one HTTP request; resolves with
 * all it printed. Asynchronous: the pods' apps run in this process and must keep answering.
 */
function sClient(pod: Pod, args: string[]): Promise<string> {
  const anchors = join(DIR, "anchors.pem");
  const request = `GET /via-openssl HTTP/1.1\r\nHost: ${pod.service}\r\nConnection: close\r\n\r\n`;
  return new Promise((resolve) => {
    const child = spawn("openssl", ["s_client", "-connect", hostOf(pod), "-tls1_3", "-CAfile", anchors, "-ign_eof", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.once("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
    child.stdin.end(request);
  });
}

beforeAll(async () => {
  mesh = await startMesh();
  // Our own anchor and issuer (cert-manager style), signing from now: every pod's certificate chains to it.
  mine = await generateAuthority(TRUST_DOMAIN, Date.now(), Date.now());
  issuerKey = await crypto.subtle.importKey("jwk", mine.issuerKey, CA_ALGORITHM, true, ["sign"]);
  const keyPem = pem("PRIVATE KEY", (await crypto.subtle.exportKey("pkcs8", issuerKey)) as ArrayBuffer);
  await admin(mesh.control, "POST", "/v1/identity/ca/rotate", { activateIn: "0s", bring: { anchors: mine.anchors[0], issuer: mine.issuer, issuerKey: keyPem } });
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "web", defaultPolicy: "all-authenticated" },
      { kind: "Service", name: "orders", defaultPolicy: "all-authenticated", retry: { limit: 2, on: ["gateway-error", "reset"], budget: { ratio: 1, minPerSecond: 100, ttl: "10s" } } },
      { kind: "Service", name: "payments", defaultPolicy: "all-authenticated" },
      { kind: "Service", name: "billing", defaultPolicy: "all-authenticated" },
      { kind: "AuthorizationPolicy", name: "payments-from-orders", target: { service: "payments" }, action: "ALLOW", from: [{ identities: [ID("orders")] }] },
    ],
  });
  [web, orders, payments] = await Promise.all([
    startPod(mesh, { name: "web-1", ip: "127.0.0.5", service: "web", env: POD_ENV, ready: false }),
    startPod(mesh, { name: "orders-1", ip: "127.0.0.6", service: "orders", env: POD_ENV, ready: false }),
    startPod(mesh, { name: "payments-1", ip: "127.0.0.7", service: "payments", env: POD_ENV, ready: false }),
  ]);
  mesh.pods.push(web, orders, payments);
  // Three processes starting at once on a machine shared with other work: a generous bound.
  await Promise.all([web, orders, payments].map((pod) => waitReady(pod.sidecar, 60_000)));
  writeFileSync(join(DIR, "anchors.pem"), await (await fetch(`${mesh.control.url}/v1/identity/trust-anchors.pem`)).text());
  await until(async () => {
    const services = (await admin(mesh.control, "GET", "/v1/snapshot")).json.services as { name: string; endpoints?: unknown[] }[];
    return ["web", "orders", "payments"].every((name) => services.find((s) => s.name === name)?.endpoints?.length === 1);
  }, 30_000);
  await until(async () => (await callVia(web, "payments", "/warm")).status === 403 && (await callVia(orders, "payments", "/warm")).status === 200, 30_000);
}, 120_000);

afterAll(async () => {
  await mesh?.destroy();
});

describe("mutual TLS between sidecars", () => {
  it("carries each caller's certificate identity to the app, with no token on the wire, between three pods", async () => {
    for (const [from, to] of [[web, orders], [orders, payments], [payments, web], [web, payments]] as const) {
      const reply = await callVia(from, to.service, "/who");
      if (from === web && to === payments) {
        // Authorization runs on the certificate's identity: payments allows only orders.
        expect(reply.status).toBe(403);
        continue;
      }
      expect(reply.status).toBe(200);
      expect(reply.body.clientId).toBe(ID(from.service));
      expect(reply.body.identityHeader).toBeUndefined();
    }
    for (const pod of [web, orders, payments]) {
      const metrics = await metricsOf(pod.sidecar);
      expect(sample(metrics, "weft_tls_handshakes_total", { direction: "inbound" })).toBeGreaterThan(0);
      expect(sample(metrics, "weft_tls_certificate_expiry_seconds")).toBeGreaterThan(0);
      expect(sample(metrics, "weft_tls_certificate_expiry_seconds")).toBeLessThanOrEqual(20);
    }
  });

  it("serves a certificate that openssl verifies against the served bundle, with the SPIFFE SAN, key usage and lifetime", async () => {
    const valid = await clientCert("web-valid", { uri: ID("web") });
    const out = await sClient(orders, [...valid, "-showcerts"]);
    // A client the mesh would accept gets the app's answer: the refusals below are not the harness failing.
    expect(out).toContain("HTTP/1.1 200");
    expect(out).toContain("Verify return code: 0 (ok)");
    const served = out.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    writeFileSync(join(DIR, "served-leaf.pem"), `${served[0]}\n`);
    writeFileSync(join(DIR, "served-chain.pem"), served.slice(1).join("\n"));
    const verify = spawnSync("openssl", ["verify", "-CAfile", join(DIR, "anchors.pem"), "-untrusted", join(DIR, "served-chain.pem"), "-purpose", "sslserver", join(DIR, "served-leaf.pem")], { encoding: "utf8" });
    expect(verify.stdout).toContain(": OK");
    const text = spawnSync("openssl", ["x509", "-in", join(DIR, "served-leaf.pem"), "-noout", "-text", "-dates"], { encoding: "utf8" }).stdout;
    expect(text).toMatch(new RegExp(`Subject Alternative Name: critical\\s+URI:${ID("orders").replace(/[/.]/g, "\\$&")}\\s`));
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\s/);
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    const notBefore = Date.parse(text.match(/notBefore=(.+)/)![1]!);
    const notAfter = Date.parse(text.match(/notAfter=(.+)/)![1]!);
    // 20 s asked for, backdated by the CA's 30 s skew allowance.
    expect((notAfter - notBefore) / 1000).toBe(50);
  });

  it("refuses, at the handshake, no client certificate, another CA's, an expired one, and one whose URI SAN is no SPIFFE ID of the trust domain", async () => {
    const before = await metricsOf(orders.sidecar);
    const appCalls = orders.app.calls();
    // Each is refused once its handshake is done (TLS 1.3 lets the client finish first): the
    // connection closes before a request is read, and the sidecar counts why.
    const none = await sClient(orders, []);
    expect(none).toContain("Acceptable client certificate CA names");
    expect(none).not.toContain("HTTP/1.1");

    const other = await clientCert("other-ca", { uri: ID("web"), signer: await generateAuthority(TRUST_DOMAIN, Date.now(), Date.now()) });
    const untrusted = await sClient(orders, other);
    expect(untrusted).not.toContain("HTTP/1.1");

    const old = await clientCert("expired", { uri: ID("web"), notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) });
    const expired = await sClient(orders, old);
    expect(expired).not.toContain("HTTP/1.1");

    for (const uri of [`spiffe://other.test/ns/shop/sa/web`, "https://web.shop.example/"]) {
      const odd = await clientCert(`odd-${uri.length}`, { uri });
      const answer = await sClient(orders, odd);
      expect(answer).not.toContain("HTTP/1.1");
    }
    const after = await metricsOf(orders.sidecar);
    const failures = (reason: string, text: string) => sample(text, "weft_tls_handshake_failures_total", { direction: "inbound", reason }) ?? 0;
    expect(failures("no-client-certificate", after) - failures("no-client-certificate", before)).toBe(1);
    expect(failures("certificate-untrusted", after) - failures("certificate-untrusted", before)).toBe(1);
    expect(failures("certificate-expired", after) - failures("certificate-expired", before)).toBe(1);
    expect(failures("peer-identity", after) - failures("peer-identity", before)).toBe(2);
    expect(orders.app.calls()).toBe(appCalls);
  });

  it("closes the connection of a client that leaves right after its handshake, at once (a flood of them holds nothing)", async () => {
    const args = await clientCert("flood", { uri: ID("web") });
    const [cert, key] = [readFileSync(args[1]!, "utf8") + readFileSync(args[5]!, "utf8"), readFileSync(args[3]!, "utf8")];
    const ca = readFileSync(join(DIR, "anchors.pem"), "utf8");
    const pid = orders.sidecar.child.pid!;
    const descriptors = () => readdirSync(`/proc/${pid}/fd`).length;
    const before = descriptors();
    const [host, port] = hostOf(orders).split(":") as [string, string];
    for (let i = 0; i < 60; i++) {
      await new Promise<void>((resolve, reject) => {
        const socket = tlsConnect({ host, port: Number(port), cert, key, ca, minVersion: "TLSv1.3", checkServerIdentity: () => undefined }, () => {
          socket.destroy();
          resolve();
        });
        socket.once("error", reject);
      });
    }
    // Well inside the 10 s header timeout, which is what closed them before.
    await until(() => descriptors() <= before + 5, 3_000);
    expect(descriptors()).toBeLessThanOrEqual(before + 5);
  });

  it("refuses an endpoint that presents a valid mesh certificate of another identity, with a weft-error naming both", async () => {
    // The control plane lists billing at orders' port: orders answers with its own certificate.
    await admin(mesh.control, "PUT", "/v1/services/billing/endpoints/billing-1", { address: `https://${hostOf(orders)}`, identity: ID("billing"), ttl: "5m" });
    await until(async () => (await callVia(web, "billing", "/x")).status !== 503, 30_000);
    const callsBefore = orders.app.calls();
    const reply = await callVia(web, "billing", "/pay");
    expect(reply.status).toBe(502);
    expect(reply.headers["weft-error"]).toBe("upstream-unreachable");
    expect(reply.body.error.message).toContain(`presented ${ID("orders")}, not ${ID("billing")}`);
    expect(orders.app.calls()).toBe(callsBefore);
    expect(sample(await metricsOf(web.sidecar), "weft_tls_handshake_failures_total", { direction: "outbound", reason: "peer-identity" })).toBeGreaterThan(0);
  });

  it("keeps the bytes between sidecars unreadable to a packet capture on loopback", async () => {
    const port = new URL(orders.sidecar.inbound).port;
    const pcap = join(DIR, "capture.pcap");
    const tcpdump = spawn("tcpdump", ["-i", "lo", "-Z", "root", "--immediate-mode", "-U", "-s", "0", "-w", pcap, `tcp port ${port}`], { stdio: ["ignore", "ignore", "pipe"] });
    let started = "";
    tcpdump.stderr!.on("data", (chunk: Buffer) => (started += chunk.toString()));
    await until(() => started.includes("listening on"), 10_000);
    const marker = `needle-${crypto.randomUUID()}`;
    for (let i = 0; i < 5; i++) expect((await callVia(web, "orders", `/${marker}`, { method: "POST", body: marker })).status).toBe(200);
    // The same marker in plain HTTP to the same port (refused: no identity) shows the capture sees plaintext.
    const plain = await fetch(`${orders.sidecar.inbound}/plain-${marker}`);
    expect(plain.status).toBe(401);
    // Packets still in the capture buffer are written before tcpdump exits on SIGINT.
    await new Promise((r) => setTimeout(r, 1000));
    tcpdump.kill("SIGINT");
    await new Promise((r) => tcpdump.once("exit", r));
    const bytes = readFileSync(pcap).toString("latin1");
    expect(bytes).toContain(`plain-${marker}`);
    expect(bytes.split(marker).length - 1).toBe(1);
  });

  it("rotates the anchor under load without dropping a request, certificates renewing meanwhile", async () => {
    let stop = false;
    const failures: string[] = [];
    let sent = 0;
    const load = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (!stop) {
          sent++;
          const reply = await callVia(web, "orders", "/rotation").catch((error: Error) => ({ status: 0, body: { error: error.message } }) as const);
          if (reply.status !== 200) failures.push(`${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`);
        }
      }),
    );
    const rotatedAt = Date.now();
    const rotated = await admin(mesh.control, "POST", "/v1/identity/ca/rotate", { activateIn: "2s" });
    expect(rotated.json.authorities.map((a: { state: string }) => a.state).slice(-2)).toEqual(["signing", "waiting"]);
    const renewedAfter = (pod: Pod) =>
      pod.sidecar
        .log()
        .split("\n")
        .filter((line) => line.includes('"certificate-renewed"') && Date.parse(JSON.parse(line).time) > rotatedAt + 2500).length;
    // Every pod renews once under the new authority (20 s certificates renew every ~13 s).
    await until(() => [web, orders, payments].every((pod) => renewedAfter(pod) >= 1), 40_000);
    stop = true;
    await load;
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(20);
    const status = await admin(mesh.control, "GET", "/v1/identity/ca");
    expect(status.json.authorities.map((a: { state: string }) => a.state).slice(-2)).toEqual(["retiring", "signing"]);
    // orders now serves a certificate from the new issuer, which the old and new anchors in the snapshot cover.
    writeFileSync(join(DIR, "anchors.pem"), await (await fetch(`${mesh.control.url}/v1/identity/trust-anchors.pem`)).text());
    const valid = await clientCert("web-after", { uri: ID("web") });
    const out = await sClient(orders, valid);
    expect(out).toContain("HTTP/1.1 200");
    expect(out).not.toContain(new x509.X509Certificate(mine.issuer).subject.slice(3, 40));
  }, 90_000);

  it("keeps traffic flowing on the certificates held when the control plane is down past the renewal point", async () => {
    const failedRenewals = (pod: Pod) => pod.sidecar.log().split("\n").filter((line) => line.includes('"certificate-renewal-failed"')).length;
    const before = [web, orders].map(failedRenewals);
    await mesh.control.stop();
    // Both pods have tried to renew and failed (20 s certificates: ~7 s of life left then).
    await until(() => failedRenewals(web) > before[0]! && failedRenewals(orders) > before[1]!, 40_000);
    for (let i = 0; i < 20; i++) {
      const reply = await callVia(web, "orders", `/control-down/${i}`);
      expect(reply.status).toBe(200);
      expect(reply.body.clientId).toBe(ID("web"));
    }
    expect((await fetch(`${web.sidecar.admin}/ready`)).status).toBe(200);
  }, 60_000);
});
