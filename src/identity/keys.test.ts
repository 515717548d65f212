import { calculateJwkThumbprint } from "jose";
import { describe, expect, it } from "vitest";
import type { KeyRecord, KeyState, RotationPolicy } from "./keys.ts";
import { generateSigningKey, memoryKeyStore, planRotation, signingKeyOf } from "./keys.ts";

const H = 60 * 60_000;
const policy: RotationPolicy = { rotateEvery: 24 * H, publishAhead: H, retainAfter: H + 60_000 };
const key = (kid: string, activeFrom: number): KeyRecord => ({ kid, alg: "ES256", privateJwk: {}, publicJwk: {}, createdAt: activeFrom, activeFrom });
const state = (...keys: KeyRecord[]): KeyState => ({ sequence: keys.length, keys });

describe("generateSigningKey", () => {
  it("makes a P-256 key whose kid is its RFC 7638 thumbprint and whose public half holds no private member", async () => {
    const record = await generateSigningKey(1000, 2000);
    expect(record.publicJwk).toMatchObject({ kty: "EC", crv: "P-256", use: "jwt-svid", alg: "ES256", kid: record.kid });
    expect(record.publicJwk).not.toHaveProperty("d");
    expect(record.privateJwk).toHaveProperty("d");
    expect(await calculateJwkThumbprint(record.publicJwk)).toBe(record.kid);
    expect(record).toMatchObject({ createdAt: 1000, activeFrom: 2000 });
    expect(JSON.parse(JSON.stringify(record))).toEqual(record);
  });
});

describe("memoryKeyStore", () => {
  it("keeps a copy, so changing what was put or got does not change what is stored", async () => {
    const store = memoryKeyStore();
    expect(await store.get()).toBeUndefined();
    const s = state(key("a", 0));
    await store.put(s);
    s.keys.length = 0;
    const got = (await store.get())!;
    expect(got.keys.map((k) => k.kid)).toEqual(["a"]);
    got.keys.length = 0;
    expect((await store.get())!.keys).toHaveLength(1);
  });
});

describe("signingKeyOf", () => {
  it("picks the latest key whose time has come, not one still waiting", () => {
    const s = state(key("old", 0), key("cur", 10), key("next", 20));
    expect(signingKeyOf(s, 15)!.kid).toBe("cur");
    expect(signingKeyOf(s, 20)!.kid).toBe("next");
    expect(signingKeyOf(s, 5)!.kid).toBe("old");
  });
});

describe("planRotation", () => {
  it("asks for a key that signs at once when there is none", () => {
    expect(planRotation(state(), 500, policy)).toEqual({ addActiveFrom: 500, drop: [], nextCheckAt: 500 });
  });

  it("does nothing until the next key must be published, and says when that is", () => {
    const plan = planRotation(state(key("a", 0)), 10 * H, policy);
    expect(plan).toEqual({ drop: [], nextCheckAt: 23 * H });
  });

  it("publishes the next key publishAhead before it signs", () => {
    expect(planRotation(state(key("a", 0)), 23 * H, policy)).toMatchObject({ addActiveFrom: 24 * H, drop: [] });
  });

  it("never lets a late key sign sooner than publishAhead after it is published", () => {
    expect(planRotation(state(key("a", 0)), 30 * H, policy)).toMatchObject({ addActiveFrom: 31 * H });
  });

  it("adds nothing while a key is waiting to sign, and looks again when it starts", () => {
    expect(planRotation(state(key("a", 0), key("b", 24 * H)), 23.5 * H, policy)).toEqual({ drop: [], nextCheckAt: 24 * H });
  });

  it("keeps a retired key until retainAfter past its successor's start, then drops it", () => {
    const s = state(key("a", 0), key("b", 24 * H));
    expect(planRotation(s, 24 * H + H, policy)).toMatchObject({ drop: [], nextCheckAt: 24 * H + policy.retainAfter });
    expect(planRotation(s, 24 * H + policy.retainAfter, policy).drop).toEqual(["a"]);
  });
});
