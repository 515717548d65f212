import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { MeshError } from "../core/errors.ts";
import { createManualClock } from "../testing/index.ts";
import { DEFAULT_RENEW_RETRY_MS, createTokenSource } from "./token-source.ts";
import { T0, WEB, createPlane } from "./test-fixtures.ts";

const MINUTE = 60_000;

/** A source over a real issuer whose availability the test switches. */
function setup() {
  const clock = createManualClock(T0);
  const { issuer } = createPlane(clock.now);
  const calls: string[] = [];
  let down = false;
  let gate: Promise<void> | undefined;
  const background: Promise<unknown>[] = [];
  const source = createTokenSource({
    now: clock.now,
    fetchToken: async (audience) => {
      calls.push(audience);
      if (gate) await gate;
      if (down) throw new TypeError("fetch failed");
      return issuer.mint(WEB, audience);
    },
    background: (task) => background.push(task),
  });
  return {
    clock,
    source,
    calls,
    background,
    setDown: (value: boolean) => {
      down = value;
    },
    /** Holds every fetch until the returned function is called. */
    hold: () => {
      let release!: () => void;
      gate = new Promise<void>((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

describe("createTokenSource", () => {
  it("fetches a token per audience on first use and reuses it", async () => {
    const { source, calls } = setup();
    const orders = await source.token("orders");
    expect(decodeJwt(orders).aud).toBe("orders");
    expect(await source.token("orders")).toBe(orders);
    expect(decodeJwt(await source.token("payments")).aud).toBe("payments");
    expect(calls).toEqual(["orders", "payments"]);
  });

  it("shares one fetch among concurrent first calls", async () => {
    const { source, calls } = setup();
    const [a, b] = await Promise.all([source.token("orders"), source.token("orders")]);
    expect(a).toBe(b);
    expect(calls).toHaveLength(1);
  });

  it("renews in the background at two-thirds of the lifetime, answering with the held token meanwhile", async () => {
    const { source, clock, calls, background, hold } = setup();
    const first = await source.token("orders");
    await clock.advance(10 * MINUTE - 1000);
    expect(await source.token("orders")).toBe(first);
    expect(calls).toHaveLength(1);
    await clock.advance(1000);
    const release = hold();
    // Renewal is due and held up at the issuer: the call still gets the valid token at once.
    expect(await source.token("orders")).toBe(first);
    expect(calls).toHaveLength(2);
    expect(await source.token("orders")).toBe(first);
    expect(calls).toHaveLength(2);
    release();
    await Promise.all(background);
    const renewed = await source.token("orders");
    expect(renewed).not.toBe(first);
    expect(decodeJwt(renewed).iat).toBe((T0 + 10 * MINUTE) / 1000);
  });

  it("keeps using a valid token while the issuer is down, trying again every 10 s", async () => {
    const { source, clock, calls, background, setDown } = setup();
    const first = await source.token("orders");
    setDown(true);
    await clock.advance(10 * MINUTE);
    for (let i = 0; i < 10; i++) {
      expect(await source.token("orders")).toBe(first);
      await Promise.all(background.splice(0));
      await clock.advance(1000);
    }
    expect(calls).toHaveLength(2);
    await clock.advance(DEFAULT_RENEW_RETRY_MS);
    expect(await source.token("orders")).toBe(first);
    expect(calls).toHaveLength(3);
  });

  it("once the held token expires with the issuer down, fails with unauthenticated, without a fetch per call", async () => {
    const { source, clock, calls, background, setDown } = setup();
    await source.token("orders");
    setDown(true);
    await clock.advance(15 * MINUTE);
    await Promise.all(background.splice(0));
    await expect(source.token("orders")).rejects.toMatchObject({ code: "unauthenticated" });
    const after = calls.length;
    for (let i = 0; i < 5; i++) await expect(source.token("orders")).rejects.toBeInstanceOf(MeshError);
    expect(calls).toHaveLength(after);
    setDown(false);
    await clock.advance(DEFAULT_RENEW_RETRY_MS);
    expect(decodeJwt(await source.token("orders")).aud).toBe("orders");
  });

  it("counts the lifetime from when the token arrived, so a clock behind the issuer's does not renew early", async () => {
    const clock = createManualClock(T0);
    const { issuer } = createPlane(() => clock.now() + 5 * MINUTE);
    let calls = 0;
    const source = createTokenSource({ now: clock.now, fetchToken: (aud) => (calls++, issuer.mint(WEB, aud)) });
    await source.token("orders");
    expect(source.held()).toEqual([{ audience: "orders", expiresAt: T0 + 15 * MINUTE, renewAt: T0 + 10 * MINUTE }]);
    await clock.advance(9 * MINUTE);
    await source.token("orders");
    expect(calls).toBe(1);
  });

  it("never expires a token later than its exp, for a clock ahead of the issuer's", async () => {
    const clock = createManualClock(T0);
    const { issuer } = createPlane(() => clock.now() - 5 * MINUTE);
    const source = createTokenSource({ now: clock.now, fetchToken: (aud) => issuer.mint(WEB, aud) });
    await source.token("orders");
    expect(source.held()[0]!.expiresAt).toBe(T0 + 10 * MINUTE);
  });

  it("reports an answer that is not a JWT as a failure", async () => {
    const source = createTokenSource({ fetchToken: async () => "not a token" });
    await expect(source.token("orders")).rejects.toMatchObject({ code: "unauthenticated" });
  });
});
