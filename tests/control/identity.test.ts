/**
 * Identity through the control worker in workerd: bootstrap secrets and Kubernetes
 * ServiceAccount tokens exchanged for tokens, the trust bundle, key rotation through the API
 * and the cron, and workload tokens as credentials for data-plane reads and writes.
 */
import { SignJWT, createLocalJWKSet, decodeJwt, exportJWK, generateKeyPair, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestControl } from "./helpers.ts";
import { service, startTestControl } from "./helpers.ts";

let control: TestControl;
let ordersSecret: string;

beforeAll(async () => {
  control = await startTestControl({ adminIdentities: ["spiffe://cluster.local/ns/ops/sa/operator"] });
  await control.call("PUT", "/v1/services/orders", { body: service() });
  await control.call("PUT", "/v1/services/payments", { body: service() });
  const secret = await control.call("PUT", "/v1/identity/workers/orders");
  ordersSecret = secret.json.secret;
});

afterAll(async () => {
  await control?.destroy();
});

const workerToken = async (audience = "weft-control", secret = ordersSecret, name = "orders") =>
  control.call("POST", "/v1/identity/token", { token: null, body: { audience, worker: { service: name, secret } } });

describe("bootstrap secrets", () => {
  it("hands out a secret once and exchanges it for a token that verifies against the JWKS", async () => {
    const listed = await control.call("GET", "/v1/identity/workers");
    expect(listed.json.items).toEqual(["orders"]);
    expect(listed.text).not.toContain(ordersSecret);
    const answer = await workerToken("payments");
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ id: "spiffe://cluster.local/worker/orders", audience: "payments" });
    const jwks = await control.call("GET", "/.well-known/jwks.json", { token: null });
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get("cache-control")).toContain("max-age");
    expect(jwks.json.keys.every((k: { use: string }) => k.use === "jwt-svid")).toBe(true);
    // jose takes only `use: sig` keys; a SPIFFE bundle marks them `jwt-svid`.
    const keys = jwks.json.keys.map(({ use: _use, ...key }: { use: string }) => key);
    const { payload, protectedHeader } = await jwtVerify(answer.json.token, createLocalJWKSet({ keys }), { issuer: control.url, audience: "payments" });
    expect(protectedHeader.alg).toBe("ES256");
    expect(payload.sub).toBe("spiffe://cluster.local/worker/orders");
    expect(payload.exp! - payload.iat!).toBe(15 * 60);
    expect(new Date(answer.json.expiresAt).getTime()).toBe(payload.exp! * 1000);
  });

  it("answers 401 alike for a wrong secret and for a service without one", async () => {
    const wrong = await workerToken("weft-control", "not-the-secret");
    const none = await workerToken("weft-control", ordersSecret, "payments");
    expect(wrong.status).toBe(401);
    expect(none.status).toBe(401);
    expect(wrong.text).toBe(none.text);
  });

  it("honours a requested lifetime up to an hour and refuses longer or malformed requests", async () => {
    const short = await control.call("POST", "/v1/identity/token", { token: null, body: { audience: "orders", lifetime: "5m", worker: { service: "orders", secret: ordersSecret } } });
    const claims = decodeJwt(short.json.token);
    expect(claims.exp! - claims.iat!).toBe(300);
    for (const body of [{ audience: "orders", lifetime: "2h", worker: { service: "orders", secret: ordersSecret } }, { audience: "orders" }, { audience: "Orders!", worker: { service: "orders", secret: "x" } }]) {
      expect((await control.call("POST", "/v1/identity/token", { token: null, body })).status).toBe(400);
    }
  });

  it("stops accepting a secret once it is deleted", async () => {
    const made = await control.call("PUT", "/v1/identity/workers/payments");
    expect(made.status).toBe(201);
    expect((await workerToken("orders", made.json.secret, "payments")).status).toBe(200);
    expect((await control.call("DELETE", "/v1/identity/workers/payments")).status).toBe(200);
    expect((await workerToken("orders", made.json.secret, "payments")).status).toBe(401);
    expect((await control.call("DELETE", "/v1/identity/workers/payments")).status).toBe(404);
  });
});

describe("workload tokens as credentials", () => {
  it("lets a workload read and long-poll the snapshot but not reach admin routes", async () => {
    const token = (await workerToken()).json.token;
    const snapshot = await control.call("GET", "/v1/snapshot", { token });
    expect(snapshot.status).toBe(200);
    const admin = await control.call("GET", "/v1/services", { token });
    expect(admin.status).toBe(403);
    expect(admin.headers.get("weft-error")).toBe("forbidden");
    expect((await control.call("GET", "/v1/audit", { token })).status).toBe(403);
  });

  it("refuses a token addressed to another audience with 401", async () => {
    const token = (await workerToken("payments")).json.token;
    expect((await control.call("GET", "/v1/snapshot", { token })).status).toBe(401);
  });

  it("lets a workload register its own service's endpoints, audited under its identity, and no other's", async () => {
    const token = (await workerToken()).json.token;
    const own = await control.call("PUT", "/v1/services/orders/endpoints/edge-1", { token, body: { address: "binding:APP" } });
    expect(own.status).toBe(201);
    const other = await control.call("PUT", "/v1/services/payments/endpoints/edge-1", { token, body: { address: "binding:APP" } });
    expect(other.status).toBe(403);
    const audit = await control.call("GET", "/v1/audit?limit=1000");
    const entry = audit.json.entries.find((e: { toVersion: number }) => e.toVersion === own.json.version);
    expect(entry.actor).toBe("spiffe://cluster.local/worker/orders");
  });
});

