import { describe, expect, it } from "vitest";
import { ERROR_CODES, MeshError, errorResponse, statusFor, toMeshError } from "./errors.ts";

describe("errorResponse", () => {
  it.each(ERROR_CODES)("answers %s with its status, weft-error and a JSON body", async (code) => {
    const response = errorResponse(new MeshError(code, "why it failed"));
    expect(response.status).toBe(statusFor(code));
    expect(response.headers.get("weft-error")).toBe(code);
    expect(await response.json()).toEqual({ error: { code, message: "why it failed" } });
  });

  it("follows SPEC.md section 2's status table", () => {
    expect(ERROR_CODES.map((c) => [c, statusFor(c)])).toEqual([
      ["bad-request", 400],
      ["unauthenticated", 401],
      ["forbidden", 403],
      ["unknown-service", 404],
      ["precondition-failed", 412],
      ["payload-too-large", 413],
      ["rate-limited", 429],
      ["upstream-unreachable", 502],
      ["no-endpoints", 503],
      ["overloaded", 503],
      ["deadline-exceeded", 504],
      ["misconfigured", 500],
      ["header-too-large", 431],
      ["fault-injected", 503],
    ]);
  });

  it("sets retry-after in whole seconds, rounded up", () => {
    const response = errorResponse(new MeshError("rate-limited", "slow down", { retryAfter: 0.2 }));
    expect(response.headers.get("retry-after")).toBe("1");
  });

  it("adds validation issues for bad-request", async () => {
    const issues = [{ path: ["services", 0, "name"], message: "must be a DNS label" }];
    const body = (await errorResponse(new MeshError("bad-request", "invalid", { issues })).json()) as { error: { issues: unknown } };
    expect(body.error.issues).toEqual(issues);
  });

  it("gives gRPC callers grpc-status instead of a JSON body", async () => {
    const request = new Request("http://x/pkg.Svc/Method", { method: "POST", headers: { "content-type": "application/grpc+proto" } });
    const response = errorResponse(new MeshError("deadline-exceeded", "too slow"), request);
    expect(response.status).toBe(200);
    expect(response.headers.get("grpc-status")).toBe("4");
    expect(response.headers.get("weft-error")).toBe("deadline-exceeded");
    expect(await response.text()).toBe("");
  });
});

describe("toMeshError", () => {
  it("maps aborts to deadline-exceeded and connection failures to upstream-unreachable", () => {
    expect(toMeshError(new DOMException("x", "AbortError")).code).toBe("deadline-exceeded");
    expect(toMeshError(new DOMException("x", "TimeoutError")).code).toBe("deadline-exceeded");
    expect(toMeshError(new TypeError("fetch failed")).code).toBe("upstream-unreachable");
    const original = new MeshError("forbidden", "no");
    expect(toMeshError(original)).toBe(original);
  });
});
