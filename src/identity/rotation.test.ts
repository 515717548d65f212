/**
 * Rotation end to end on a manual clock: an issuer rotating on schedule, on demand and at
 * once, and verifiers whose bundles refresh on their own (one of them at every step, the worst
 * case for a dropped key), checked through two days: every token is accepted exactly while
 * it is valid, and refused from then on.
 */
import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { createManualClock } from "../testing/index.ts";
import { DEFAULT_CLOCK_SKEW_MS, DEFAULT_PUBLISH_AHEAD_MS, RETAIN_AFTER_MS, createIssuer } from "./issuer.ts";
import { memoryKeyStore } from "./keys.ts";
import { createTrustBundle } from "./trust-bundle.ts";
import { createVerifier } from "./verifier.ts";
import { ISSUER, T0, TRUST_DOMAIN, WEB } from "./test-fixtures.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

interface Minted {
  token: string;
  kid: string;
  /** Epoch ms of `exp`. */
  exp: number;
  mintedAt: number;
}

describe("key rotation", () => {
  it("accepts every token exactly while it is valid, through scheduled, on-demand and immediate rotations", async () => {
    const clock = createManualClock(T0);
    const issuer = createIssuer({ issuer: ISSUER, trustDomain: TRUST_DOMAIN, keys: memoryKeyStore(), now: clock.now });
    // Verifiers on the issuer's clock, 20 s behind it and 20 s ahead, refreshing on the bundle's
    // hint; and one 20 s behind that refreshes at every step, so sees a dropped key at once.
    const verifiers = [
      { offset: 0, eager: false },
      { offset: -20_000, eager: false },
      { offset: 20_000, eager: false },
      { offset: -20_000, eager: true },
    ].map(({ offset, eager }) => {
      const now = () => clock.now() + offset;
      const background: Promise<unknown>[] = [];
      const bundle = createTrustBundle({ now, fetchJwks: () => issuer.jwks(), background: (task) => background.push(task) });
      const verifier = createVerifier({ bundle, issuer: ISSUER, audience: "orders", trustDomain: TRUST_DOMAIN, now });
      return { offset, eager, now, bundle, background, verifier, refusedAfterExpiry: new Set<Minted>() };
    });
    for (const v of verifiers) await v.bundle.refresh();

    // The scheduled key signs at 24 h; an on-demand rotation at 30 h signs at 31 h; an
    // immediate one at 40 h signs at once. Steps: every 10 minutes, every minute within 15
    // minutes of a key starting or being dropped, and one second before each key starts.
    const onDemandAt = T0 + 30 * HOUR;
    const immediateAt = T0 + 40 * HOUR;
    const starts = [T0 + 24 * HOUR, onDemandAt + DEFAULT_PUBLISH_AHEAD_MS, immediateAt];
    const times = new Set<number>();
    for (let t = T0; t <= T0 + 48 * HOUR; t += 10 * MINUTE) times.add(t);
    for (const event of starts.flatMap((s) => [s, s + RETAIN_AFTER_MS])) for (let j = -15; j <= 15; j++) times.add(event + j * MINUTE);
    const lastMoments = new Set(starts.map((s) => s - 1000));
    for (const t of lastMoments) times.add(t);
    const schedule = [...times].sort((a, b) => a - b);

    const minted: Minted[] = [];
    const firstSeen = new Map<string, { at: number; inEveryBundle: boolean }>();
    for (const [step, at] of schedule.entries()) {
      await clock.advance(at - clock.now());
      if (at === onDemandAt) await issuer.rotate();
      if (at === immediateAt) await issuer.rotate({ immediately: true });
      minted.push(await mint(15 * MINUTE));
      if (step % 3 === 0 || lastMoments.has(at)) minted.push(await mint(HOUR));
      for (const m of minted) {
        if (!firstSeen.has(m.kid)) firstSeen.set(m.kid, { at: m.mintedAt, inEveryBundle: verifiers.every((v) => v.bundle.get(m.kid) !== undefined) });
      }
      for (const v of verifiers) {
        if (v.eager) await v.bundle.refresh();
        for (const m of minted) {
          // Checked from minting until it has been refused once after it stopped being valid.
          if (v.refusedAfterExpiry.has(m)) continue;
          const valid = v.now() < m.exp + DEFAULT_CLOCK_SKEW_MS;
          const outcome = await v.verifier.verify(m.token).then(
            () => true,
            () => false,
          );
          if (outcome !== valid) {
            throw new Error(`at +${(at - T0) / 1000} s (verifier offset ${v.offset} ms), a token minted at +${(m.mintedAt - T0) / 1000} s was ${outcome ? "accepted" : "refused"}`);
          }
          if (!valid) v.refusedAfterExpiry.add(m);
        }
        await Promise.all(v.background.splice(0));
      }
    }

    // Four keys: the first, the scheduled one, the on-demand one, the immediate one.
    expect(firstSeen.size).toBe(4);
    const [first, scheduled, onDemand, immediate] = [...firstSeen.entries()].sort((a, b) => a[1].at - b[1].at);
    expect([scheduled![1].at, onDemand![1].at, immediate![1].at]).toEqual(starts);
    // Published before it signed: every verifier had the scheduled and on-demand keys, from its
    // own refreshes, before the first token they signed arrived.
    expect(scheduled![1].inEveryBundle).toBe(true);
    expect(onDemand![1].inEveryBundle).toBe(true);
    // Keys leave the bundle once their last token is over; the signing one stays.
    const published = (await issuer.jwks()).keys.map((k) => k.kid);
    expect(published).not.toContain(first![0]);
    expect(published).not.toContain(scheduled![0]);
    expect(published).toContain(immediate![0]);
    for (const v of verifiers) expect(v.bundle.get(first![0])).toBeUndefined();

    async function mint(lifetime: number): Promise<Minted> {
      const token = await issuer.mint(WEB, "orders", { lifetime });
      return { token, kid: decodeProtectedHeader(token).kid!, exp: decodeJwt(token).exp! * 1000, mintedAt: clock.now() };
    }
  });
});
