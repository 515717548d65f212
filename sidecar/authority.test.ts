import { describe, expect, it } from "vitest";
import { hostnameOf, isHostValue, parseConnectTarget } from "./authority.ts";

describe("a Host header value", () => {
  it.each(["orders", "orders:80", "orders:", "ORDERS.Shop.svc.cluster.local:8080", "orders.", "10.0.0.12:4143", "[::1]", "[fd00::12]:80", "b%C3%BCcher", "a-b_c~d", "orders;x"])("%s is an authority", (value) => {
    expect(isHostValue(value)).toBe(true);
  });

  it.each(["", "orders/x", "orders?x", "orders#x", "user@orders", "orders x", "orders:80:80", "orders:8o", "[::1", "[::1]x", "[zz::1]", "[]:80", "%zz", "orders%2", "bücher", ":80", "orders\\x"])("%j is not", (value) => {
    expect(isHostValue(value)).toBe(false);
  });

  it("names the host as the URL parser serializes it", () => {
    expect(hostnameOf("ORDERS.Shop:80")).toBe("orders.shop");
    expect(hostnameOf("%6Frders")).toBe("orders");
    expect(hostnameOf("[0:0::1]:80")).toBe("[::1]");
    expect(hostnameOf("orders/x")).toBeUndefined();
  });
});

describe("a CONNECT target", () => {
  it("is host:port, with the host normalized", () => {
    expect(parseConnectTarget("Orders.Shop.SVC.cluster.local:80")).toEqual({ ok: true, hostname: "orders.shop.svc.cluster.local", port: 80 });
    expect(parseConnectTarget("[fd00::1]:8080")).toEqual({ ok: true, hostname: "[fd00::1]", port: 8080 });
    expect(parseConnectTarget("0x7f.1:80")).toEqual({ ok: true, hostname: "127.0.0.1", port: 80 });
  });

  it.each(["orders", "orders:", "orders:0", "orders:65536", "orders:000080x", "orders:1234567", "orders/x:80", "http://orders:80", "user@orders:80", ":80", "[::1]", ""])("%j is refused", (target) => {
    expect(parseConnectTarget(target).ok).toBe(false);
  });
});
