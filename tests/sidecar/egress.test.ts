/**
 * Egress end to end (issue 16): with the mesh's egress mode `allow-listed`, a workload calls an
 * outside HTTPS service it declared (an ExternalService) in plain HTTP through its sidecar's
 * 4140, and the sidecar originates TLS to a local server whose certificate the test made with
 * openssl, verified by the resource's CA bundle and SNI name; retries and metrics apply. An
 * undeclared host is refused, and so is a server with the wrong certificate.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admin, callVia, metricsOf, sample, startMesh, startPod, type Mesh, type Pod } from "./pods.ts";

const HOST = "api.example.test";
const WRONG_HOST = "bad.example.test";

let mesh: Mesh;
let web: Pod;
let dir: string;
let good: Server;
let wrong: Server;
let wrongCalls = 0;
const failures = new Map<string, number>();

/** A self-signed certificate for `name`, made by openssl: key and certificate in PEM. */
function certificate(name: string, file: string): { key: string; cert: string } {
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
    "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`,
    "-keyout", join(dir, `${file}.key`), "-out", join(dir, `${file}.crt`),
  ], { stdio: "ignore" });
  return { key: readFileSync(join(dir, `${file}.key`), "utf8"), cert: readFileSync(join(dir, `${file}.crt`), "utf8") };
}

const listen = (server: Server) => new Promise<number>((resolve) => server.listen(0, "127.0.0.6", () => resolve((server.address() as { port: number }).port)));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "weft-egress-"));
  const trusted = certificate(HOST, "trusted");
  // Same name, but signed by nobody the resource trusts.
  const untrusted = certificate(WRONG_HOST, "untrusted");
  good = createServer({ key: trusted.key, cert: trusted.cert }, (req, res) => {
    const url = new URL(req.url ?? "/", "https://x");
    const key = url.searchParams.get("fail");
    if (key !== null) {
      const seen = failures.get(key) ?? 0;
      failures.set(key, seen + 1);
      if (seen === 0) return void res.writeHead(503).end("not yet");
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ path: req.url, host: req.headers.host, sni: (req.socket as TLSSocket).servername, identity: req.headers["weft-identity"] ?? null }));
  });
  wrong = createServer({ key: untrusted.key, cert: untrusted.cert }, (_req, res) => {
    wrongCalls++;
    res.end("should never be reached");
  });
  const [goodPort, wrongPort] = await Promise.all([listen(good), listen(wrong)]);

  mesh = await startMesh({ egressMode: "allow-listed" });
  await admin(mesh.control, "POST", "/v1/apply", {
    resources: [
      { kind: "Service", name: "web" },
      {
        kind: "ExternalService",
        name: "example-api",
        hosts: [HOST],
        protocol: "https",
        // The name resolves nowhere: the resource's address is where it lives in this test.
        address: `127.0.0.6:${goodPort}`,
        tls: { sni: HOST, caBundle: trusted.cert },
        retry: { limit: 1, on: ["5xx"] },
        timeout: "5s",
      },
      { kind: "ExternalService", name: "bad-api", hosts: [WRONG_HOST], protocol: "https", address: `127.0.0.6:${wrongPort}`, tls: { caBundle: trusted.cert } },
    ],
  });
  web = await startPod(mesh, { name: "web-1", ip: "127.0.0.2", service: "web" });
  mesh.pods.push(web);
}, 90_000);

afterAll(async () => {
  good?.close();
  wrong?.close();
  await mesh?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("egress through the sidecar (mode allow-listed)", () => {
  it("reaches a declared HTTPS service over plain HTTP on 4140, originating TLS with its SNI and CA, without the workload's token", async () => {
    const reply = await callVia(web, HOST, "/v1/items?x=1");
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ path: "/v1/items?x=1", host: HOST, sni: HOST, identity: null });
    const metrics = await metricsOf(web.sidecar);
    expect(sample(metrics, "weft_response_total", { direction: "outbound", dst_service: "example-api", status_code: "200" })).toBeGreaterThanOrEqual(1);
  });

  it("retries the outside service's 5xx as it would a mesh service's", async () => {
    const reply = await callVia(web, HOST, "/flaky?fail=once");
    expect(reply.status).toBe(200);
    expect(failures.get("once")).toBe(2);
    expect(sample(await metricsOf(web.sidecar), "weft_retry_total", { dst_service: "example-api" })).toBeGreaterThanOrEqual(1);
  });

  it("refuses a host nobody declared with 403 forbidden, naming the mode", async () => {
    const reply = await callVia(web, "evil.example.org", "/steal");
    expect(reply.status).toBe(403);
    expect(reply.headers["weft-error"]).toBe("forbidden");
    expect(reply.body.error.message).toContain("declared by no ExternalService (egress mode allow-listed)");
  });

  it("refuses a server whose certificate the resource's CA bundle does not vouch for", async () => {
    const reply = await callVia(web, WRONG_HOST, "/x");
    expect(reply.status).toBe(502);
    expect(reply.headers["weft-error"]).toBe("upstream-unreachable");
    expect(wrongCalls).toBe(0);
  });

  it("still calls mesh services by name", async () => {
    expect((await callVia(web, "nope", "/")).headers["weft-error"]).toBe("unknown-service");
  });
});
