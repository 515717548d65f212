/**
 * The core demo as a person runs it: a real process with real `node:http` upstreams on
 * loopback, called through the outbound stack. It must stop by itself, keep the app's calls
 * succeeding despite the failing endpoint, and report what the mesh did to get there.
 */
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");

interface Summary {
  demo: string;
  calls: number;
  ok: number;
  successRate: number;
  retries: number;
  retryBudgetExhausted: number;
  ejections: Record<string, number>;
  tries: Record<string, number>;
  failed: Record<string, number>;
  metrics?: { requests: number; successRate: number | null };
}

let stdout: string;
let summary: Summary;

beforeAll(async () => {
  // Rejects (failing every test) on a non-zero exit, or if the demo does not stop by itself.
  ({ stdout } = await promisify(execFile)(process.execPath, [join(root, "examples/core-demo.ts")], { cwd: root, timeout: 90_000 }));
  summary = JSON.parse(stdout.trim().split("\n").at(-1)!) as Summary;
}, 120_000);

describe("the core demo", () => {
  it("prints the golden metrics table and the exposition, ending with a JSON summary", () => {
    expect(summary.demo).toBe("core");
    expect(stdout).toMatch(/Golden metrics, last 60 s/);
    expect(stdout).toMatch(/^\s+direction\s+service\s+route\s+requests\s+success\s+rps\s+p50 ms\s+p95 ms\s+p99 ms$/m);
    expect(stdout).toMatch(/^\s+outbound\s+orders\s+orders-api\s+2000\s/m);
    expect(stdout).toMatch(/^\s+weft_request_total\{direction="outbound",src="[^"]+",dst_service="orders",route="orders-api"\} 2000$/m);
  });

  it("keeps the app's calls succeeding although one endpoint fails some 30% of its tries", () => {
    expect(summary.calls).toBe(2000);
    expect(summary.failed.flaky).toBeGreaterThan(0);
    // Retries (two per call, within the budget) and ejection hide nearly all of them.
    expect(summary.successRate).toBeGreaterThanOrEqual(0.97);
    expect(summary.metrics).toMatchObject({ requests: 2000 });
    expect(summary.metrics!.successRate).toBeCloseTo(summary.successRate, 6);
  });

  it("retries the failed tries and ejects only the failing endpoint, as its metrics say", () => {
    expect(summary.retries).toBeGreaterThan(0);
    expect(stdout).toContain(`weft_retry_total{dst_service="orders"} ${summary.retries}`);
    expect(Object.keys(summary.ejections).every((endpoint) => endpoint === "flaky")).toBe(true);
    for (const [endpoint, count] of Object.entries(summary.ejections)) {
      expect(stdout).toContain(`weft_endpoint_ejections_total{dst_service="orders",endpoint="${endpoint}"} ${count}`);
    }
  });

  it("sends the healthy endpoint more tries than the one ten times slower", () => {
    const { healthy, slow, flaky } = summary.tries;
    expect(healthy! + slow! + flaky!).toBe(summary.calls + summary.retries);
    expect(healthy).toBeGreaterThan(slow!);
  });
});
