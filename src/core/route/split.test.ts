import { describe, expect, it } from "vitest";
import { seededRandom, sequenceRandom } from "../../testing/index.ts";
import { MeshError } from "../errors.ts";
import { split } from "./index.ts";

const counts = (pick: () => string, n: number) => {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const service = pick();
    seen[service] = (seen[service] ?? 0) + 1;
  }
  return seen;
};

describe("split", () => {
  it("holds a 90/10 split within half a percent over 100,000 seeded picks", () => {
    const n = 100_000;
    const seen = counts(split([{ service: "stable", weight: 90 }, { service: "canary", weight: 10 }], { random: seededRandom(7) }), n);
    expect(Math.abs(seen.stable! / n - 0.9)).toBeLessThan(0.005);
    expect(Math.abs(seen.canary! / n - 0.1)).toBeLessThan(0.005);
  });

  it("gives each backend weight / total of the traffic, whatever the weights sum to", () => {
    const n = 100_000;
    const seen = counts(split([{ service: "a", weight: 1 }, { service: "b", weight: 2 }, { service: "c", weight: 7 }], { random: seededRandom(42) }), n);
    expect(Math.abs(seen.a! / n - 0.1)).toBeLessThan(0.005);
    expect(Math.abs(seen.b! / n - 0.2)).toBeLessThan(0.005);
    expect(Math.abs(seen.c! / n - 0.7)).toBeLessThan(0.005);
  });

  it("maps the unit interval onto the backends exactly at the weight boundaries", () => {
    const pick = split([{ service: "stable", weight: 90 }, { service: "canary", weight: 10 }], { random: sequenceRandom([0, 0.8999, 0.9, 0.99999]) });
    expect([pick(), pick(), pick(), pick()]).toEqual(["stable", "stable", "canary", "canary"]);
  });

  it("never picks a backend of weight 0", () => {
    const draws = [0, 0.25, 0.4999, 0.5, 0.75, 0.99999];
    const pick = split(
      [
        { service: "off-1", weight: 0 },
        { service: "a", weight: 1 },
        { service: "off-2", weight: 0 },
        { service: "b", weight: 1 },
        { service: "off-3", weight: 0 },
      ],
      { random: sequenceRandom(draws) },
    );
    expect(draws.map(() => pick())).toEqual(["a", "a", "a", "b", "b", "b"]);
  });

  it("sends everything to the one backend with weight, without drawing", () => {
    let draws = 0;
    const pick = split([{ service: "off", weight: 0 }, { service: "only", weight: 5 }], { random: () => (draws++, 0) });
    expect([pick(), pick()]).toEqual(["only", "only"]);
    expect(draws).toBe(0);
  });

  it("refuses to pick with no-endpoints when every weight is 0", () => {
    const pick = split([{ service: "a", weight: 0 }, { service: "b", weight: 0 }], { route: "shop" });
    expect(pick).toThrow(MeshError);
    expect(pick).toThrow(/route shop sends no traffic/);
    try {
      pick();
    } catch (error) {
      expect((error as MeshError).code).toBe("no-endpoints");
    }
  });
});
