import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliFixture } from "./helpers.ts";
import { startFixture } from "./helpers.ts";

let t: CliFixture;
let secret: string;
beforeAll(async () => {
  t = await startFixture();
  const issued = await t.admin("PUT", "/v1/identity/workers/orders");
  secret = (issued.body as { secret: string }).secret;
});
afterAll(async () => {
  await t?.control.stop();
});

const field = (stdout: string, name: string) => new RegExp(`^${name}:\\s+(.*)$`, "m").exec(stdout)?.[1];

async function mint(audience: string): Promise<string> {
  const response = await fetch(`${t.control.url}/v1/identity/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ audience, worker: { service: "orders", secret } }),
  });
  return ((await response.json()) as { token: string }).token;
}

describe("weft identity against the control worker", () => {
  it("shows the identity a service's router gets, verified against the trust bundle, never the secret or the token", async () => {
    const result = await t.weft(["identity", "--service", "orders", "--audience", "users"], { env: { WEFT_BOOTSTRAP_SECRET: secret } });
    expect(result.code).toBe(0);
    expect(field(result.stdout, "Subject")).toBe("spiffe://cluster.local/worker/orders");
    expect(field(result.stdout, "Audience")).toBe("users");
    expect(field(result.stdout, "Issuer")).toBe(t.control.url);
    expect(field(result.stdout, "Expires")).toMatch(/^\d{4}-\d\d-\d\dT.*Z \(in 1[45]m\d*s?; lifetime 15m\)$/);
    const { keys } = (await (await fetch(`${t.control.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(field(result.stdout, "Key")).toBe(`${keys[0]!.kid} (ES256)`);
    expect(field(result.stdout, "Signature")).toBe(`✓ signature verified with key ${keys[0]!.kid} (trust bundle of ${t.control.url})`);
    expect(result.stdout + result.stderr).not.toContain(secret);
    expect(result.stdout + result.stderr).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });

  it("decodes a token from standard input, and fails (exit 1) one whose signature was tampered with", async () => {
    const token = await mint("weft-control");
    const good = await t.weft(["identity", "--token", "-", "-o", "json"], { stdin: token });
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ subject: "spiffe://cluster.local/worker/orders", audience: "weft-control", algorithm: "ES256", expired: false, lifetimeSeconds: 900, verification: { status: "verified" } });
    expect(good.stdout).not.toContain(token.split(".")[2]!);

    const [header, claims, signature] = token.split(".") as [string, string, string];
    const tampered = `${header}.${claims}.${signature.startsWith("A") ? "B" : "A"}${signature.slice(1)}`;
    const bad = await t.weft(["identity", "--token", tampered]);
    expect(bad.code).toBe(1);
    expect(field(bad.stdout, "Signature")).toMatch(/^✗ the signature does not verify with key /);
    expect(bad.stdout + bad.stderr).not.toContain(signature.slice(1));
    const offline = await t.weft(["identity", "--token", tampered, "--offline"]);
    expect([offline.code, field(offline.stdout, "Signature")]).toEqual([0, "? not checked (--offline)"]);
  });

  it("refuses a service whose bootstrap secret it cannot find, and a wrong secret", async () => {
    const none = await t.weft(["identity", "--service", "orders"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('weft: no bootstrap secret for "orders"');
    const wrong = await t.weft(["identity", "--service", "orders"], { env: { WEFT_BOOTSTRAP_SECRET: "not-the-secret" } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("(unauthenticated)");
    expect(wrong.stderr).not.toContain("not-the-secret");
  });
});
