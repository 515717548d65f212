import { describe, expect, it } from "vitest";
import { serviceNames, serviceOf, serviceOfHost } from "./naming.ts";

/** A pod in namespace `shop` (the sidecar's rule), with the default cluster domain. */
const POD = serviceNames({ namespaces: ["shop"] });

/** Each URL as an app would call it, and the service it names in a pod of `shop` (undefined: none). */
const TABLE: [url: string, pod: string | undefined, bare: string | undefined][] = [
  // The four Kubernetes forms, in the pod's namespace.
  ["http://orders/x", "orders", "orders"],
  ["http://orders.shop/x", "orders", undefined],
  ["http://orders.shop.svc/x", "orders", undefined],
  ["http://orders.shop.svc.cluster.local/x", "orders", undefined],
  // Ports do not change the name; case does not either (hosts are case-insensitive).
  ["http://orders:80/x", "orders", "orders"],
  ["http://orders:8080/x", "orders", "orders"],
  ["http://ORDERS.Shop.SVC.Cluster.Local:80/", "orders", undefined],
  // An absolute DNS name (one trailing dot) is the same name.
  ["http://orders./", "orders", "orders"],
  ["http://orders.shop.svc.cluster.local./", "orders", undefined],
  // Names outside the mesh.
  ["http://orders.example.com/", undefined, undefined],
  ["http://orders.evil.example/", undefined, undefined],
  ["http://orders.evil/", undefined, undefined],
  ["http://orders.io/", undefined, undefined],
  ["http://orders.shop.com/", undefined, undefined],
  ["http://orders.shop.svc.example.com/", undefined, undefined],
  ["http://orders.shop.svc.cluster.local.evil.example/", undefined, undefined],
  ["http://orders.other.svc.cluster.local/", undefined, undefined],
  ["http://orders.svc.cluster.local/", undefined, undefined],
  ["http://orders.shop.cluster.local/", undefined, undefined],
  ["http://orders..shop/", undefined, undefined],
  ["http://orders../", undefined, undefined],
  ["http://.orders/", undefined, undefined],
  // IP literals are addresses, never names (the URL parser makes `http://1.2/` 1.0.0.2).
  ["http://10.0.0.12:4143/", undefined, undefined],
  ["http://127.0.0.1/", undefined, undefined],
  ["http://1.2/", undefined, undefined],
  ["http://0x7f.1/", undefined, undefined],
  ["http://[::1]:4140/x", undefined, undefined],
  ["http://[fd00::12]/", undefined, undefined],
  // Query and fragment right after the host.
  ["http://orders?x=1", "orders", "orders"],
  ["http://orders.shop#f", "orders", undefined],
  // Characters no service name has (IDNA turns this one into xn--, which is a valid label).
  ["http://b%C3%BCcher/", "xn--bcher-kva", "xn--bcher-kva"],
  ["http://a_b/", undefined, undefined],
];

describe("serviceOf: which hosts name a mesh service", () => {
  it.each(TABLE)("%s names %s in a pod of namespace shop, %s for a router worker", (url, pod, bare) => {
    const request = new Request(url);
    expect(serviceOf(request, POD)).toBe(pod);
    expect(serviceOf(request)).toBe(bare);
  });

  it("takes the cluster domain it is configured with, and no other", () => {
    const names = serviceNames({ namespaces: ["shop"], clusterDomain: "corp.internal" });
    expect(serviceOf(new Request("http://orders.shop.svc.corp.internal/"), names)).toBe("orders");
    expect(serviceOf(new Request("http://orders.shop.svc.cluster.local/"), names)).toBeUndefined();
  });

  it("accepts every namespace it is given, and reads raw hosts as the URL parser serializes them", () => {
    const names = serviceNames({ namespaces: ["shop", "billing"] });
    expect(serviceOfHost("orders.billing.svc", names)).toBe("orders");
    expect(serviceOfHost("orders.shipping.svc", names)).toBeUndefined();
    // Raw, unnormalized hosts name nothing: hosts reach the rule through the URL parser.
    expect(serviceOfHost("ORDERS", names)).toBeUndefined();
    expect(serviceOfHost("", names)).toBeUndefined();
    expect(serviceOfHost(".", names)).toBeUndefined();
    expect(serviceOfHost("123", names)).toBeUndefined();
  });

  it("agrees with the URL parser's hostname for every host it accepts", () => {
    for (const [url] of TABLE) {
      const request = new Request(url);
      const name = serviceOf(request, POD);
      if (name !== undefined) expect(new URL(request.url).hostname.split(".")[0], url).toBe(name);
    }
  });
});
