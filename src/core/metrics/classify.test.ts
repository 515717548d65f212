import { describe, expect, it } from "vitest";
import { MeshError, errorResponse } from "../errors.ts";
import { GRPC_FAILURE_CODES, classify as classifyEnded } from "./classify.ts";

/** Classifies a response or a thrown error, as the layers report either. */
const classify = (outcome: unknown, request?: Request) => classifyEnded(outcome instanceof Response ? { response: outcome } : { error: outcome }, request);

const http = new Request("http://orders/api/items");
const grpc = new Request("http://orders/pkg.Orders/List", { method: "POST", headers: { "content-type": "application/grpc+proto" } });

function grpcAnswer(status: number): Response {
  return new Response(null, { status: 200, headers: { "content-type": "application/grpc", "grpc-status": String(status) } });
}

describe("classify", () => {
  it("counts 2xx, 3xx and 4xx answers of an app as successes and 5xx as failures", () => {
    for (const status of [200, 204, 301, 400, 404, 429, 499]) {
      expect(classify(new Response(null, { status }), http)).toEqual({ status_code: status, classification: "success", error: "" });
    }
    for (const status of [500, 502, 503, 504]) {
      expect(classify(new Response(null, { status }), http)).toEqual({ status_code: status, classification: "failure", error: "" });
    }
  });

  it("counts any response the mesh made as a failure with its code, even a 4xx", () => {
    expect(classify(errorResponse(new MeshError("forbidden", "no")), http)).toEqual({ status_code: 403, classification: "failure", error: "forbidden" });
    expect(classify(errorResponse(new MeshError("rate-limited", "slow")), http)).toEqual({ status_code: 429, classification: "failure", error: "rate-limited" });
  });

  it("counts a mesh-made gRPC answer as a failure though its HTTP status is 200", () => {
    expect(classify(errorResponse(new MeshError("no-endpoints", "none"), grpc), grpc)).toEqual({ status_code: 200, classification: "failure", error: "no-endpoints" });
  });

  it("keeps the failure but drops an unknown weft-error value from the label", () => {
    const response = new Response(null, { status: 502, headers: { "weft-error": "made-up" } });
    expect(classify(response, http)).toEqual({ status_code: 502, classification: "failure", error: "" });
  });

  it("judges gRPC by grpc-status: only Linkerd's failure codes are failures", () => {
    expect([...GRPC_FAILURE_CODES].sort((a, b) => a - b)).toEqual([2, 4, 13, 14, 15]);
    for (let code = 0; code <= 16; code++) {
      const expected = [2, 4, 13, 14, 15].includes(code) ? "failure" : "success";
      expect(classify(grpcAnswer(code), grpc).classification, `grpc-status ${code}`).toBe(expected);
    }
  });

  it("counts a gRPC 200 without grpc-status in its headers as a success (the status is in trailers)", () => {
    const response = new Response("body", { status: 200, headers: { "content-type": "application/grpc" } });
    expect(classify(response, grpc)).toEqual({ status_code: 200, classification: "success", error: "" });
  });

  it("judges a gRPC call answered with a bare HTTP error by the gRPC code a client maps it to", () => {
    expect(classify(new Response(null, { status: 503 }), grpc).classification).toBe("failure"); // UNAVAILABLE
    expect(classify(new Response(null, { status: 400 }), grpc).classification).toBe("failure"); // INTERNAL
    expect(classify(new Response(null, { status: 302 }), grpc).classification).toBe("failure"); // UNKNOWN
    expect(classify(new Response(null, { status: 404 }), grpc).classification).toBe("success"); // UNIMPLEMENTED
    expect(classify(new Response(null, { status: 403 }), grpc).classification).toBe("success"); // PERMISSION_DENIED
  });

  it("counts thrown errors as failures with the MeshError code and the status the host will answer", () => {
    expect(classify(new MeshError("deadline-exceeded", "late"), http)).toEqual({ status_code: 504, classification: "failure", error: "deadline-exceeded" });
    expect(classify(new TypeError("fetch failed"), http)).toEqual({ status_code: 502, classification: "failure", error: "upstream-unreachable" });
    expect(classify(new DOMException("gone", "AbortError"), http)).toEqual({ status_code: 504, classification: "failure", error: "deadline-exceeded" });
    expect(classify(new MeshError("overloaded", "busy"), grpc)).toEqual({ status_code: 200, classification: "failure", error: "overloaded" });
  });
});
