import { describe, expect, it } from "vitest";
import { createManualClock } from "../../testing/index.ts";
import { timeout } from "../deadline/index.ts";
import { MeshError } from "../errors.ts";
import { classify as classifyEnded, type RetryOn } from "./index.ts";

/** The condition a response or a thrown error meets, as the layer reports either. */
const classify = (on: readonly RetryOn[], outcome: unknown) => classifyEnded(on, outcome instanceof Response ? { response: outcome } : { error: outcome });

const ALL: RetryOn[] = ["5xx", "gateway-error", "reset", "429", "deadline-per-try"];
const grpc = (status: number) => new Response(null, { status: 200, headers: { "content-type": "application/grpc", "grpc-status": String(status) } });

async function perTryTimeoutError(): Promise<unknown> {
  const clock = createManualClock();
  const fetch = timeout(10, { clock })(() => new Promise<Response>(() => {}));
  return clock.run(fetch(new Request("http://x/"))).catch((e: unknown) => e);
}

describe("classify", () => {
  it.each([
    [500, ["5xx"], "5xx"],
    [500, ["gateway-error"], undefined],
    [503, ["gateway-error"], "gateway-error"],
    [502, ["5xx"], "5xx"],
    [504, ["gateway-error", "5xx"], "gateway-error"],
    [429, ["429"], "429"],
    [429, ["5xx"], undefined],
    [404, ALL, undefined],
    [200, ALL, undefined],
  ] as [number, RetryOn[], RetryOn | undefined][])("classifies a %d response under %j as %s", (status, on, expected) => {
    expect(classify(on, new Response(null, { status }))).toBe(expected);
  });

  it("reads gRPC errors from trailers-only responses", () => {
    expect(classify(["gateway-error"], grpc(14))).toBe("gateway-error");
    expect(classify(["5xx"], grpc(13))).toBe("5xx");
    expect(classify(["gateway-error"], grpc(13))).toBeUndefined();
    expect(classify(["429"], grpc(8))).toBe("429");
    expect(classify(ALL, grpc(0))).toBeUndefined();
    expect(classify(ALL, grpc(5))).toBeUndefined();
  });

  it("counts a failed connection as reset, and under 5xx and gateway-error as Envoy does", () => {
    const refused = new TypeError("fetch failed");
    const unreachable = new MeshError("upstream-unreachable", "refused");
    expect(classify(["reset"], refused)).toBe("reset");
    expect(classify(["reset"], unreachable)).toBe("reset");
    expect(classify(["5xx"], refused)).toBe("5xx");
    expect(classify(["gateway-error"], unreachable)).toBe("gateway-error");
    expect(classify(["429", "deadline-per-try"], refused)).toBeUndefined();
  });

  it("retries a per-try timeout only under deadline-per-try", async () => {
    const error = await perTryTimeoutError();
    expect(classify(["deadline-per-try"], error)).toBe("deadline-per-try");
    expect(classify(["5xx", "gateway-error", "reset"], error)).toBeUndefined();
  });

  it("treats the mesh's other errors and the request's own deadline as final", () => {
    for (const code of ["no-endpoints", "overloaded", "deadline-exceeded", "forbidden"] as const) {
      expect(classify(ALL, new MeshError(code, "no"))).toBeUndefined();
    }
    expect(classify(ALL, new DOMException("aborted", "AbortError"))).toBeUndefined();
  });
});