describe("Kubernetes ServiceAccount tokens", () => {
  it("exchanges a projected token from a trusted cluster for the pod's SPIFFE identity", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "cluster-key-1", alg: "RS256", use: "sig" };
    const issuer = "https://kubernetes.default.svc.cluster.local";
    const trusted = await control.call("PUT", "/v1/identity/clusters/kind", { body: { issuer, audience: "weft", jwks: { keys: [jwk] } } });
    expect(trusted.status).toBe(201);
    const sign = (claims: Record<string, unknown>, exp = "10m") =>
      new SignJWT({ "kubernetes.io": { namespace: "shop", serviceaccount: { name: "orders" } }, ...claims })
        .setProtectedHeader({ alg: "RS256", kid: "cluster-key-1" })
        .setSubject("system:serviceaccount:shop:orders")
        .setIssuer(issuer)
        .setAudience("weft")
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(privateKey);
    const exchanged = await control.call("POST", "/v1/identity/token", { token: null, body: { audience: "weft-control", serviceAccountToken: await sign({}) } });
    expect(exchanged.status).toBe(200);
    expect(exchanged.json.id).toBe("spiffe://cluster.local/ns/shop/sa/orders");
    // Its service account names the service, so it may register the service's endpoints.
    const registered = await control.call("PUT", "/v1/services/orders/endpoints/pod-1", { token: exchanged.json.token, body: { address: "http://10.1.2.3:8080" } });
    expect(registered.status).toBe(201);

    const expired = await sign({}, "-1h");
    expect((await control.call("POST", "/v1/identity/token", { token: null, body: { audience: "orders", serviceAccountToken: expired } })).status).toBe(401);
    const foreign = await new SignJWT({}).setProtectedHeader({ alg: "RS256", kid: "cluster-key-1" }).setSubject("system:serviceaccount:shop:orders").setIssuer(issuer).setAudience("weft").setIssuedAt().setExpirationTime("10m").sign((await generateKeyPair("RS256")).privateKey);
    expect((await control.call("POST", "/v1/identity/token", { token: null, body: { audience: "orders", serviceAccountToken: foreign } })).status).toBe(401);
    expect((await control.call("POST", "/v1/identity/token", { token: null, body: { audience: "orders", serviceAccountToken: "not-a-jwt" } })).status).toBe(401);
    expect((await control.call("GET", "/v1/identity/clusters")).json.items[0]).toMatchObject({ name: "kind", issuer });
    expect((await control.call("PUT", "/v1/identity/clusters/bad", { body: { issuer, audience: "weft", jwks: { keys: [{ ...jwk, d: "secret" }] } } })).status).toBe(400);
  });

  it("treats a listed operator identity's control-plane token as admin", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const issuer = "https://ops-cluster.example";
    await control.call("PUT", "/v1/identity/clusters/ops", { body: { issuer, audience: "weft", jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: "ops-1", alg: "ES256" }] } } });
    const sa = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "ops-1" }).setSubject("system:serviceaccount:ops:operator").setIssuer(issuer).setAudience("weft").setIssuedAt().setExpirationTime("10m").sign(privateKey);
    const token = (await control.call("POST", "/v1/identity/token", { token: null, body: { audience: "weft-control", serviceAccountToken: sa } })).json.token;
    expect((await control.call("GET", "/v1/services", { token })).status).toBe(200);
    expect((await control.call("DELETE", "/v1/identity/clusters/ops")).status).toBe(200);
  });
});

describe("key rotation", () => {
  it("publishes the next key through the API as a new version, and revoking drops old tokens", async () => {
    const before = await control.call("GET", "/v1/snapshot");
    const oldToken = (await workerToken()).json.token;
    const rotated = await control.call("POST", "/v1/identity/rotate");
    expect(rotated.status).toBe(200);
    expect(rotated.json.keys).toHaveLength(before.json.jwks.keys.length + 1);
    const after = await control.call("GET", "/v1/snapshot");
    expect(after.json.version).toBe(before.json.version + 1);
    expect(after.json.jwks.keys).toHaveLength(rotated.json.keys.length);
    // The new key is published ahead: tokens are still signed by the old one.
    expect(decodeJwt((await workerToken()).json.token)).toBeDefined();
    expect((await control.call("GET", "/v1/snapshot", { token: oldToken })).status).toBe(200);

    const revoked = await control.call("POST", "/v1/identity/rotate", { body: { immediately: true, revokePrevious: true } });
    expect(revoked.json.keys).toHaveLength(1);
    expect((await control.call("GET", "/v1/snapshot", { token: oldToken })).status).toBe(401);
    expect((await control.call("GET", "/v1/snapshot", { token: (await workerToken()).json.token })).status).toBe(200);
    const audit = await control.call("GET", "/v1/audit?limit=1000");
    expect(audit.json.entries.filter((e: { action: string; actor: string }) => e.action === "rotate-keys" && e.actor === "admin")).toHaveLength(2);
    expect((await control.call("POST", "/v1/identity/rotate", { body: { immediately: "yes" } })).status).toBe(400);
  });

  it("runs the cron trigger's key maintenance without error", async () => {
    const worker = await control.mf.getWorker();
    const result = await worker.scheduled({ cron: "0 * * * *" });
    expect(result.outcome).toBe("ok");
  });
});
