import { describe, expect, it } from "vitest";
import { seededRandom } from "../../testing/index.ts";
import { budgetOf, formatGrpcTimeout, parseGrpcTimeout, parseTimeoutMs } from "./index.ts";

const grpcRequest = (headers: Record<string, string>) =>
  new Request("http://orders/pkg.Orders/Get", { method: "POST", headers: { "content-type": "application/grpc+proto", ...headers } });

describe("parseTimeoutMs", () => {
  it("reads whole milliseconds, including zero", () => {
    expect(parseTimeoutMs("250")).toEqual({ ok: true, ms: 250 });
    expect(parseTimeoutMs("0")).toEqual({ ok: true, ms: 0 });
  });

  it("returns undefined when the header is absent", () => {
    expect(parseTimeoutMs(null)).toBeUndefined();
  });

  it.each(["", "-5", "1.5", "10ms", " 10", "1e3", "abc", "1234567890123456"])("refuses %j without throwing", (value) => {
    expect(parseTimeoutMs(value)).toMatchObject({ ok: false });
  });
});

describe("parseGrpcTimeout", () => {
  it.each([
    ["1H", 3_600_000],
    ["2M", 120_000],
    ["1S", 1_000],
    ["100m", 100],
    ["500u", 0.5],
    ["3000000n", 3],
    ["99999999m", 99_999_999],
    ["0n", 0],
  ])("reads %s as %d ms", (value, ms) => {
    const result = parseGrpcTimeout(value);
    expect(result?.ok).toBe(true);
    if (result?.ok) expect(result.ms).toBeCloseTo(ms, 9);
  });

  it("returns undefined when the header is absent", () => {
    expect(parseGrpcTimeout(null)).toBeUndefined();
  });

  it.each(["", "100", "123456789S", "1s", "1 S", "-1S", "1.5S", "S"])("refuses %j without throwing", (value) => {
    expect(parseGrpcTimeout(value)).toMatchObject({ ok: false });
  });
});

describe("formatGrpcTimeout", () => {
  it.each([
    [0.5, "500000n"],
    [1, "1000000n"],
    [99.999999, "99999999n"],
    [100, "100000u"],
    [1_000, "1000000u"],
    [100_000, "100000m"],
    [99_999_999, "99999999m"],
    [100_000_000, "100000S"],
    [0.3, "300000n"],
  ])("writes %d ms as %s, the finest unit that fits in 8 digits", (ms, value) => {
    expect(formatGrpcTimeout(ms)).toBe(value);
  });

  it("rounds up rather than promising less time than there is", () => {
    expect(formatGrpcTimeout(0.0000015)).toBe("2n");
    expect(formatGrpcTimeout(99_999_999.5)).toBe("100000S");
    expect(formatGrpcTimeout(1e-9)).toBe("1n");
  });

  it("writes a spent budget as 0n", () => {
    expect(formatGrpcTimeout(0)).toBe("0n");
    expect(formatGrpcTimeout(-20)).toBe("0n");
  });

  it("caps a budget too large for any unit at 99999999H", () => {
    expect(formatGrpcTimeout(1e20)).toBe("99999999H");
  });

  it("round-trips any budget to at least itself (to the nanosecond) and at most 0.001% more", () => {
    const random = seededRandom(7);
    for (let i = 0; i < 2_000; i++) {
      const ms = 10 ** (random() * 12 - 3);
      const parsed = parseGrpcTimeout(formatGrpcTimeout(ms));
      expect(parsed?.ok).toBe(true);
      if (!parsed?.ok) continue;
      expect(parsed.ms).toBeGreaterThanOrEqual(ms - 1e-9);
      expect(parsed.ms).toBeLessThanOrEqual(ms * (1 + 1e-5) + 1e-6);
    }
  });
});

describe("budgetOf", () => {
  it("reads weft-timeout-ms", () => {
    expect(budgetOf(new Request("http://x/", { headers: { "weft-timeout-ms": "300" } }))).toBe(300);
  });

  it("is undefined without a budget header", () => {
    expect(budgetOf(new Request("http://x/"))).toBeUndefined();
  });

  it("ignores a malformed header as if it were absent", () => {
    expect(budgetOf(new Request("http://x/", { headers: { "weft-timeout-ms": "soon" } }))).toBeUndefined();
    expect(budgetOf(grpcRequest({ "grpc-timeout": "1s", "weft-timeout-ms": "80" }))).toBe(80);
  });

  it("honours grpc-timeout for gRPC requests, taking the smaller of the two", () => {
    expect(budgetOf(grpcRequest({ "grpc-timeout": "2S" }))).toBe(2_000);
    expect(budgetOf(grpcRequest({ "grpc-timeout": "2S", "weft-timeout-ms": "500" }))).toBe(500);
    expect(budgetOf(grpcRequest({ "grpc-timeout": "200m", "weft-timeout-ms": "500" }))).toBe(200);
  });

  it("ignores grpc-timeout on requests that are not gRPC", () => {
    expect(budgetOf(new Request("http://x/", { headers: { "grpc-timeout": "2S" } }))).toBeUndefined();
  });
});
