import { describe, expect, it } from "vitest";
import {
  DEFAULT_ADMIN_PORT,
  DEFAULT_HEADER_TIMEOUT_MS,
  DEFAULT_INBOUND_PORT,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_OUTBOUND_PORT,
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_TOKEN_PATH,
  loadConfig,
} from "./config.ts";

const BASE = { WEFT_SERVICE: "orders", WEFT_CONTROL_URL: "http://weft-control.weft-system.svc:8788", WEFT_APP_PORT: "8080", WEFT_POD_IP: "10.1.2.3", WEFT_POD_NAME: "orders-7d4b9c-x2x8q" };

describe("the sidecar's environment", () => {
  it("fills in SPEC.md's ports and Linkerd's defaults, and advertises the pod IP's inbound port", () => {
    const result = loadConfig(BASE);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const c = result.config;
    expect([c.outbound, c.inbound, c.admin]).toEqual([
      { host: "127.0.0.1", port: DEFAULT_OUTBOUND_PORT },
      { host: "0.0.0.0", port: DEFAULT_INBOUND_PORT },
      { host: "0.0.0.0", port: DEFAULT_ADMIN_PORT },
    ]);
    expect(c.advertisedAddress).toBe("http://10.1.2.3:4143");
    expect(c.appOrigin).toBe("http://127.0.0.1:8080");
    expect(c.tokenPath).toBe(DEFAULT_TOKEN_PATH);
    expect(c.trustDomain).toBe("cluster.local");
    expect(c.shutdownGraceMs).toBe(DEFAULT_SHUTDOWN_GRACE_MS);
    expect(c.adminShutdownToken).toBeUndefined();
    expect(c.podName).toBe("orders-7d4b9c-x2x8q");
    expect(c.headerTimeoutMs).toBe(DEFAULT_HEADER_TIMEOUT_MS);
    expect(c.maxConnections).toBe(DEFAULT_MAX_CONNECTIONS);
  });

  it("reads the listeners' header timeout and connection cap, and names bad ones", () => {
    const result = loadConfig({ ...BASE, WEFT_HEADER_TIMEOUT: "2s", WEFT_MAX_CONNECTIONS: "500" });
    expect(result.ok && result.config).toMatchObject({ headerTimeoutMs: 2_000, maxConnections: 500 });
    const bad = loadConfig({ ...BASE, WEFT_HEADER_TIMEOUT: "0ms", WEFT_MAX_CONNECTIONS: "0" });
    expect(bad.ok).toBe(false);
    const text = bad.ok ? "" : bad.problems.join("\n");
    expect(text).toContain("WEFT_HEADER_TIMEOUT");
    expect(text).toContain("WEFT_MAX_CONNECTIONS");
  });

  it("reads listen addresses with IPv6 brackets, durations and an advertised address", () => {
    const result = loadConfig({ ...BASE, WEFT_INBOUND_LISTEN: "[::]:5143", WEFT_POD_IP: "fd00::7", WEFT_SHUTDOWN_GRACE: "25s", WEFT_LEASE_TTL: "1m", WEFT_SNAPSHOT_WAIT: "5s" });
    expect(result.ok && result.config).toMatchObject({ inbound: { host: "::", port: 5143 }, advertisedAddress: "http://[fd00::7]:5143", shutdownGraceMs: 25_000, leaseTtlMs: 60_000, snapshotWaitS: 5 });
    const advertised = loadConfig({ ...BASE, WEFT_POD_IP: "", WEFT_ADVERTISED_ADDRESS: "http://orders-0.orders:4143/" });
    expect(advertised.ok && advertised.config.advertisedAddress).toBe("http://orders-0.orders:4143");
  });

  it("names every problem at once, without echoing secrets", () => {
    const result = loadConfig({ WEFT_CONTROL_URL: "control:8788", WEFT_APP_PORT: "99999", WEFT_OUTBOUND_LISTEN: "4140", WEFT_SHUTDOWN_GRACE: "soon", WEFT_ADMIN_SHUTDOWN_TOKEN: "tiny", WEFT_LOG_LEVEL: "loud" });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const text = result.problems.join("\n");
    for (const name of ["WEFT_SERVICE is required", "WEFT_CONTROL_URL", "WEFT_APP_PORT", "WEFT_OUTBOUND_LISTEN", "WEFT_SHUTDOWN_GRACE", "WEFT_ADMIN_SHUTDOWN_TOKEN", "WEFT_LOG_LEVEL"]) expect(text).toContain(name);
    expect(text).not.toContain("tiny");
  });

  it("refuses clashing ports, and a missing pod IP once the rest is right", () => {
    const clash = loadConfig({ ...BASE, WEFT_ADMIN_LISTEN: "0.0.0.0:4143" });
    expect(!clash.ok && clash.problems).toEqual([expect.stringContaining("different ports")]);
    const noIp = loadConfig({ ...BASE, WEFT_POD_IP: undefined });
    expect(!noIp.ok && noIp.problems).toEqual([expect.stringContaining("WEFT_POD_IP is required")]);
  });

  it("reads the cluster domain and the extra namespaces mesh names may carry", () => {
    const plain = loadConfig(BASE);
    expect(plain.ok && [plain.config.clusterDomain, plain.config.namespaces]).toEqual(["cluster.local", []]);
    const set = loadConfig({ ...BASE, WEFT_CLUSTER_DOMAIN: "Corp.Internal.", WEFT_NAMESPACES: "billing, shipping," });
    expect(set.ok && [set.config.clusterDomain, set.config.namespaces]).toEqual(["corp.internal", ["billing", "shipping"]]);
    const bad = loadConfig({ ...BASE, WEFT_CLUSTER_DOMAIN: "cluster..local", WEFT_NAMESPACES: "billing,Evil/NS" });
    expect(!bad.ok && bad.problems).toEqual([expect.stringContaining("WEFT_CLUSTER_DOMAIN"), expect.stringContaining("WEFT_NAMESPACES")]);
  });

  it("lets a pod without an app port only call out", () => {
    const result = loadConfig({ ...BASE, WEFT_APP_PORT: undefined });
    expect(result.ok && result.config.appOrigin).toBeUndefined();
  });
});
