import { exportJWK, generateKeyPair, generateSecret } from "jose";
import { describe, expect, it } from "vitest";
import { createManualClock } from "../testing/index.ts";
import { DEFAULT_BUNDLE_COOLDOWN_MS, createTrustBundle } from "./trust-bundle.ts";
import { T0 } from "./test-fixtures.ts";

async function ecKey(kid: string, extra: Record<string, unknown> = {}) {
  const { publicKey } = await generateKeyPair("ES256", { extractable: true });
  return { ...(await exportJWK(publicKey)), kid, use: "jwt-svid", alg: "ES256", ...extra };
}

function setup(documents: () => unknown) {
  const clock = createManualClock(T0);
  let fetches = 0;
  const background: Promise<unknown>[] = [];
  const bundle = createTrustBundle({
    now: clock.now,
    fetchJwks: async () => {
      fetches++;
      const doc = documents();
      if (doc instanceof Error) throw doc;
      return doc;
    },
    background: (task) => background.push(task),
  });
  return { clock, bundle, fetches: () => fetches, background };
}

describe("createTrustBundle", () => {
  it("fetches nothing until a key is first resolved, then answers lookups without waiting", async () => {
    const a = await ecKey("a");
    const { bundle, fetches } = setup(() => ({ keys: [a] }));
    expect(fetches()).toBe(0);
    expect(bundle.get("a")).toBeUndefined();
    expect((await bundle.resolve("a"))?.alg).toBe("ES256");
    expect(bundle.get("a")?.key.type).toBe("public");
    expect(fetches()).toBe(1);
  });

  it("refreshes in the background once the refresh hint has passed, answering from what it has meanwhile", async () => {
    const a = await ecKey("a");
    const b = await ecKey("b");
    let doc: unknown = { keys: [a], spiffe_refresh_hint: 60 };
    const { bundle, clock, fetches, background } = setup(() => doc);
    await bundle.resolve("a");
    doc = { keys: [a, b], spiffe_refresh_hint: 60 };
    await clock.advance(59_000);
    bundle.get("a");
    expect(fetches()).toBe(1);
    await clock.advance(1000);
    expect(bundle.get("a")).toBeDefined();
    expect(bundle.get("b")).toBeUndefined();
    await Promise.all(background);
    expect(fetches()).toBe(2);
    expect(bundle.get("b")).toBeDefined();
  });

  it("keeps every key while the control plane is unreachable, retrying after the cooldown", async () => {
    const a = await ecKey("a");
    let doc: unknown = { keys: [a] };
    const { bundle, clock, fetches, background } = setup(() => doc);
    await bundle.resolve("a");
    doc = new TypeError("fetch failed");
    for (let i = 0; i < 12; i++) {
      await clock.advance(5 * 60_000);
      expect(bundle.get("a")).toBeDefined();
      await Promise.all(background);
    }
    expect(bundle.status()).toMatchObject({ lastError: "TypeError", kids: ["a"] });
    const before = fetches();
    await clock.advance(DEFAULT_BUNDLE_COOLDOWN_MS - 1000);
    bundle.get("a");
    await Promise.all(background);
    expect(fetches()).toBe(before);
  });

  it("fetches at once for an unknown kid, but at most once per cooldown however many unknown kids arrive", async () => {
    const a = await ecKey("a");
    const b = await ecKey("b");
    let doc: unknown = { keys: [a] };
    const { bundle, clock, fetches } = setup(() => doc);
    await bundle.resolve("a");
    await clock.advance(DEFAULT_BUNDLE_COOLDOWN_MS);
    expect(await bundle.resolve("made-up-1")).toBeUndefined();
    expect(fetches()).toBe(2);
    for (let i = 0; i < 100; i++) expect(await bundle.resolve(`made-up-${i}`)).toBeUndefined();
    expect(fetches()).toBe(2);
    doc = { keys: [a, b] };
    expect(await bundle.resolve("b")).toBeUndefined();
    await clock.advance(DEFAULT_BUNDLE_COOLDOWN_MS);
    expect(await bundle.resolve("b")).toBeDefined();
    expect(fetches()).toBe(3);
  });

  it("shares one fetch among concurrent lookups", async () => {
    const a = await ecKey("a");
    const { bundle, fetches } = setup(() => ({ keys: [a] }));
    await Promise.all([bundle.resolve("a"), bundle.resolve("a"), bundle.resolve("x")]);
    expect(fetches()).toBe(1);
  });

  it("takes only jwt-svid keys with a kid, public and of an allowed algorithm", async () => {
    const good = await ecKey("good");
    const x509 = await ecKey("x509", { use: "x509-svid" });
    const noUse = await ecKey("no-use", { use: undefined });
    const noKid = { ...(await ecKey("")), kid: undefined };
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const priv = { ...(await exportJWK(privateKey)), kid: "private", use: "jwt-svid", alg: "ES256" };
    const hmac = { ...(await exportJWK(await generateSecret("HS256", { extractable: true }))), kid: "hmac", use: "jwt-svid", alg: "HS256" };
    const eddsa = { ...(await exportJWK((await generateKeyPair("EdDSA", { extractable: true })).publicKey)), kid: "ed", use: "jwt-svid", alg: "EdDSA" };
    const { bundle } = setup(() => ({ keys: [good, x509, noUse, noKid, priv, hmac, eddsa, "junk", null] }));
    await bundle.refresh();
    expect(bundle.status().kids).toEqual(["good"]);
  });

  it("takes the algorithm of a key without alg from its curve", async () => {
    const bare = await ecKey("p256", { alg: undefined });
    const { bundle } = setup(() => ({ keys: [bare] }));
    expect((await bundle.resolve("p256"))?.alg).toBe("ES256");
  });

  it("keeps the same CryptoKey for a kid whose key did not change, and a new one for a kid whose key did", async () => {
    const a = await ecKey("a");
    let doc: unknown = { keys: [a] };
    const { bundle } = setup(() => doc);
    await bundle.refresh();
    const first = bundle.get("a")!.key;
    await bundle.refresh();
    expect(bundle.get("a")!.key).toBe(first);
    doc = { keys: [await ecKey("a")] };
    await bundle.refresh();
    expect(bundle.get("a")!.key).not.toBe(first);
  });

  it("treats a document that is not a JWK Set as a failed fetch, and an empty key list as all keys revoked", async () => {
    const a = await ecKey("a");
    let doc: unknown = { keys: [a] };
    const { bundle } = setup(() => doc);
    await bundle.refresh();
    doc = { nope: true };
    await expect(bundle.refresh()).rejects.toThrow(TypeError);
    expect(bundle.get("a")).toBeDefined();
    doc = { keys: [] };
    await bundle.refresh();
    expect(bundle.get("a")).toBeUndefined();
  });

  it("takes a bundle pushed with a config snapshot", async () => {
    const a = await ecKey("a");
    const { bundle, fetches } = setup(() => new TypeError("unused"));
    await bundle.set({ keys: [a], spiffe_sequence: 7 });
    expect(bundle.get("a")).toBeDefined();
    expect(bundle.status().sequence).toBe(7);
    expect(fetches()).toBe(0);
  });
});
