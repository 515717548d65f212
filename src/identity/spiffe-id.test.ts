import { describe, expect, it } from "vitest";
import { isTrustDomain, parseSpiffeId, serviceAccountId, workerId } from "./spiffe-id.ts";

describe("parseSpiffeId", () => {
  it("parses the two shapes Weft issues", () => {
    expect(parseSpiffeId("spiffe://weft.local/ns/shop/sa/web")).toEqual({ trustDomain: "weft.local", path: "/ns/shop/sa/web" });
    expect(parseSpiffeId("spiffe://weft.local/worker/orders")).toEqual({ trustDomain: "weft.local", path: "/worker/orders" });
  });

  it("accepts a trust domain with no path", () => {
    expect(parseSpiffeId("spiffe://example.org")).toEqual({ trustDomain: "example.org", path: "" });
  });

  it.each([
    ["another scheme", "https://weft.local/ns/a/sa/b"],
    ["an upper-case scheme", "SPIFFE://weft.local/ns/a/sa/b"],
    ["an empty trust domain", "spiffe:///ns/a/sa/b"],
    ["an upper-case trust domain", "spiffe://Weft.local/ns/a"],
    ["a port", "spiffe://weft.local:8443/ns/a"],
    ["userinfo", "spiffe://user@weft.local/ns/a"],
    ["percent-encoding", "spiffe://weft.local/ns/a%2Fb"],
    ["a query", "spiffe://weft.local/ns/a?x=1"],
    ["a fragment", "spiffe://weft.local/ns/a#x"],
    ["an empty segment", "spiffe://weft.local/ns//a"],
    ["a dot segment", "spiffe://weft.local/ns/./a"],
    ["a dot-dot segment", "spiffe://weft.local/ns/../a"],
    ["a trailing slash", "spiffe://weft.local/ns/a/"],
    ["a lone slash", "spiffe://weft.local/"],
    ["more than 2048 bytes", `spiffe://weft.local/${"a".repeat(2048)}`],
    ["a trust domain over 255 bytes", `spiffe://${"a".repeat(256)}/x`],
    ["something that is not a string", 42],
  ])("refuses %s", (_, id) => {
    expect(parseSpiffeId(id)).toBeUndefined();
  });
});

describe("ID builders", () => {
  it("make Kubernetes and worker IDs in the trust domain", () => {
    expect(serviceAccountId("weft.local", "shop", "web")).toBe("spiffe://weft.local/ns/shop/sa/web");
    expect(workerId("weft.local", "orders")).toBe("spiffe://weft.local/worker/orders");
  });

  it("throw rather than make an invalid ID", () => {
    expect(() => serviceAccountId("weft.local", "shop", "../admin")).toThrow(TypeError);
    expect(() => workerId("Weft", "orders")).toThrow(TypeError);
    expect(isTrustDomain("weft.local")).toBe(true);
    expect(isTrustDomain("")).toBe(false);
  });
});
